"""The send loop's per-window statements on SQLite and PostgreSQL: the status check answers
as a check per row and finds its rows by primary key; the group record leaves the rows and
subscribers as a delivery must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from feedpub.config import Config
from feedpub.jobs.mailing import plan_issue
from feedpub.store import Store, open_store, schema
from feedpub.store.hotpath import LiveStatus, SentRecorder
from feedpub.store.outbox import Outbox, OutboxRow
from mail_helpers import add_subscribers, article

BOTH_DATABASES = True


def _issue_rows(cfg: Config, store: Store, count: int) -> tuple[list[int], list[OutboxRow]]:
    ids = add_subscribers(store, count)
    now = datetime.now(UTC)
    issue = plan_issue(cfg, store, "weekly", now=now, articles=[article(1, now=now)])
    assert issue is not None
    return ids, Outbox(store).due_rows(issue.id, after_id=0, now=now)


def _plan(conn: sa.Connection, sql: str, params: list[object]) -> str:
    return " | ".join(str(step[-1]) for step in conn.exec_driver_sql(
        "EXPLAIN QUERY PLAN " + sql, tuple(params)))


def test_the_window_check_answers_as_one_check_per_row(make_site) -> None:
    """The check before each window answers like one check per row, and on SQLite finds
    the rows by primary key: with the status index it walked every pending row of the
    issue, which while an issue is sent is nearly all of them."""
    cfg = make_site()
    with open_store(cfg) as store:
        ids, rows = _issue_rows(cfg, store, 12)
        store.set_status(ids[3], "unsubscribed")
        SentRecorder(store.engine).record([(rows[5].id, "250 ok")], datetime.now(UTC))
        store.delete_subscriber(ids[6])
        window = [row.id for row in rows[:8]]
        with LiveStatus(store.engine) as live:
            expected = {row_id: live.check(row_id) for row_id in window}
            assert live.check_many(window) == {
                row_id: status for row_id, status in expected.items() if status is not None}
            assert [expected[rows[n].id] for n in (0, 3, 5, 6)] == [
                "active", "unsubscribed", None, None]
            if store.engine.dialect.name == "sqlite":
                prepared = live._many[len(window)]
                values = {**prepared.fixed, **{f"id{n}": i for n, i in enumerate(window)}}
                with store.engine.connect() as conn:
                    plan = _plan(conn, prepared.sql, [values[k] for k in prepared.order or []])
                assert "ix_outbox" not in plan and "PRIMARY KEY" in plan, plan


def test_the_group_record_marks_what_the_server_accepted(make_site) -> None:
    """Two windows of an issue recorded: the rows still pending become sent with their
    reply, the sent time and one more attempt, and each subscriber's count of hard bounces
    is reset; a row no longer pending is left alone (and not reported as changed), also
    when the same window is recorded twice. The record is committed: a new connection sees
    it, and no connection stays checked out."""
    cfg = make_site()
    with open_store(cfg) as store:
        _, rows = _issue_rows(cfg, store, 10)
        with store.writer.begin() as conn:
            conn.execute(schema.subscribers.update().values(bounces=2))
        outbox = Outbox(store)
        when = datetime(2026, 12, 6, 21, 30, 15, 123456, tzinfo=UTC)
        outbox.mark_failed(rows[1].id, "550 no")
        outbox.mark_failed(rows[6].id, "550 no")
        recorder = SentRecorder(store.engine)
        for half, stamp in ((rows[:5], when), (rows[5:], when - timedelta(hours=1))):
            window = [(row.id, "250 2.0.0 queued as A" if n % 2 else "250 ok")
                      for n, row in enumerate(half)]
            assert recorder.record(window, stamp) == {row.id for row in half} - {
                rows[1].id, rows[6].id}
            assert recorder.record(window, stamp) == set()  # again: nothing is pending now
        assert store.engine.pool.checkedout() == 0  # a connection only while recording
        o, s = schema.outbox.c, schema.subscribers.c
        with store.engine.connect() as conn:
            found = {r.id: r for r in conn.execute(sa.select(
                o.id, o.status, o.reply, o.attempts, o.sent_at, s.bounces).join_from(
                schema.outbox, schema.subscribers, s.id == o.subscriber_id))}
        for half, stamp in ((rows[:5], when), (rows[5:], when - timedelta(hours=1))):
            shape = [(found[r.id].status, found[r.id].reply, found[r.id].attempts,
                      found[r.id].bounces) for r in half]
            assert shape == [("sent", "250 ok", 1, 0), ("failed", "550 no", 1, 2),
                             ("sent", "250 ok", 1, 0),
                             ("sent", "250 2.0.0 queued as A", 1, 0),
                             ("sent", "250 ok", 1, 0)]
            assert {found[r.id].sent_at for r in half if found[r.id].status == "sent"} == {
                stamp}
