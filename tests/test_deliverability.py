"""Honest one-click and the postal address: warnings from `feedpub check`, `digest preview`,
`digest send` and `feedpub run`; the footer of both parts; report counts in /metrics and
`feedpub status`; DKIM key checks in `feedpub check`."""

from __future__ import annotations

import mailbox
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from bounce_samples import arf_complaint, postfix_dsn
from feedpub.cli import cli
from feedpub.config import Config
from feedpub.mail import verp
from feedpub.store import open_store
from test_cli_mail import fresh_article
from test_daemon import Daemon
from web_helpers import ARTICLES as OLD_ARTICLES

ARTICLES = {**OLD_ARTICLES, **fresh_article()}
POSTAL = "Example News Ltd, 1 Main Street, Springfield"


def run(cfg: Config, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), *args])
    return result.exit_code, result.stdout, result.stderr


def site(make_site, *, base_url: str = "https://news.example.org/", postal: str = "",
         extra: str = "") -> Config:
    text = (make_site(ARTICLES).root / "config.toml").read_text()
    text = text.replace("https://news.example.org/", base_url)
    if postal:
        text = text.replace("[digest]\n", f'[digest]\npostal_address = "{postal}"\n')
    return make_site(ARTICLES, config_text=text + extra)


def test_check_warns_about_http_loopback_and_postal_address_only_with_subscribers(
        make_site) -> None:
    cfg = site(make_site, base_url="http://127.0.0.1:8080/")
    assert run(cfg, "build")[0] == 0
    code, out, _ = run(cfg, "check")
    assert code == 0 and "base_url" not in out and "postal_address" not in out
    assert run(cfg, "subscribers", "add", "ann@example.com")[0] == 0
    code, out, _ = run(cfg, "check")
    assert code == 0, out
    assert "warning: [site] base_url = 'http://127.0.0.1:8080/' is not a public https" in out
    assert "warning: [digest] postal_address is empty" in out
    _, _, err = run(cfg, "digest", "preview", "--out", str(cfg.root / "preview"))
    assert "base_url" in err and "postal_address is empty" in err

    honest = site(make_site, base_url="https://localhost/", postal=POSTAL)
    assert run(honest, "build")[0] == 0
    code, out, _ = run(honest, "check")
    assert "is not a public https" in out  # loopback, even with https
    assert "postal_address" not in out


def test_postal_address_in_both_parts_and_send_warns_without_it(make_site) -> None:
    bare = site(make_site)
    assert run(bare, "subscribers", "add", "ann@example.com")[0] == 0
    code, out, err = run(bare, "digest", "send", "--dry-run")
    assert code == 0 and "would send" in out, out + err
    assert "warning: [digest] postal_address is empty" in err

    cfg = site(make_site, postal=POSTAL)
    assert run(cfg, "subscribers", "add", "bob@example.com")[0] == 0
    code, out, err = run(cfg, "digest", "send")
    assert code == 0 and "2 sent" in out and "postal_address" not in err, out
    box = mailbox.Maildir(cfg.path(cfg.delivery.maildir), create=False)
    [message] = [m for m in box if "bob@example.com" in str(m["To"])]
    import email
    import email.policy

    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.rstrip().endswith(POSTAL)
    assert POSTAL in page.split('class="pad footer"', 1)[1]


def test_check_reports_a_dkim_key_that_does_not_match_from_address(make_site) -> None:
    cfg = site(make_site)
    assert run(cfg, "build")[0] == 0
    code, out, _ = run(cfg, "dkim", "keygen", "--selector", "s1", "--domain", "other.example",
                       "--out", str(cfg.root / "s1.key"))
    assert code == 0, out
    text = (cfg.root / "config.toml").read_text()
    bad = make_site(ARTICLES, config_text=text + '\n[delivery.dkim]\ndomain = "other.example"\n'
                    'selector = "s1"\nkey_file = "s1.key"\n')
    code, out, _ = run(bad, "check")
    assert code == 1
    assert "problem: [delivery.dkim] domain 'other.example' does not match" in out
    good = make_site(ARTICLES, config_text=text + '\n[delivery.dkim]\nselector = "s1"\n'
                     'key_file = "s1.key"\n')
    code, out, _ = run(good, "check")
    assert code == 0 and "dkim" not in out.lower()
    broken = make_site(ARTICLES, config_text=text + '\n[delivery.dkim]\nselector = "s1"\n'
                       'key_file = "missing.key"\n')
    code, out, _ = run(broken, "check")
    assert code == 1 and "missing.key: cannot read the DKIM key" in out


def test_run_warns_reads_the_mailbox_on_its_timer_and_counts_reports(make_site,
                                                                      daemons) -> None:
    folder = Path(make_site().root) / "bounces"
    box = mailbox.Maildir(folder, create=True)
    cfg = site(make_site, base_url="http://127.0.0.1:8080/", extra=(
        '\n[delivery]\nreturn_path = "bounces@news.example.org"\n\n[bounces]\n'
        f'maildir = "{folder}"\ninterval = 1\n'))
    with open_store(cfg) as store:
        ann, _ = store.add_subscriber("ann@example.com")
        bob, _ = store.add_subscriber("bob@example.com")
    box.add(postfix_dsn("ann@example.com", verp.return_path(cfg, ann.id, 1)))
    box.add(arf_complaint("bob@example.com", verp.return_path(cfg, bob.id, 1)))
    daemon = Daemon(cfg)
    daemons.append(daemon)
    url = daemon.url
    # `run` on another port than base_url names: the links (and the warning) follow it
    daemon.wait_for(r"base_url = 'http://127\.0\.0\.1:\d+/' is not a public https")
    daemon.wait_for(r"postal_address is empty")
    daemon.wait_for(r"event=bounces .*complaint=1.*hard=1|event=bounces .*hard=1")
    deadline = time.monotonic() + 20
    metrics = ""
    while time.monotonic() < deadline:
        metrics = httpx.get(url + "metrics", timeout=5).text
        if 'feedpub_mail_reports_total{kind="complaint"} 1.0' in metrics:
            break
        time.sleep(0.1)
    assert 'feedpub_mail_reports_total{kind="hard"} 1.0' in metrics
    assert 'feedpub_mail_reports_total{kind="complaint"} 1.0' in metrics
    assert "feedpub_complaint_rate_limit 0.003" in metrics
    assert daemon.stop() == 0
    assert len(box) == 0
    code, out, _ = run(cfg, "status")
    assert code == 0, out
    assert "by mail:      hard 1, soft 0, complaint 1, unsubscribe 0, unrecognised 0" in out
    assert "complaints:   0.00% of 0 sent in 30 days (under the 0.3% line)" in out
