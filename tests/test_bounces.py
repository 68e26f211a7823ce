"""The bounce mailbox against a real dovecot over TLS: DSNs, an ARF complaint and an
unsubscribe mail are delivered by IMAP APPEND, fetched, applied once and removed; a SIGKILL in
the middle of a fetch loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bounce_samples import (
    arf_complaint,
    exim_bounce,
    gmail_delay,
    ordinary_mail,
    postfix_dsn,
    unsubscribe_mail,
)
from feedpub.cli import cli
from feedpub.config import Config
from feedpub.jobs.bounces import fetch_bounces
from feedpub.jobs.mailing import send_digest
from feedpub.mail import verp
from feedpub.store import Subscriber, open_store
from imap_server import ImapServer, imap_server
from mail_helpers import NOW, article

__all__ = ["imap_server"]
BASE = "bounces@news.example.org"


def bounce_site(make_site, server: ImapServer, monkeypatch, *, limit: int = 2) -> Config:
    monkeypatch.setenv("FEEDPUB_IMAP_PASSWORD", server.password)
    text = (make_site().root / "config.toml").read_text()
    text += (f'\n[delivery]\nreturn_path = "{BASE}"\nbounce_limit = {limit}\n\n[bounces]\n'
             f'imap_url = "{server.url()}"\nimap_ca_file = "{server.ca_file}"\n')
    return make_site(config_text=text)


def append(server: ImapServer, *mails: bytes) -> None:
    client = server.client()
    try:
        for data in mails:
            client.append("INBOX", data)
    finally:
        client.logout()


def inbox(server: ImapServer) -> list[bytes]:
    client = server.client()
    try:
        client.select_folder("INBOX")
        uids = client.search(["NOT", "DELETED"])
        return [v[b"BODY[]"] for v in client.fetch(uids, ["BODY.PEEK[]"]).values()]
    finally:
        client.logout()


def subscribe(cfg: Config, *names: str) -> dict[str, Subscriber]:
    with open_store(cfg) as store:
        return {n: store.add_subscriber(f"{n}@example.com")[0] for n in names}


def states(cfg: Config) -> dict[str, str]:
    with open_store(cfg) as store:
        return {s.email.split("@")[0]: s.status for s in store.iter_subscribers()}


def test_reports_are_applied_once_and_removed(make_site, imap_server: ImapServer,
                                              monkeypatch) -> None:
    cfg = bounce_site(make_site, imap_server, monkeypatch)
    subs = subscribe(cfg, "hard", "soft", "complainer", "leaver", "victim", "bystander")
    issue = send_digest(cfg, "weekly", now=NOW, articles=[article(1)]).issue_id
    assert issue is not None

    def rp(name: str) -> str:
        return verp.return_path(cfg, subs[name].id, issue)

    forged = f"bounces+{subs['victim'].id}-{issue}-0123456789abcdef@news.example.org"
    append(imap_server,
           postfix_dsn("hard@example.com", rp("hard")),
           exim_bounce("hard@example.com", rp("hard")),
           gmail_delay("soft@example.com", rp("soft")),
           arf_complaint("complainer@example.com", rp("complainer")),
           unsubscribe_mail("leaver@example.com"),
           postfix_dsn("stranger@example.net", forged, msgid="F1"),  # forged token
           postfix_dsn("nobody@example.org", BASE, msgid="U1"),  # unknown address
           ordinary_mail())

    first = fetch_bounces(cfg)
    assert dict(first.new) == {"hard": 2, "soft": 1, "complaint": 1, "unsubscribe": 1,
                               "unrecognised": 3}
    assert (first.removed, first.bounced, first.unsubscribed) == (5, 1, 2)
    after = states(cfg)
    assert after == {"hard": "bounced", "soft": "active", "complainer": "unsubscribed",
                     "leaver": "unsubscribed", "victim": "active", "bystander": "active"}
    left = inbox(imap_server)
    assert len(left) == 3  # the unrecognised ones stay, untouched
    assert any(b"stranger@example.net" in m for m in left)
    assert any(b"nobody@example.org" in m for m in left)

    listing = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"),
                                       "subscribers", "list"])
    assert listing.exit_code == 0, listing.output
    lines = {line.split()[0].split("@")[0]: line for line in listing.output.splitlines()}
    assert "5.1.1" in lines["hard"] and "score 2" in lines["hard"]
    assert "soft: 4.2.2" in lines["soft"] and "score 0.5" in lines["soft"]
    assert "complaint (abuse)" in lines["complainer"]
    assert "unsubscribe mail" in lines["leaver"]
    assert "score" not in lines["victim"] and "score" not in lines["bystander"]
    status = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"),
                                      "digest", "status"])
    assert status.exit_code == 0, status.output
    assert f"#{issue}: 2 hard, 1 soft, 1 complaint, 0 unsubscribe" in status.output
    assert "hard@example.com" in status.output and "User unknown" in status.output

    second = fetch_bounces(cfg)
    assert sum(second.new.values()) == 0
    assert second.already_seen == 3 and second.removed == 0
    assert states(cfg) == after
    assert len(inbox(imap_server)) == 3
    again = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"),
                                     "subscribers", "list"])
    assert again.output == listing.output


def test_processed_mail_is_moved_when_a_folder_is_named(make_site, imap_server: ImapServer,
                                                       monkeypatch) -> None:
    cfg = bounce_site(make_site, imap_server, monkeypatch)
    text = (cfg.root / "config.toml").read_text() + 'processed_folder = "Done"\n'
    cfg = make_site(config_text=text)
    subs = subscribe(cfg, "gone")
    append(imap_server, postfix_dsn("gone@example.com", verp.return_path(cfg, subs["gone"].id, 7)))
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"),
                                      "bounces", "fetch"])
    assert result.exit_code == 0, result.output
    assert "1 hard" in result.output and "1 removed" in result.output
    assert inbox(imap_server) == []
    client = imap_server.client()
    try:
        client.select_folder("Done")
        assert len(client.search()) == 1
    finally:
        client.logout()


def test_missing_password_names_the_variable(make_site, imap_server: ImapServer,
                                             monkeypatch) -> None:
    cfg = bounce_site(make_site, imap_server, monkeypatch)
    monkeypatch.delenv("FEEDPUB_IMAP_PASSWORD")
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"),
                                      "bounces", "fetch"])
    assert result.exit_code == 1
    assert "set FEEDPUB_IMAP_PASSWORD" in result.output


def _reports(cfg: Config) -> int:
    path = cfg.database_url[len("sqlite:///"):]
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return int(conn.execute("select count(*) from mail_reports").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_sigkill_in_the_middle_of_a_fetch_loses_and_doubles_nothing(
        make_site, imap_server: ImapServer, monkeypatch) -> None:
    cfg = bounce_site(make_site, imap_server, monkeypatch, limit=3)
    count = 120
    names = [f"s{n}" for n in range(count)]
    subs = subscribe(cfg, *names)
    append(imap_server, *[gmail_delay(f"{n}@example.com", verp.return_path(cfg, subs[n].id, 1))
                          for n in names])
    command = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"),
               "bounces", "fetch"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ})
    deadline = time.monotonic() + 60
    while _reports(cfg) < 5 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    at_kill = _reports(cfg)
    assert child.returncode == -signal.SIGKILL, "the fetch ended before it could be killed"
    assert 0 < at_kill < count
    assert len(inbox(imap_server)) > 0  # some reports were still waiting

    result = fetch_bounces(cfg)
    assert result.new["soft"] + at_kill == count  # nothing counted twice, nothing lost
    assert _reports(cfg) == count
    assert inbox(imap_server) == []
    with open_store(cfg) as store:
        from feedpub.store.reports import MailReports

        reasons = MailReports(store).reasons()
    assert len(reasons) == count
    assert all(r.endswith("(score 0.5)") for r in reasons.values())


def test_maildir_mailbox(make_site, tmp_path: Path) -> None:
    import mailbox

    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    text = (make_site().root / "config.toml").read_text()
    cfg = make_site(config_text=text + f'\n[delivery]\nreturn_path = "{BASE}"\n\n[bounces]\n'
                    f'maildir = "{tmp_path / "bounces"}"\nprocessed_folder = "done"\n')
    subs = subscribe(cfg, "full")
    box.add(gmail_delay("full@example.com", verp.return_path(cfg, subs["full"].id, 3)))
    box.add(ordinary_mail())
    result = fetch_bounces(cfg)
    assert dict(result.new) == {"soft": 1, "unrecognised": 1}
    assert len(box) == 1 and len(box.get_folder("done")) == 1
    assert fetch_bounces(cfg).already_seen == 1


def test_no_mailbox_configured_is_a_clear_error(make_site) -> None:
    result = CliRunner().invoke(cli, ["--config", str(make_site().root / "config.toml"),
                                      "bounces", "fetch"])
    assert result.exit_code == 1
    assert "set [bounces] maildir or imap_url" in result.output


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
