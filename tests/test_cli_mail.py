"""`feedpub subscribers ...` and `feedpub digest ...` through the real command line."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from feedpub.cli import cli
from feedpub.jobs.mailing import digest_status
from feedpub.mail.tokens import read_token
from feedpub.store import open_store
from smtp_server import SmtpServer, smtp_server

__all__ = ["smtp_server"]


def run(cfg, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), *args])
    return result.exit_code, result.stdout, result.stderr


def fresh_article() -> dict[str, str]:
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return {"fresh.md": f"---\ntitle: Fresh & new\ndate: {day}\ntags: [town]\n---\n"
                        "The *new* bridge opens. See [map](/maps/bridge.html).\n"}


def test_add_remove_list_and_json(make_site) -> None:
    cfg = make_site()
    assert run(cfg, "subscribers", "add", "Ann@Example.COM", "--name", "Ann")[0] == 0
    for again in ("ann@example.com", "Ann@EXAMPLE.com"):  # one mailbox whatever the case
        code, out, _ = run(cfg, "subscribers", "add", again)
        assert code == 0 and "already present: Ann@example.com" in out
    run(cfg, "subscribers", "add", "bob@example.com", "--pending")
    code, out, err = run(cfg, "subscribers", "add", "not-an-address")
    assert code != 0 and "not a valid email address" in err
    code, out, _ = run(cfg, "subscribers", "list", "--json")
    listed = json.loads(out)
    assert [(r["email"], r["status"]) for r in listed] == [
        ("Ann@example.com", "active"), ("bob@example.com", "pending")]
    code, out, _ = run(cfg, "subscribers", "list", "--status", "pending")
    assert "bob@example.com" in out and "Ann@" not in out
    assert run(cfg, "subscribers", "remove", "bob@example.com")[0] == 0
    with open_store(cfg) as store:
        assert store.get_subscriber("bob@example.com").status == "unsubscribed"
    assert run(cfg, "subscribers", "remove", "ann@example.com", "--purge")[0] == 0
    code, _, err = run(cfg, "subscribers", "remove", "nobody@example.com")
    assert code != 0 and "no subscriber" in err
    with open_store(cfg) as store:
        assert store.get_subscriber("ann@example.com") is None


def test_import_reports_bad_rows_and_is_idempotent(make_site, tmp_path: Path) -> None:
    cfg = make_site()
    data = tmp_path / "people.csv"
    data.write_text(
        "Name;E-mail;Email;Cadence\n"  # header detected by the 'email' column
        "Ann;x;ann@Example.com;daily\n"
        "Bob;x;not an address;\n"
        "Cy;x;cy@example.com;hourly\n"
        "Di;x;di@example.com;\n"
        "Ann again;x;ann@EXAMPLE.com;\n", encoding="utf-8")
    code, out, err = run(cfg, "subscribers", "import", str(data))
    assert code == 1
    assert f"{data}:3:" in err and f"{data}:4:" in err and "hourly" in err
    assert "imported 2 new" in out
    with open_store(cfg) as store:
        ann = store.get_subscriber("ann@example.com")
        assert (ann.name, ann.cadence, ann.status) == ("Ann", "daily", "active")
    code, out, _ = run(cfg, "subscribers", "import", str(data))
    assert "imported 0 new, 2 already present" in out
    plain = tmp_path / "plain.csv"
    plain.write_text("eve@example.com,Eve\nfay@example.com\n", encoding="utf-8")
    code, out, _ = run(cfg, "subscribers", "import", str(plain), "--pending")
    assert code == 0 and "imported 2 new" in out
    with open_store(cfg) as store:
        assert store.get_subscriber("eve@example.com").status == "pending"
        assert store.get_subscriber("eve@example.com").name == "Eve"
        assert len(list(store.iter_subscribers())) == 4


def test_export_round_trips(make_site, tmp_path: Path) -> None:
    cfg = make_site()
    run(cfg, "subscribers", "add", "a@example.com", "--name", "A, with comma")
    run(cfg, "subscribers", "add", "b@example.com")
    code, out, _ = run(cfg, "subscribers", "export")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(r["email"], r["name"]) for r in table] == [("a@example.com", "A, with comma"),
                                                       ("b@example.com", "")]
    target = tmp_path / "out.csv"
    assert run(cfg, "subscribers", "export", "--out", str(target))[0] == 0
    other = make_site(config_text=(cfg.root / "config.toml").read_text() +
                      '\n[store]\nurl = "sqlite:///data/other.db"\n')
    code, out, _ = run(other, "subscribers", "import", str(target))
    assert code == 0 and "imported 2 new" in out


def test_preview_writes_the_next_message_and_marks_nothing(make_site, tmp_path: Path) -> None:
    cfg = make_site(fresh_article())
    run(cfg, "subscribers", "add", "reader@example.com", "--name", "Rea")
    out_dir = tmp_path / "preview"
    code, out, err = run(cfg, "digest", "preview", "--out", str(out_dir))
    assert code == 0, out + err
    assert "Test Site: 1 new, Fresh & new" in out
    msg = email.message_from_bytes((out_dir / "weekly-next.eml").read_bytes(),
                                   policy=email.policy.default)
    assert msg["To"] == "Rea <reader@example.com>"
    assert "Hello Rea," in (out_dir / "weekly-next.html").read_text(encoding="utf-8")
    assert "https://news.example.org/maps/bridge.html" in msg.get_body(("html",)).get_content()
    assert digest_status(cfg) == []
    assert not (cfg.root / "outbox").exists()


def test_dry_run_and_test_send_mark_nothing(make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(fresh_article(), extra=smtp_server.config())
    run(cfg, "subscribers", "add", "a@example.com")
    run(cfg, "subscribers", "add", "b@example.com")
    code, out, _ = run(cfg, "digest", "send", "--dry-run")
    assert code == 0 and "would send a new issue" in out and "to 2 subscriber(s)" in out
    code, out, err = run(cfg, "digest", "send", "--to", "Editor@News.Example.org")
    assert code == 0, out + err
    assert smtp_server.handler.copies() == {"Editor@news.example.org": 1}
    test_copy = smtp_server.handler.received[0].message()
    token = test_copy["List-Unsubscribe"].split("token=")[1].split(">")[0]
    assert read_token(cfg, "unsubscribe", token).subscriber_id == 0  # never a real subscriber
    assert digest_status(cfg) == []
    code, out, _ = run(cfg, "digest", "send")
    assert code == 0 and "2 sent, 0 failed, 0 pending" in out
    code, out, _ = run(cfg, "digest", "status")
    assert "weekly" in out and "done" in out
    line = [x for x in out.splitlines() if "weekly" in x][0].split()
    assert line[-4:] == ["2", "0", "0", "0"]  # sent, deferred, failed, pending
    code, out, _ = run(cfg, "digest", "send")
    assert "nothing new" in out
    assert len(smtp_server.handler.received) == 3


def test_delivery_error_exits_non_zero_with_host_and_port(make_site) -> None:
    from smtp_server import free_port

    port = free_port()
    cfg = make_site(fresh_article(), extra=f'\n[delivery]\nbackend = "smtp"\n[delivery.smtp]\n'
                                           f'host = "127.0.0.1"\nport = {port}\n'
                                           'security = "none"\ntimeout = 2.0\n')
    run(cfg, "subscribers", "add", "a@example.com")
    code, _, err = run(cfg, "digest", "send")
    assert code != 0 and f"127.0.0.1:{port}" in err
    code, out, _ = run(cfg, "digest", "status")
    assert "pending" in out


def test_import_finds_the_header_after_a_bom_and_comments(make_site, tmp_path: Path) -> None:
    cfg = make_site()
    data = tmp_path / "mailchimp.csv"
    data.write_bytes("\ufeff# members export\n\n"
                     "Email Address,First Name,Last Name\n"
                     "ann@example.com,Ann,Lee\n"
                     "broken,Bob,Bee\n".encode())
    code, out, err = run(cfg, "subscribers", "import", str(data))
    assert code == 1 and "imported 1 new" in out
    assert f"{data}:5:" in err and "broken" in err
    assert "Email Address" not in err  # the header is not a bad row
    with open_store(cfg) as store:
        assert store.get_subscriber("ann@example.com").name == "Ann Lee"


def test_preview_of_a_subscriber_uses_their_cadence_or_says_they_get_nothing(
        make_site, tmp_path: Path) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    cfg = make_site({"fresh.md": f"---\ntitle: Fresh\ndate: {recent}\ntags: [town]\n---\n"
                                 "The bridge opens.\n"})
    run(cfg, "subscribers", "add", "reader@example.com")
    with open_store(cfg) as store:
        daily = store.add_subscriber("daily@example.com", cadence="daily")[0]
        store.update_preferences(daily.id, cadence="daily", tags=["town"])
        store.add_subscriber("other@example.com", tags=["sports"])
    out_dir = tmp_path / "preview"
    code, out, err = run(cfg, "digest", "preview", "--subscriber", "DAILY@Example.com",
                         "--out", str(out_dir))  # found whatever the case
    assert code == 0, out + err
    assert (out_dir / "daily-next.eml").exists() and not (out_dir / "weekly-next.eml").exists()
    msg = email.message_from_bytes((out_dir / "daily-next.eml").read_bytes(),
                                   policy=email.policy.default)
    assert msg["To"] == "daily@example.com"  # as first written
    code, out, err = run(cfg, "digest", "preview", "--subscriber", "other@example.com",
                         "--out", str(out_dir))
    assert code == 1
    assert "other@example.com receives nothing in the next weekly issue" in err
    assert "(sports)" in err
    assert not (out_dir / "weekly-next.eml").exists()
