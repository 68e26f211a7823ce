"""Reports that came back by mail, applied to subscribers exactly once.

`MailReports.apply()` records the report under its key (a digest of the mail) and changes the
subscriber in the same transaction; a key already recorded changes nothing. So a mailbox read
that crashes before it removed the mail reads it again and counts nothing twice.

Bounce scores follow Mailman: a hard bounce adds 1, a soft one `soft_score`; a score older than
`reset_days` starts again from zero. The subscriber becomes `bounced` when the score plus the
hard bounces said during SMTP reaches `bounce_limit`. A complaint or an unsubscribe mail
unsubscribes at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from . import Store, schema
from .dialect import insert_ignore

_R = schema.mail_reports
_B = schema.bounce_scores
_S = schema.subscribers


@dataclass(frozen=True)
class ReportRecord:
    """One report to apply: its key, kind and whom it is about (None: nobody we know)."""

    key: str
    kind: str  # hard | soft | complaint | unsubscribe | unrecognised
    subscriber_id: int | None
    issue_id: int | None
    address: str | None
    reason: str


@dataclass(frozen=True)
class Applied:
    """What `apply` did: `new` is False when the key was already recorded (nothing changed);
    `kind` is the recorded kind; `status` the subscriber's status after it (None: nobody)."""

    new: bool
    kind: str
    status: str | None = None


@dataclass(frozen=True)
class BounceRules:
    bounce_limit: int
    soft_score: float
    reset_days: int


class MailReports:
    def __init__(self, store: Store) -> None:
        self.store = store

    def seen(self, key: str) -> str | None:
        """The kind recorded for this key, or None."""
        with self.store.engine.connect() as conn:
            kind = conn.execute(sa.select(_R.c.kind).where(_R.c.key == key)).scalar()
        return None if kind is None else str(kind)

    def apply(self, report: ReportRecord, rules: BounceRules, now: datetime) -> Applied:
        """Record the report and apply it to its subscriber, in one transaction."""
        engine = self.store.engine
        with self.store.writer.begin() as conn:
            inserted = conn.execute(insert_ignore(engine, _R, {
                "key": report.key, "kind": report.kind, "subscriber_id": report.subscriber_id,
                "issue_id": report.issue_id, "address": report.address,
                "reason": report.reason[:1000], "received": now}, index=["key"]))
            if inserted.rowcount != 1:
                kind = conn.execute(sa.select(_R.c.kind).where(_R.c.key == report.key)).scalar()
                return Applied(new=False, kind=str(kind))
            if report.subscriber_id is None or report.kind == "unrecognised":
                return Applied(new=True, kind=report.kind)
            status = self._change(conn, report, rules, now)
        return Applied(new=True, kind=report.kind, status=status)

    @staticmethod
    def _change(conn: sa.Connection, report: ReportRecord, rules: BounceRules,
                now: datetime) -> str | None:
        sid = report.subscriber_id
        assert sid is not None
        row = conn.execute(sa.select(_S.c.status, _S.c.bounces).where(_S.c.id == sid)).first()
        if row is None:
            return None
        if report.kind in ("complaint", "unsubscribe"):
            if row.status in ("active", "pending"):
                conn.execute(_S.update().where(_S.c.id == sid).values(status="unsubscribed"))
                _keep_reason(conn, sid, 0.0, now, report.reason, keep_score=True)
                return "unsubscribed"
            return str(row.status)
        old = conn.execute(sa.select(_B.c.score, _B.c.last_bounce)
                           .where(_B.c.subscriber_id == sid)).first()
        score = 0.0
        if old is not None and now - old.last_bounce < timedelta(days=rules.reset_days):
            score = float(old.score)
        score += 1.0 if report.kind == "hard" else rules.soft_score
        _keep_reason(conn, sid, score, now, f"{report.kind}: {report.reason}")
        if row.status == "active" and score + int(row.bounces) >= rules.bounce_limit:
            conn.execute(_S.update().where(_S.c.id == sid, _S.c.status == "active")
                         .values(status="bounced"))
            return "bounced"
        return str(row.status)

    def reasons(self) -> dict[str, str]:
        """Address -> the last bounce or complaint reason and score, for those that have one."""
        query = sa.select(_S.c.email, _B.c.score, _B.c.reason).join(
            _B, _B.c.subscriber_id == _S.c.id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {row.email: f"{row.reason} (score {row.score:g})" for row in rows}

    def counts(self, since: datetime | None = None,
               issue_ids: Iterable[int] | None = None) -> Counter[tuple[int | None, str]]:
        """Reports per (issue or None, kind), optionally since a time or for some issues."""
        query = sa.select(_R.c.issue_id, _R.c.kind, sa.func.count()).group_by(
            _R.c.issue_id, _R.c.kind)
        if since is not None:
            query = query.where(_R.c.received >= since)
        if issue_ids is not None:
            query = query.where(_R.c.issue_id.in_(list(issue_ids)))
        with self.store.engine.connect() as conn:
            return Counter({(r[0], str(r[1])): int(r[2]) for r in conn.execute(query)})

    def recent(self, issue_ids: Iterable[int], limit: int = 5) -> list[Any]:
        """The newest reports of some issues: (issue_id, kind, address, reason)."""
        query = (sa.select(_R.c.issue_id, _R.c.kind, _R.c.address, _R.c.reason)
                 .where(_R.c.issue_id.in_(list(issue_ids)), _R.c.kind != "unrecognised")
                 .order_by(_R.c.received.desc()).limit(limit))
        with self.store.engine.connect() as conn:
            return list(conn.execute(query).all())


def _keep_reason(conn: sa.Connection, sid: int, score: float, now: datetime, reason: str,
                 *, keep_score: bool = False) -> None:
    values = {"score": score, "last_bounce": now, "reason": reason[:1000]}
    if keep_score:
        del values["score"]
    updated = conn.execute(_B.update().where(_B.c.subscriber_id == sid).values(**values))
    if updated.rowcount == 0:
        conn.execute(_B.insert().values(subscriber_id=sid, score=score, last_bounce=now,
                                        reason=reason[:1000]))


def sent_since(store: Store, since: datetime) -> int:
    """Messages accepted by the server since a time (the denominator of the complaint rate)."""
    _O = schema.outbox
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(
            _O.c.status == "sent", _O.c.sent_at >= since)).scalar() or 0)
