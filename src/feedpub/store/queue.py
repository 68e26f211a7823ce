"""The delivery queue over all issues: deferred rows, expiry, "retry now".

Every outbox row is a queue entry in the Postfix manner: decided (written with its issue),
recorded (each attempt's outcome and `next_attempt`), then acted on by whichever run finds it
due. These operations span issues; the per-issue ones are in `outbox`, and the send loop's
own per-window statements (the live status check, the group record) in `hotpath`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from . import Store, schema
from .hotpath import LiveStatus

_O = schema.outbox
_I = schema.issues
_S = schema.subscribers
_PENDING = _O.c.status == "pending"
_DEFERRED = sa.and_(_PENDING, _O.c.next_attempt.is_not(None))

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
