"""The delivery queue over time, with real `feedpub run` processes, aiosmtpd and SQLite files:
a SIGKILL mid-send, greylisting, an older issue left deferred, an unsubscribe mid-send and
an unreachable relay."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from feedpub.config import Config
from feedpub.delivery.window import IN_FLIGHT
from feedpub.jobs.mailing import digest_status, plan_issue, send_digest
from feedpub.mail.tokens import link
from feedpub.scheduler import JOB_TABLE
from feedpub.store import open_store, schema
from mail_helpers import add_subscribers, article
from smtp_server import Handler, SmtpServer, free_port, greylisting
from test_daemon import Daemon, _recent_article


def _site(make_site, server: SmtpServer | None, extra: str = "", *, port: int = 0,
          delivery: str = "") -> Config:
    """A site whose scheduled digests are off (the queue runner alone sends), pointed at
    `server` (or at `port`, where nothing may listen yet)."""
    smtp = server.config(extra=extra) if server is not None else (
        f'\n[delivery]\nbackend = "smtp"\n\n[delivery.smtp]\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\ntimeout = 5.0\n{extra}\n')
    if "retry_first" in delivery:
        smtp = smtp.replace("retry_first = 0.05\n", "")
    smtp = smtp.replace('[delivery]\nbackend = "smtp"\n',
                        f'[delivery]\nbackend = "smtp"\n{delivery}\n')
    return make_site(extra=smtp + '\n[schedule]\ndaily = ""\nweekly = ""\n')


def _plan(cfg: Config, subscribers: int, **kwargs: object) -> int:
    now = datetime.now(UTC)
    with open_store(cfg) as store:
        add_subscribers(store, subscribers, **kwargs)
        issue = plan_issue(cfg, store, "weekly", now=now, articles=[article(1, now=now)])
    assert issue is not None
    return issue.id


def _wait(check, timeout: float, what: str, daemon: Daemon | None = None) -> float:
    """Poll `check()` until true; returns the time it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            logs = "\n".join(daemon.lines) if daemon is not None else ""
            raise AssertionError(f"{what} not within {timeout} s\n{logs}")
        time.sleep(0.05)
    return time.monotonic() - start


def test_sigkill_mid_send_then_restart_completes_the_issue(make_site, daemons) -> None:
    """The restarted daemon's queue runner finishes the issue right away (well within
    queue_interval): nobody missing, no more repeats than messages in flight."""
    total, connections, interval = 500, 2, 30
    with SmtpServer() as server:
        server.handler.data_delay = 0.004
        cfg = _site(make_site, server, f"connections = {connections}",
                    delivery=f'queue_interval = "{interval}s"')
        issue = _plan(cfg, total)
        first = Daemon(cfg)
        daemons.append(first)
        _wait(lambda: len(server.handler.received) >= total // 2, 60, "half the issue", first)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        killed_at = len(server.handler.received)
        assert killed_at < total, "the kill must land before the end of the issue"
        restarted = time.monotonic()
        second = Daemon(cfg)
        daemons.append(second)
        _wait(lambda: digest_status(cfg)[0].status == "done", interval, "the issue done",
              second)
        took = time.monotonic() - restarted
        second.wait_for(r"event=queue issues=" + str(issue))
        assert second.stop() == 0
    copies = server.handler.copies()
    assert set(copies) == {f"user{i}@example.com" for i in range(total)}
    assert sum(n - 1 for n in copies.values()) <= connections * IN_FLIGHT, copies
    [status] = digest_status(cfg)
    assert (status.sent, status.pending, status.deferred, status.failed) == (total, 0, 0, 0)
    assert took < interval


def test_greylisted_recipient_is_retried_on_schedule_and_holds_nobody_up(make_site,
                                                                         daemons) -> None:
    grey = "user3@example.com"
    with SmtpServer(greylisting(grey, 2)) as server:
        cfg = _site(make_site, server, delivery='retry_first = "2s"\nretry_max_interval = "3s"'
                                                '\nretry_give_up = "1h"\nqueue_interval = 0.5')
        _plan(cfg, 10)
        daemon = Daemon(cfg)
        daemons.append(daemon)
        # The server holds a copy before its acceptance reaches the sender, whose group
        # record follows: wait for the record too, not only for the copies.
        _wait(lambda: len(server.handler.received) >= 9 and digest_status(cfg)[0].sent >= 9,
              30, "the nine others, recorded", daemon)
        others_done = time.monotonic()
        [waiting] = digest_status(cfg)
        assert (waiting.sent, waiting.deferred) == (9, 1)
        assert waiting.last_reply and "451 4.7.1 greylisted" in waiting.last_reply
        assert waiting.next_attempt is not None
        out = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                              str(cfg.root / "config.toml"), "digest", "status"],
                             capture_output=True, text=True, timeout=60).stdout
        assert "next attempt" in out and "451 4.7.1 greylisted" in out, out
        _wait(lambda: server.handler.copies().get(grey) == 1, 30, "the greylisted copy", daemon)
        assert daemon.stop() == 0
    times = server.handler.rcpt_times[grey]
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 2 * 0.95 and gaps[1] >= 3 * 0.95, gaps  # 2 s, then doubled, capped at 3
    assert gaps[0] < 2 + 5 and gaps[1] < 3 + 5, gaps  # and picked up soon after it fell due
    assert others_done < times[1]  # the others went out before its first retry
    assert server.handler.copies() == {f"user{i}@example.com": 1 for i in range(10)}
    assert digest_status(cfg)[0].status == "done"


