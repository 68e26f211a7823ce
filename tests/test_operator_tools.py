"""The operator's mail tools through the real command line, on the maildir backend: the
outbox reader, previews without a pending issue, and the subscriber tools."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.cli import cli
from feedpub.mail.tokens import read_token
from feedpub.store import open_store

LONG_TITLE = "A very long headline that goes on and on so that the link must wrap " * 2


def run(cfg, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), *args])
    return result.exit_code, result.output


def articles(count: int, days_ago: int = 1) -> dict[str, str]:
    out = {}
    for n in range(count):
        day = (datetime.now(UTC) - timedelta(days=days_ago + n)).date().isoformat()
        out[f"{day}-entry-{n}.txt"] = f"date {day} Entry {n}\n\nBody {n}.\n"
    return out


def test_outbox_lists_and_shows_messages_with_whole_links(make_site) -> None:
    cfg = make_site(articles(1))
    code, out = run(cfg, "subscribers", "add", "reader@example.com", "--pending")
    assert code == 0 and "confirmation link sent to reader@example.com" in out, out
    code, out = run(cfg, "outbox")
    assert code == 0
    assert re.search(r"^\s+1\s+\S+\s+reader@example.com\s+Confirm your subscription", out,
                     re.MULTILINE), out
    raw = next((cfg.root / "outbox" / "new").iterdir()).read_bytes()
    assert b"=\n" in raw  # the file itself has soft line breaks: links are cut there
    code, shown = run(cfg, "outbox", "show", "1")
    assert code == 0, shown
    (url,) = [u for u in re.findall(r"https?://\S+", shown) if "/confirm" in u][:1]
    assert read_token(cfg, "confirm", url.split("token=")[1]) is not None
    assert shown.count(url) == 2  # in the text and in the list of links
    code, out = run(cfg, "outbox", "show", "5")
    assert code == 1 and "no message 5" in out


def test_add_pending_without_email_and_confirm_resends(make_site) -> None:
    cfg = make_site()
    code, out = run(cfg, "subscribers", "add", "quiet@example.com", "--pending", "--no-email")
    assert code == 0 and "no confirmation sent" in out
    assert not (cfg.root / "outbox").exists()
    code, out = run(cfg, "subscribers", "confirm", "quiet@example.com")
    assert code == 0, out
    code, out = run(cfg, "outbox", "list")
    assert "quiet@example.com" in out and out.count("\n") == 1
    run(cfg, "subscribers", "add", "active@example.com")
    code, out = run(cfg, "subscribers", "confirm", "active@example.com")
    assert code == 1 and "is active, not pending" in out


def test_set_edits_and_reactivation_of_a_bounced_address_needs_force(make_site) -> None:
    cfg = make_site()
    run(cfg, "subscribers", "add", "b@example.com")
    with open_store(cfg) as store:
        sub = store.get_subscriber("b@example.com")
        assert sub is not None
        store.set_status(sub.id, "bounced")
    code, out = run(cfg, "subscribers", "set", "b@example.com", "--cadence", "daily",
                    "--tags", "City, harbour", "--name", "Bea")
    assert code == 0, out
    code, out = run(cfg, "subscribers", "set", "b@example.com", "--status", "active")
    assert code == 1 and "--force" in out
    code, out = run(cfg, "subscribers", "set", "b@example.com", "--status", "active", "--force")
    assert code == 0 and "status active" in out
    with open_store(cfg) as store:
        sub = store.get_subscriber("b@example.com")
    assert sub is not None
    assert (sub.status, sub.cadence, sub.tags, sub.name) == ("active", "daily",
                                                              ("city", "harbour"), "Bea")
    code, out = run(cfg, "subscribers", "show", "b@example.com")
    assert code == 0
    lines = out.splitlines()
    assert "subscribed" in lines[1] and "confirmed" in out
    assert re.search(r"edited cadence daily; tags city,harbour; name Bea \(by \S+\)", out), out
    assert re.search(r"edited status active \(--force\) \(by \S+\)", out), out


def test_show_lists_the_issues_received(make_site) -> None:
    cfg = make_site(articles(1))
    run(cfg, "subscribers", "add", "r@example.com")
    code, out = run(cfg, "digest", "send")
    assert code == 0, out
    code, out = run(cfg, "subscribers", "show", "r@example.com")
    assert re.search(r"received #1 weekly 'Test Site: 1 new, Entry 0'", out), out


def test_preview_on_a_fresh_site_says_what_it_compared_and_latest_works(
        make_site, tmp_path: Path) -> None:
    cfg = make_site(articles(3, days_ago=30))  # all older than one weekly period
    code, out = run(cfg, "digest", "preview", "--out", str(tmp_path))
    assert code == 0 and "no issue yet" in out and "--latest" in out, out
    code, out = run(cfg, "digest", "preview", "--latest", "2", "--out", str(tmp_path))
    assert code == 0, out
    assert "2 article(s)" in out
    html = (tmp_path / "weekly-latest.html").read_text(encoding="utf-8")
    assert "Entry 0" in html and "Entry 1" in html and "Entry 2" not in html


def test_preview_of_a_past_issue_is_the_message_as_sent(make_site, tmp_path: Path) -> None:
    cfg = make_site(articles(2))
    run(cfg, "subscribers", "add", "r@example.com", "--name", "Rea")
    code, out = run(cfg, "digest", "send")
    assert code == 0, out
    code, out = run(cfg, "digest", "preview", "--out", str(tmp_path))
    assert re.search(r"nothing new since issue #1 of \d{4}-", out), out
    code, out = run(cfg, "digest", "preview", "--issue", "1", "--subscriber", "r@example.com",
                    "--out", str(tmp_path))
    assert code == 0, out
    sent = email.message_from_bytes(next((cfg.root / "outbox" / "new").iterdir()).read_bytes(),
                                    policy=email.policy.default)
    again = email.message_from_bytes((tmp_path / "issue-1.eml").read_bytes(),
                                     policy=email.policy.default)
    assert again["Subject"] == sent["Subject"]
    def text(message: email.message.EmailMessage) -> str:  # the Maildir stores LF line ends
        body = str(message.get_body(("plain",)).get_content()).replace("\r\n", "\n")
        # The links' tokens are signed when the message is made: the payload is the same,
        # the time stamp and signature differ when the preview falls in another second.
        return re.sub(r"\b([\w-]{8,})\.[\w-]{6}\.[\w-]{27}\b", r"\1", body)

    assert text(again) == text(sent) and "Hello Rea," in text(again)
    code, out = run(cfg, "digest", "preview", "--issue", "9")
    assert code == 1 and "no issue #9" in out


@pytest.mark.parametrize("args", [["--latest", "1", "--issue", "1"]])
def test_latest_and_issue_exclude_each_other(make_site, args: list[str]) -> None:
    cfg = make_site(articles(1))
    code, out = run(cfg, "digest", "preview", *args)
    assert code == 2 and "not both" in out
