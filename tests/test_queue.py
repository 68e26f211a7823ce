"""The delivery queue's pieces on real SQLite files: the schema step that adds it, the retry
schedule, "retry now", expiry while the relay is down, the per-message status check and the
durable commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from feedpub.config import parse_config
from feedpub.delivery.backoff import next_attempt, retry_delay
from feedpub.errors import DeliveryError
from feedpub.jobs.mailing import digest_status, plan_issue, send_digest
from feedpub.jobs.queue import queue_summary, retry_now, run_queue
from feedpub.store import open_store, schema
from feedpub.store.dialect import create_engine
from feedpub.store.hotpath import LiveStatus
from feedpub.store.outbox import Outbox
from feedpub.store.queue import DeliveryQueue
from mail_helpers import add_subscribers, article
from smtp_server import SmtpServer, free_port, greylisting


def test_the_retry_schedule_doubles_caps_and_ends_at_the_deadline(tmp_path) -> None:
    settings = parse_config('[delivery]\nretry_first = "5m"\nretry_max_interval = "1h"\n'
                            'retry_give_up = "4d"\n', tmp_path).delivery
    assert [retry_delay(settings, n) for n in range(1, 8)] == [
        300, 600, 1200, 2400, 3600, 3600, 3600]
    assert retry_delay(settings, 500) == 3600
    queued = datetime(2026, 12, 1, tzinfo=UTC)
    now = queued + timedelta(hours=2)
    assert next_attempt(settings, 1, now, queued) == now + timedelta(minutes=5)
    near_end = queued + timedelta(days=4) - timedelta(minutes=10)
    assert next_attempt(settings, 40, near_end, queued) == queued + timedelta(days=4)
    assert next_attempt(settings, 41, queued + timedelta(days=4), queued) is None


def test_the_queue_step_migrates_an_outbox_written_before_it(site) -> None:
    engine = create_engine(site.database_url)
    created = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        for number, step in enumerate(schema.MIGRATIONS[:2], start=1):
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number,
                                                               applied=created))
        # the outbox as step 2 first created it: no queue column, no due index
        conn.exec_driver_sql("DROP INDEX ix_outbox_due")
        conn.exec_driver_sql("ALTER TABLE outbox DROP COLUMN queued_at")
        conn.exec_driver_sql(
            "INSERT INTO subscribers (email, status, created, tags, bounces) "
            "VALUES ('old@example.com', 'active', '2026-11-01 00:00:00', '', 0)")
        conn.exec_driver_sql(
            "INSERT INTO issues (cadence, created, since, status, article_ids, total) "
            "VALUES ('weekly', '2026-11-02 08:00:00', '2026-10-26 08:00:00', 'pending', "
            "'[]', 1)")
        conn.exec_driver_sql(
            "INSERT INTO variants (issue_id, tags, subject, html, text, article_ids) "
            "VALUES (1, '', 's', '<p>h</p>', 't', '[]')")
        conn.exec_driver_sql(
            "INSERT INTO outbox (issue_id, subscriber_id, variant_id, email, status, attempts) "
            "VALUES (1, 1, 1, 'old@example.com', 'pending', 0)")
    engine.dispose()
    with open_store(site, upgrade=True) as store:  # what `feedpub db upgrade` does
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(schema.outbox)).one()
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("outbox")}
        assert row.queued_at == created  # its issue's creation
        assert "ix_outbox_due" in indexes
        [due] = Outbox(store).due_rows(1, after_id=0, now=datetime.now(UTC))
        assert due.queued_at == created


def test_retry_now_makes_deferred_rows_due_and_status_shows_the_oldest(make_site) -> None:
    grey = "user1@example.com"
    with SmtpServer(greylisting(grey, 1)) as server:
        cfg = make_site(extra=server.config().replace("retry_first = 0.05",
                                                      'retry_first = "1h"'))
        with open_store(cfg) as store:
            add_subscribers(store, 3)
        now = datetime.now(UTC)
        first = send_digest(cfg, "weekly", now=now, articles=[article(1, now=now)])
        assert (first.sent, first.deferred) == (2, 1)
        summary, relay = queue_summary(cfg)
        assert (summary.size, summary.deferred, relay) == (1, 1, None)
        oldest = summary.oldest_deferred
        assert oldest is not None and oldest.email == grey and oldest.attempts == 1
        assert "451 4.7.1 greylisted" in oldest.reply
        assert timedelta(minutes=59) < oldest.next_attempt - now < timedelta(minutes=61)
        assert run_queue(cfg).sent == 0  # not before its next attempt
        assert retry_now(cfg) == 1
        assert run_queue(cfg).sent == 1
    assert server.handler.copies() == {f"user{i}@example.com": 1 for i in range(3)}
    assert queue_summary(cfg)[0].size == 0


def test_rows_queued_past_the_give_up_time_fail_while_the_relay_is_down(make_site) -> None:
    port = free_port()
    cfg = make_site(extra=f'\n[delivery]\nbackend = "smtp"\nretry_first = "1s"\n'
                          f'retry_give_up = "2s"\n[delivery.smtp]\nhost = "127.0.0.1"\n'
                          f'port = {port}\nsecurity = "none"\ntimeout = 2.0\n')
    with open_store(cfg) as store:
        add_subscribers(store, 2)
        now = datetime.now(UTC)
        plan_issue(cfg, store, "weekly", now=now, articles=[article(1, now=now)])
    report = run_queue(cfg)
    assert report.error is not None and f"127.0.0.1:{port}" in report.error
    assert report.expired == 0 and digest_status(cfg)[0].pending == 2  # kept, not lost
    with open_store(cfg) as store, store.writer.begin() as conn:  # as if queued long ago
        conn.execute(schema.outbox.update().values(
            queued_at=datetime.now(UTC) - timedelta(seconds=3)))
    later = run_queue(cfg)
    assert later.expired == 2
    [status] = digest_status(cfg)
    assert (status.status, status.failed, status.pending) == ("done", 2, 0)
    with open_store(cfg) as store, store.engine.connect() as conn:
        replies = conn.execute(sa.select(schema.outbox.c.reply)).scalars().all()
    assert all(r.startswith("gave up: queued more than 2 s ago") for r in replies)
    later_on = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{port}"):  # `send` still fails
        send_digest(cfg, "weekly", now=later_on, articles=[article(2, now=later_on)])
    assert digest_status(cfg)[0].pending == 2  # the new issue waits, whole


def test_the_live_check_sees_each_commit_made_before_it(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store:
        ids = add_subscribers(store, 3)
        now = datetime.now(UTC)
        issue = plan_issue(cfg, store, "weekly", now=now, articles=[article(1, now=now)])
        assert issue is not None
        rows = Outbox(store).due_rows(issue.id, after_id=0, now=now)
        with LiveStatus(store.engine) as live:
            assert [live.check(r.id) for r in rows] == ["active"] * 3
            store.set_status(ids[0], "unsubscribed")
            store.set_status(ids[1], "bounced")
            store.delete_subscriber(ids[2])
            assert [live.check(r.id) for r in rows] == ["unsubscribed", "bounced", None]
        assert DeliveryQueue(store).summary().size == 2


def test_store_commits_are_synced_to_disk(make_site) -> None:
    cfg = make_site()
    with open_store(cfg) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