def _rewind_daily_job(cfg: Config) -> None:
    """As if the daemon had been down over the daily run: a catch-up run is due at start."""
    store = SQLAlchemyJobStore(url=cfg.database_url, tablename=JOB_TABLE)
    job = store.lookup_job("digest-daily")
    job.next_run_time = job.next_run_time - timedelta(days=2)
    store.update_job(job)
    store.shutdown()


def test_an_older_issue_left_deferred_never_holds_up_the_next_period(make_site,
                                                                     daemons) -> None:
    with SmtpServer(greylisting("reader0@example.org", 0)) as server:
        at = datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(hours=3)
        cfg = make_site(extra=server.config().replace(
            "retry_first = 0.05", 'retry_first = "1h"\nqueue_interval = "1s"') + f"""
            [schedule]
            daily = "{at.minute} {at.hour} * * *"
            weekly = ""
            grace_seconds = 14400
            """)
        with open_store(cfg) as store:
            for n in range(5):
                store.add_subscriber(f"reader{n}@example.org", cadence="daily")
        yesterday = datetime.now(UTC) - timedelta(days=1)
        old = send_digest(cfg, "daily", now=yesterday, articles=[article(1, now=yesterday)])
        assert (old.sent, old.deferred) == (4, 1)
        _recent_article(cfg)
        first = Daemon(cfg)  # stores the daily job (next run: tomorrow), then stops
        daemons.append(first)
        first.url  # noqa: B018
        assert first.stop() == 0
        _rewind_daily_job(cfg)
        second = Daemon(cfg)
        daemons.append(second)
        _wait(lambda: len(digest_status(cfg)) == 2 and digest_status(cfg)[0].sent == 4, 40,
              "the next period's issue", second)
        second.wait_for(r"event=digest cadence=daily .*sent=4 .*deferred=1")
        assert second.stop() == 0
    new, older = digest_status(cfg)
    assert new.issue_id > older.issue_id == old.issue_id
    assert (older.status, older.sent, older.deferred) == ("pending", 4, 1)
    assert (new.status, new.sent, new.deferred) == ("pending", 4, 1)
    assert older.next_attempt is not None and older.next_attempt > datetime.now(UTC)
    copies = server.handler.copies()
    assert copies == {f"reader{n}@example.org": 2 for n in range(1, 5)}
    subjects = {item.message()["Subject"] for item in server.handler.received}
    assert len(subjects) == 2  # two issues, both sent


def test_one_click_unsubscribe_during_a_slow_send_stops_the_next_message(make_site,
                                                                          daemons) -> None:
    """The rows were all read in one batch before the unsubscribe: only the check made
    right before each message can stop it."""
    total, leaver = 30, "user14@example.com"
    with SmtpServer() as server:
        cfg = _site(make_site, server, "rate = 5.0")
        issue = _plan(cfg, total)
        with open_store(cfg) as store:
            sub = store.get_subscriber(leaver)
        assert sub is not None
        unsubscribe = link(cfg, "unsubscribe", sub.id, sub.email)
        daemon = Daemon(cfg)
        daemons.append(daemon)
        base = daemon.url
        _wait(lambda: len(server.handler.received) >= 10, 30, "ten messages", daemon)
        target = base + "unsubscribe?" + unsubscribe.split("?", 1)[1]
        response = httpx.post(target, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert response.status_code == 200
        at_unsubscribe = len(server.handler.received)
        assert at_unsubscribe < 14, "the unsubscribe must come before that address's turn"
        _wait(lambda: digest_status(cfg)[0].status == "done", 60, "the issue done", daemon)
        assert daemon.stop() == 0
    copies = server.handler.copies()
    assert leaver not in copies
    assert copies == {f"user{i}@example.com": 1 for i in range(total) if i != 14}
    with open_store(cfg) as store, store.engine.connect() as conn:
        row = conn.execute(sa.select(schema.outbox).where(
            schema.outbox.c.issue_id == issue, schema.outbox.c.email == leaver)).one()
    assert row.status == "failed" and row.reply == "not sent: subscriber is unsubscribed"


def test_an_unreachable_relay_defers_warns_then_delivers_each_once(make_site,
                                                                   daemons) -> None:
    port = free_port()
    cfg = _site(make_site, None, port=port, delivery='queue_interval = "1s"')
    _plan(cfg, 5)
    daemon = Daemon(cfg)
    daemons.append(daemon)
    daemon.wait_for(r"event=queue_deferred .*127\.0\.0\.1:" + str(port))
    command = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"),
               "status"]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert "queue:        5 to send, 0 deferred" in shown, shown
    assert "warning: the mail server could not be used since" in shown, shown
    assert f"127.0.0.1:{port}" in shown
    [waiting] = digest_status(cfg)
    assert (waiting.pending, waiting.failed, waiting.sent) == (5, 0, 0)  # nothing lost
    server = SmtpServer(Handler())
    server.port = server.controller.port = port
    with server:
        _wait(lambda: digest_status(cfg)[0].status == "done", 20, "the issue done", daemon)
        assert daemon.stop() == 0
    assert server.handler.copies() == {f"user{i}@example.com": 1 for i in range(5)}
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert "warning: the mail server" not in shown and "queue:        0 to send" in shown
