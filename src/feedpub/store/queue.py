"""The delivery queue over all issues: deferred rows, expiry, "retry now", live status checks.

Every outbox row is a queue entry in the Postfix manner: decided (written with its issue),
recorded (each attempt's outcome and `next_attempt`), then acted on by whichever run finds it
due. These operations span issues; the per-issue ones are in `outbox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import sqlalchemy as sa

from . import Store, schema

_O = schema.outbox
_I = schema.issues
_S = schema.subscribers
_PENDING = _O.c.status == "pending"
_DEFERRED = sa.and_(_PENDING, _O.c.next_attempt.is_not(None))
# The same test for rows looked up by id: written `status || ''` so that SQLite finds them
# by primary key. Plain `status = 'pending'` lets its planner pick the status index, and
# while an issue is sent nearly every row is pending: each check of eight rows then walked
# the whole index (1.5 ms at 10,000 subscribers, ten times that at 100,000).
_STILL_PENDING = _O.c.status.concat("") == "pending"

# What the sender asks right before each message: is the row still pending, and what is its
# subscriber's status now? One primary-key lookup on each table.
_LIVE = (
    sa.select(_S.c.status)
    .select_from(_O.join(_S, _S.c.id == _O.c.subscriber_id))
    .where(_O.c.id == sa.bindparam("row_id"), _STILL_PENDING)
)
# The same for a worker: only while the row is still claimed by this worker (a lease that ran
# out and was claimed by another worker is that worker's to send).
_LIVE_CLAIMED = _LIVE.where(_O.c.claimed_by == sa.bindparam("owner"))


@dataclass(frozen=True)
class DeferredRow:
    """One deferred message, as `feedpub status` and `digest status` show it."""

    issue_id: int
    email: str
    attempts: int
    queued_at: datetime | None
    next_attempt: datetime
    reply: str


@dataclass(frozen=True)
class QueueSummary:
    """The whole queue: rows still to send, of which deferred, and the oldest deferred."""

    size: int
    deferred: int
    oldest_deferred: DeferredRow | None


def _deferred(row: Any) -> DeferredRow:
    return DeferredRow(issue_id=row.issue_id, email=row.email, attempts=row.attempts,
                       queued_at=row.queued_at, next_attempt=row.next_attempt,
                       reply=row.reply or "")


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once for the driver: its SQL, literal values and bind order."""

    sql: str
    fixed: dict[str, Any]
    order: list[str] | None


