"""The outbox: rows written before sending, exactly once, retries, bounces, stop and crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpub.config import Config
from feedpub.delivery.window import IN_FLIGHT
from feedpub.errors import DigestError
from feedpub.jobs.mailing import (
    SendBusyError,
    digest_status,
    plan_issue,
    preview_digest,
    send_digest,
)
from feedpub.jobs.queue import retry_now, run_queue
from feedpub.store import open_store, schema
from feedpub.store.outbox import Outbox
from mail_helpers import NOW, add_subscribers, article
from smtp_server import SmtpServer, smtp_server

BOTH_DATABASES = True  # each test runs on SQLite and on PostgreSQL (conftest)

__all__ = ["smtp_server"]


def rows(cfg, issue_id: int) -> list[sa.Row]:
    with open_store(cfg) as store, store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.outbox).where(
            schema.outbox.c.issue_id == issue_id).order_by(schema.outbox.c.id)))


def test_issue_and_all_rows_exist_before_sending(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        add_subscribers(store, 5)
        add_subscribers(store, 2, start=10, status="pending")
        add_subscribers(store, 1, start=20, cadence="daily")
        issue = plan_issue(cfg, store, "weekly", now=NOW, articles=[article(1), article(2)])
        assert issue is not None and issue.total == 5 and issue.status == "pending"
        with pytest.raises(sa.exc.IntegrityError), store.writer.begin() as conn:
            first = conn.execute(sa.select(schema.outbox).limit(1)).one()
            conn.execute(schema.outbox.insert().values(
                issue_id=first.issue_id, subscriber_id=first.subscriber_id,
                variant_id=first.variant_id, email=first.email, status="pending"))
    assert {r.status for r in rows(cfg, issue.id)} == {"pending"}
    [counts] = digest_status(cfg)
    assert (counts.pending, counts.sent, counts.failed) == (5, 0, 0)


def test_nothing_new_sends_nothing_and_edits_are_never_resent(make_site,
                                                              smtp_server: SmtpServer,
                                                              caplog) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        add_subscribers(store, 2)
    old = article(9, hours_ago=24 * 30)  # outside the first week: never flooded
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1), old])
    assert report.sent == 2 and report.articles == 1
    edited = article(1, title="Edited title", updated=NOW + timedelta(hours=1))
    caplog.set_level("INFO", logger="feedpub")
    again = send_digest(cfg, "weekly", now=NOW + timedelta(days=7), articles=[edited, old])
    assert again.issue_id is None and "nothing new" in again.summary
    assert "no new article" in caplog.text
    assert len(smtp_server.handler.received) == 2
    fresh = article(2, now=NOW + timedelta(days=7))
    third = send_digest(cfg, "weekly", now=NOW + timedelta(days=7), articles=[fresh, edited])
    assert third.articles == 1 and third.sent == 2
    last = smtp_server.handler.received[-1].message()
    assert "Article number 2" in last.get_body(("plain",)).get_content()
    assert "Edited title" not in last.get_body(("plain",)).get_content()


def test_temporary_failures_are_deferred_on_the_backoff_schedule(
        make_site, smtp_server: SmtpServer) -> None:
    """A 4xx defers the row (nobody else waits); later runs retry it no sooner than its
    next attempt, doubling up to retry_max_interval; past retry_give_up it is failed."""
    cfg = make_site(extra=smtp_server.config(extra="per_connection = 1000").replace(
        "retry_first = 0.05", 'retry_first = "0.2s"\nretry_max_interval = 0.4\n'
                              'retry_give_up = "2s"'))
    handler = smtp_server.handler
    handler.rcpt_replies["user1@example.com"] = ["451 4.3.0 try later", "451 4.3.0 again", "250"]
    handler.rcpt_replies["user2@example.com"] = ["421 4.3.2 shutting down", "250"]
    handler.rcpt_replies["user3@example.com"] = ["452 4.2.2 mailbox full"]  # always
    with open_store(cfg) as store:
        add_subscribers(store, 5)
    queued_no_sooner = time.monotonic()  # the rows are queued while the issue is planned
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert handler.copies() == {"user0@example.com": 1, "user4@example.com": 1}
    assert (report.sent, report.retried, report.deferred, report.pending) == (2, 3, 3, 3)
    assert "3 deferred, next attempt" in report.summary
    [counts] = digest_status(cfg)
    assert (counts.status, counts.sent, counts.deferred, counts.pending) == ("pending", 2, 3, 0)
    assert counts.next_attempt is not None and counts.last_reply
    deadline = time.monotonic() + 30
    while digest_status(cfg)[0].status == "pending":
        assert time.monotonic() < deadline, digest_status(cfg)
        run_queue(cfg)
        time.sleep(0.02)
    assert handler.copies() == {f"user{i}@example.com": 1 for i in (0, 1, 2, 4)}
    by_email = {r.email: r for r in rows(cfg, report.issue_id)}
    assert by_email["user1@example.com"].attempts == 3
    assert by_email["user1@example.com"].reply.startswith("250")
    failed = by_email["user3@example.com"]
    assert failed.status == "failed" and failed.reply.startswith("gave up after")
    assert "452 4.2.2 mailbox full" in failed.reply
    assert handler.sessions >= 2  # 421 closed the session; a new one was opened
    times = handler.rcpt_times["user1@example.com"]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.2 * 0.95 and gaps[1] >= 0.4 * 0.95, gaps  # never before its time
    tries = handler.rcpt_times["user3@example.com"]
    # tried until the give-up time, which counts from when the row was queued
    assert 2.0 * 0.95 <= tries[-1] - queued_no_sooner < 10, (queued_no_sooner, tries)
    spacing = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    # each wait at least the schedule's; only the last one is cut short, to end at the deadline
    assert all(gap >= 0.2 * 0.95 for gap in spacing[:-1]), spacing
    assert max(spacing[1:]) <= 0.4 + 1.0, spacing  # capped at retry_max_interval (+ slack)
    [counts] = digest_status(cfg)
    assert (counts.status, counts.sent, counts.failed, counts.deferred) == ("done", 4, 1, 0)


def _bounce_site(make_site, smtp_server: SmtpServer, *, bounce_limit: int) -> Config:
    """A site sending to `smtp_server` with fast retries and the given bounce limit."""
    return make_site(extra=smtp_server.config().replace(
        "retry_first = 0.05", f"retry_first = 0.05\nbounce_limit = {bounce_limit}"))


def test_hard_bounces_fail_the_row_and_finally_the_subscriber(make_site,
                                                              smtp_server: SmtpServer) -> None:
    cfg = _bounce_site(make_site, smtp_server, bounce_limit=2)
    handler = smtp_server.handler
    handler.rcpt_replies["user0@example.com"] = ["550 5.1.1 no such user"]
    # a policy block of our sending host, at RCPT: says nothing about the address
    handler.rcpt_replies["user2@example.com"] = ["550 5.7.1 client host blocked"]
    handler.data_replies["user3@example.com"] = ["552 5.2.3 message too large"]
    with open_store(cfg) as store:
        add_subscribers(store, 4)
    first = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert (first.sent, first.failed, first.bounced) == (1, 3, 0)
    later = NOW + timedelta(days=7)
    second = send_digest(cfg, "weekly", now=later, articles=[article(2, now=later)])
    assert (second.sent, second.failed, second.bounced) == (1, 3, 1)
    with open_store(cfg) as store:
        assert store.get_subscriber("user0@example.com").status == "bounced"
        for other in ("user1", "user2", "user3"):
            assert store.get_subscriber(f"{other}@example.com").status == "active"
        with store.engine.connect() as conn:
            bounces = dict(conn.execute(sa.select(schema.subscribers.c.email,
                                                  schema.subscribers.c.bounces)).all())
    assert bounces["user2@example.com"] == bounces["user3@example.com"] == 0
    failed = {r.email: r for r in rows(cfg, first.issue_id) if r.status == "failed"}
    assert set(failed) == {"user0@example.com", "user2@example.com", "user3@example.com"}
    assert "550 5.7.1 client host blocked" in failed["user2@example.com"].reply
    third_time = NOW + timedelta(days=14)
    third = send_digest(cfg, "weekly", now=third_time, articles=[article(3, now=third_time)])
    assert third.total == 3  # the bounced subscriber is no longer mailed
    assert "550" in failed["user0@example.com"].reply


def test_only_recipient_failures_count_as_bounces_and_a_delivery_resets_them(
        make_site, smtp_server: SmtpServer) -> None:
    cfg = _bounce_site(make_site, smtp_server, bounce_limit=2)
    handler = smtp_server.handler
    for i in range(3):  # the content is refused for everyone, twice: nobody bounces
        handler.data_replies[f"user{i}@example.com"] = ["554 5.7.1 content rejected",
                                                        "554 5.7.1 content rejected", "250"]
    handler.rcpt_replies["user1@example.com"] = ["250", "250", "550 5.1.1 no such user",
                                                 "250", "550 5.1.1 no such user"]
    handler.data_replies["user2@example.com"] = ["554 5.7.1 content rejected",
                                                 "554 5.7.1 content rejected",
                                                 "552 5.2.2 mailbox full",
                                                 "552 5.2.2 mailbox full"]
    with open_store(cfg) as store:
        add_subscribers(store, 3)
    reports = []
    for week in range(5):
        when = NOW + timedelta(days=7 * week)
        reports.append(send_digest(cfg, "weekly", now=when, articles=[article(week, now=when)]))
    assert [(r.sent, r.failed, r.bounced) for r in reports[:2]] == [(0, 3, 0), (0, 3, 0)]
    first = rows(cfg, reports[0].issue_id)
    assert {r.status for r in first} == {"failed"} and "554" in first[0].reply
    with open_store(cfg) as store:
        # 550 in week 3, delivered in week 4, 550 in week 5: never two in a row
        assert store.get_subscriber("user1@example.com").status == "active"
        # two 5.2.2 at DATA in a row (weeks 3 and 4): a recipient failure, bounced
        assert store.get_subscriber("user2@example.com").status == "bounced"
        assert store.get_subscriber("user0@example.com").status == "active"
    assert reports[3].bounced == 1 and reports[4].total == 2


def test_a_failure_is_counted_only_when_it_changed_the_row(make_site,
                                                          smtp_server: SmtpServer) -> None:
    cfg = _bounce_site(make_site, smtp_server, bounce_limit=1)
    handler = smtp_server.handler
    handler.rcpt_replies["user1@example.com"] = ["550 5.1.1 no such user"]

    def recorded_elsewhere(address: str) -> None:  # the row is settled before the 550 comes
        if address == "user1@example.com":
            with open_store(cfg) as store, store.writer.begin() as conn:
                conn.execute(schema.outbox.update().where(
                    schema.outbox.c.email == address).values(status="sent", reply="250 ok"))

    handler.on_rcpt = recorded_elsewhere
    with open_store(cfg) as store:
        add_subscribers(store, 3)
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert (report.sent, report.failed, report.bounced, report.pending) == (2, 0, 0, 0)
    by_email = {r.email: r for r in rows(cfg, report.issue_id)}
    assert by_email["user1@example.com"].status == "sent"
    assert by_email["user1@example.com"].reply == "250 ok"
    with open_store(cfg) as store:
        assert store.get_subscriber("user1@example.com").status == "active"


def test_dropped_connection_mid_batch_loses_and_repeats_nothing(make_site,
                                                                smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config(extra="per_connection = 1000").replace(
        "retry_first = 0.05", 'retry_first = "1h"\nretry_max_interval = "1h"'))
    smtp_server.handler.drop_at = {3, 7}
    with open_store(cfg) as store:
        add_subscribers(store, 10)
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    # the two messages whose connection dropped are deferred (retry_first), the rest go on
    assert (report.sent, report.deferred, report.pending) == (8, 2, 2)
    assert smtp_server.handler.sessions == 3
    assert run_queue(cfg).sent == 0  # not due for an hour
    assert retry_now(cfg) == 2  # the operator fixed the relay
    again = run_queue(cfg)
    assert again.sent == 2 and again.issues[0].pending == 0
    assert smtp_server.handler.copies() == {f"user{i}@example.com": 1 for i in range(10)}


def test_unsubscribed_after_planning_gets_nothing(make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        ids = add_subscribers(store, 3)
        plan_issue(cfg, store, "weekly", now=NOW, articles=[article(1)])
        store.set_status(ids[1], "unsubscribed")
    report = send_digest(cfg, "weekly", now=NOW)
    assert report.resumed and report.sent == 2 and report.failed == 1
    assert "user1@example.com" not in smtp_server.handler.copies()


def test_tag_filters_and_cadences_pick_the_right_variant(make_site,
                                                         smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        store.add_subscriber("all@example.com")
        store.add_subscriber("py@example.com", tags=["python"])
        store.add_subscriber("rust@example.com", tags=["rust"])
        store.add_subscriber("daily@example.com", cadence="daily")
    arts = [article(1, tags=("Python",)), article(2, tags=("go",))]
    report = send_digest(cfg, "weekly", now=NOW, articles=arts)
    assert report.total == 2
    got = {r.rcpt_tos[0]: r.message().get_body(("plain",)).get_content()
           for r in smtp_server.handler.received}
    assert set(got) == {"all@example.com", "py@example.com"}
    assert "Article number 2" in got["all@example.com"]
    assert "Article number 1" in got["py@example.com"]
    assert "Article number 2" not in got["py@example.com"]
    daily = send_digest(cfg, "daily", now=NOW, articles=arts)
    assert daily.total == 1 and smtp_server.handler.copies()["daily@example.com"] == 1


def test_stop_finishes_in_flight_and_the_next_run_resumes(make_site,
                                                          smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config(extra="connections = 2"))
    with open_store(cfg) as store:
        add_subscribers(store, 40)
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 10:
            stop.set()

    first = send_digest(cfg, "weekly", now=NOW, articles=[article(1)], stop=stop,
                        progress=progress)
    assert first.stopped and 10 <= first.sent < 40 and first.pending == 40 - first.sent
    assert seen[0] == (0, 40)
    second = send_digest(cfg, "weekly", now=NOW)
    assert second.resumed and second.sent == first.pending
    assert smtp_server.handler.copies() == {f"user{i}@example.com": 1 for i in range(40)}


def test_a_second_sender_stops_while_one_is_sending(make_site,
                                                   smtp_server: SmtpServer) -> None:
    handler = smtp_server.handler
    handler.gate = threading.Event()  # the first sender is held mid-message until released
    cfg = make_site(extra=smtp_server.config(extra="connections = 2"))
    with open_store(cfg) as store:
        add_subscribers(store, 60)
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(
        send_digest(cfg, "weekly", now=NOW, articles=[article(1)])), daemon=True)
    first.start()
    try:
        assert handler.data_waiting.wait(60) and first.is_alive()
        with pytest.raises(SendBusyError, match=rf"weekly digest is already being sent.*"
                                                 rf"pid {os.getpid()}.*digest-weekly\.lock"):
            send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    finally:
        handler.gate.set()
    first.join(120)
    [report] = results
    assert report.sent == 60
    assert send_digest(cfg, "weekly", now=NOW, articles=[article(1)]).issue_id is None
    assert smtp_server.handler.copies() == {f"user{i}@example.com": 1 for i in range(60)}


def test_two_concurrent_send_commands_deliver_each_copy_once(make_site) -> None:
    subscribers = 120
    with SmtpServer() as server:
        server.handler.data_delay = 0.005
        cfg = make_site(extra=server.config(extra="connections = 2"))
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        (cfg.articles_dir / "news.md").write_text(
            f"---\ntitle: Twice\ndate: {yesterday}\n---\nHello.\n", encoding="utf-8")
        with open_store(cfg) as store:
            add_subscribers(store, subscribers)
        command = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"),
                   "digest", "send", "--cadence", "weekly"]
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for _ in range(2)]
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
        copies = server.handler.copies()
    assert copies == {f"user{i}@example.com": 1 for i in range(subscribers)}, outputs
    sent = [out for out in outputs if f"{subscribers} sent" in out]
    assert len(sent) == 1, outputs
    other = outputs[1 - outputs.index(sent[0])]
    assert "already being sent" in other or "nothing new" in other, other
    [status] = digest_status(cfg)
    assert (status.status, status.sent) == ("done", subscribers)


def test_mark_sent_reports_whether_it_recorded_anything(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        add_subscribers(store, 1)
        issue = plan_issue(cfg, store, "weekly", now=NOW, articles=[article(1)])
        [row] = Outbox(store).due_rows(issue.id, after_id=0, now=NOW)
        assert Outbox(store).mark_sent(row.id, "250 ok", NOW) == 1
        assert Outbox(store).mark_sent(row.id, "250 again", NOW) == 0
    [stored] = rows(cfg, issue.id)
    assert (stored.status, stored.reply, stored.attempts) == ("sent", "250 ok", 1)


def test_an_issue_nobody_would_receive_records_nothing(make_site, smtp_server: SmtpServer,
                                                       caplog) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        store.add_subscriber("rust@example.com", tags=["rust"])
        store.add_subscriber("late@example.com", status="pending")
    caplog.set_level("INFO", logger="feedpub")
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1, tags=("python",))])
    assert report.issue_id is None and report.articles == 1
    assert "no subscriber would receive them" in report.summary
    assert "nothing sent or recorded" in caplog.text
    assert digest_status(cfg) == []
    with open_store(cfg) as store:
        assert Outbox(store).sent_article_ids("weekly") == set()
        store.set_status(store.get_subscriber("late@example.com").id, "active")
    later = send_digest(cfg, "weekly", now=NOW + timedelta(hours=1),
                        articles=[article(1, tags=("python",))])
    assert later.sent == 1 and later.articles == 1
    assert smtp_server.handler.copies() == {"late@example.com": 1}


def test_the_issue_is_rendered_once_for_all_subscribers(make_site, monkeypatch) -> None:
    import feedpub.jobs.mailing as mailing

    calls: list[int] = []
    real = mailing.render_digest

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mailing, "render_digest", counting)
    cfg = make_site()
    with open_store(cfg) as store:
        add_subscribers(store, 30)
    assert send_digest(cfg, "weekly", now=NOW, articles=[article(1)]).sent == 30
    assert len(calls) == 1


CRASH_SUBSCRIBERS = 500


def test_crash_mid_issue_then_restart_sends_each_copy_once(make_site, tmp_path: Path) -> None:
    """SIGKILL the sending process halfway: every subscriber gets a copy, and the restart
    repeats at most the messages a session sends between two group commits, per session."""
    connections = 2
    with SmtpServer() as server:
        server.handler.data_delay = 0.004
        cfg = make_site(extra=server.config(extra=f"connections = {connections}"))
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        (cfg.articles_dir / "news.md").write_text(
            f"---\ntitle: Crash course\ndate: {yesterday}\n---\nHello, *world*.\n",
            encoding="utf-8")
        with open_store(cfg) as store:
            add_subscribers(store, CRASH_SUBSCRIBERS)
        command = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"),
                   "digest", "send", "--cadence", "weekly"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(server.handler.received) < CRASH_SUBSCRIBERS // 2:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = len(server.handler.received)
        assert CRASH_SUBSCRIBERS // 2 <= killed_at < CRASH_SUBSCRIBERS, \
            "the kill must land halfway through the issue"
        [status] = digest_status(cfg)
        assert status.status == "pending" and status.pending > 0
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "resumed" in done.stdout
    copies = server.handler.copies()
    assert set(copies) == {f"user{i}@example.com" for i in range(CRASH_SUBSCRIBERS)}
    repeats = sum(n - 1 for n in copies.values())
    assert repeats <= connections * IN_FLIGHT, copies  # the documented duplicate bound
    [status] = digest_status(cfg)
    assert (status.status, status.sent, status.pending) == ("done", CRASH_SUBSCRIBERS, 0)
    ids: dict[str, set[str]] = {}
    for item in server.handler.received:
        msg = item.message()
        assert msg["Subject"] == "Test Site: 1 new, Crash course"
        ids.setdefault(item.rcpt_tos[0], set()).add(msg["Message-ID"])
        assert msg.get_body(("html",)) is not None
    assert all(len(v) == 1 for v in ids.values())  # a repeat carries the same Message-ID


def test_outbox_counts_per_issue(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        add_subscribers(store, 4)
    send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    with open_store(cfg) as store:
        [counts] = Outbox(store).counts()
    assert (counts.cadence, counts.sent, counts.pending, counts.failed) == ("weekly", 4, 0, 0)


def test_preview_of_an_unfinished_issue_uses_the_subscribers_variant(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        store.add_subscriber("all@example.com")
        store.add_subscriber("py@example.com", "Py Fan", tags=["python"])
        plan_issue(cfg, store, "weekly", now=NOW,
                   articles=[article(1, tags=("python",)), article(2)])
    shown = preview_digest(cfg, "weekly", email="py@example.com")
    assert shown is not None and shown.issue_id is not None
    assert shown.articles == 1 and shown.recipient == "py@example.com"
    assert "Hello Py Fan," in shown.html
    assert preview_digest(cfg, "weekly", email="all@example.com").articles == 2
    [counts] = digest_status(cfg)
    assert counts.pending == 2  # previews change nothing


def test_preview_for_a_subscriber_is_their_exact_next_message(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        store.add_subscriber("daily@example.com", "Dee", cadence="daily")
        store.add_subscriber("rust@example.com", tags=["rust"])
        store.add_subscriber("py@example.com", tags=["python"])
    arts = [article(1, tags=("python",)), article(2)]
    shown = preview_digest(cfg, email="daily@example.com", now=NOW, articles=arts)
    assert shown is not None and shown.cadence == "daily"  # their own cadence by default
    assert shown.recipient == "daily@example.com" and shown.articles == 2
    with pytest.raises(DigestError, match="receives the daily digest, not the weekly"):
        preview_digest(cfg, "weekly", email="daily@example.com", now=NOW, articles=arts)
    with pytest.raises(DigestError, match=r"rust@example\.com receives nothing in the next "
                                          r"weekly issue.*\(rust\)"):
        preview_digest(cfg, email="rust@example.com", now=NOW, articles=arts)
    with open_store(cfg) as store:
        plan_issue(cfg, store, "weekly", now=NOW, articles=arts)
    with pytest.raises(DigestError, match="no message left in the unfinished weekly issue"):
        preview_digest(cfg, email="rust@example.com", now=NOW)
    assert preview_digest(cfg, email="py@example.com", now=NOW).articles == 1