class LiveStatus:
    """Per-message check on a connection of its own (one per sending thread).

    `check(row_id)` returns the subscriber's status, or None when the row is no longer
    pending (recorded elsewhere, or the subscriber was erased), or, with `owner`, no longer
    claimed by that worker; `check_many` asks the same for the few rows a session is about to
    send, in one query. It runs on the driver's
    connection, outside any transaction (autocommit, as the store's SQLite connections are
    set up; ended at once elsewhere), so it sees every commit made before it, such as an
    unsubscribe a moment ago. This is the hot path: the statement is compiled once, and the
    driver runs it without SQLAlchemy's per-call work (about 4x cheaper).
    """

    def __init__(self, engine: sa.Engine, owner: str | None = None) -> None:
        self._dialect = engine.dialect
        self._owner = owner
        self._one = self._prepare(_LIVE if owner is None else _LIVE_CLAIMED)
        self._many: dict[int, _Prepared] = {}
        self._raw = engine.raw_connection()
        self._cursor = self._raw.cursor()

    def _prepare(self, statement: sa.Select[Any], keys: Sequence[str] = ("row_id",)
                 ) -> _Prepared:
        compiled = statement.compile(dialect=self._dialect)
        start: dict[str, Any] = dict.fromkeys(keys, 0)
        if self._owner is not None:
            start["owner"] = self._owner
        fixed = dict(compiled.construct_params(start))  # the literals, e.g. 'pending'
        order = list(compiled.positiontup or []) if compiled.positional else None
        return _Prepared(str(compiled), fixed, order)

    def _run(self, prepared: _Prepared, values: dict[str, Any]) -> list[Any]:
        values = {**prepared.fixed, **values}
        order = prepared.order
        params: Any = values if order is None else [values[k] for k in order]
        try:
            self._cursor.execute(prepared.sql, params)
            return list(self._cursor.fetchall())
        finally:
            self._raw.rollback()  # no-op in autocommit; ends a driver-begun transaction

    def check(self, row_id: int) -> str | None:
        found = self._run(self._one, {"row_id": row_id})
        return str(found[0][0]) if found else None

    def check_many(self, row_ids: Sequence[int]) -> dict[int, str]:
        """`check` for a group of rows in one query: row id -> subscriber status, for the
        rows still pending (and claimed by `owner`); a row missing from the answer is not to
        be sent."""
        if not row_ids:
            return {}
        prepared = self._many.get(len(row_ids))
        if prepared is None:
            keys: list[sa.BindParameter[int]] = [sa.bindparam(f"id{n}", type_=sa.Integer)
                                                 for n in range(len(row_ids))]
            statement = sa.select(_O.c.id, _S.c.status).select_from(
                _O.join(_S, _S.c.id == _O.c.subscriber_id)).where(_O.c.id.in_(keys),
                                                                   _STILL_PENDING)
            if self._owner is not None:
                statement = statement.where(_O.c.claimed_by == sa.bindparam("owner"))
            prepared = self._many[len(row_ids)] = self._prepare(
                statement, [key.key for key in keys])
        found = self._run(prepared, {f"id{n}": row_id for n, row_id in enumerate(row_ids)})
        return {int(row_id): str(status) for row_id, status in found}

    def close(self) -> None:
        self._cursor.close()
        self._raw.close()

    def __enter__(self) -> LiveStatus:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class DeliveryQueue:
    """Queue-wide operations on an open Store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.writer = store.writer

    def live_status(self) -> LiveStatus:
        return LiveStatus(self.engine)

    def retry_now(self, now: datetime) -> int:
        """Make every deferred row due at `now` (the relay was fixed). Returns how many."""
        with self.writer.begin() as conn:
            return int(conn.execute(_O.update().where(_DEFERRED, _O.c.next_attempt > now)
                                    .values(next_attempt=now)).rowcount)

    def expire(self, now: datetime, give_up: timedelta, reason: str) -> int:
        """Fail the pending rows queued more than `give_up` ago (used when no attempt could
        be made, e.g. the relay is unreachable). Returns how many; their issues are finished
        by the next run."""
        with self.writer.begin() as conn:
            return int(conn.execute(_O.update().where(
                _PENDING, _O.c.queued_at < now - give_up).values(
                status="failed", reply=reason[:1000])).rowcount)

    def summary(self) -> QueueSummary:
        """How many rows are still to send, how many deferred, and the oldest deferred."""
        counts = sa.select(sa.func.count(), sa.func.sum(sa.case((_DEFERRED, 1), else_=0))
                           ).where(_PENDING)
        oldest = (sa.select(_O.c.issue_id, _O.c.email, _O.c.attempts, _O.c.queued_at,
                            _O.c.next_attempt, _O.c.reply)
                  .where(_DEFERRED).order_by(_O.c.queued_at, _O.c.id).limit(1))
        with self.engine.connect() as conn:
            size, deferred = conn.execute(counts).one()
            row = conn.execute(oldest).first()
        return QueueSummary(size=int(size or 0), deferred=int(deferred or 0),
                            oldest_deferred=_deferred(row) if row else None)

    def next_deferred(self, issue_ids: list[int]) -> dict[int, DeferredRow]:
        """Per issue, its deferred row due first (with the reply that deferred it)."""
        found: dict[int, DeferredRow] = {}
        query = (sa.select(_O.c.issue_id, _O.c.email, _O.c.attempts, _O.c.queued_at,
                           _O.c.next_attempt, _O.c.reply)
                 .where(_O.c.issue_id == sa.bindparam("issue"), _DEFERRED)
                 .order_by(_O.c.next_attempt, _O.c.id).limit(1))
        with self.engine.connect() as conn:
            for issue_id in issue_ids:
                row = conn.execute(query, {"issue": issue_id}).first()
                if row is not None:
                    found[issue_id] = _deferred(row)
        return found

    def next_due(self) -> datetime | None:
        """When the earliest deferred row falls due (None: nothing deferred)."""
        with self.engine.connect() as conn:
            when = conn.execute(sa.select(sa.func.min(_O.c.next_attempt)).where(
                _DEFERRED)).scalar()
        return when  # type: ignore[no-any-return]
