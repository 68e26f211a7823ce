"""Issues and the outbox: one row per (issue, subscriber), written before anything is sent.

An issue is created in a single transaction together with its rendered variants, the ids of
the articles it carries (so an edited article never goes out twice) and every outbox row.
Rows then move pending -> sent (with the server's reply; a few at a time, one transaction
per group) or failed, right after the server answered; a restart picks up the pending rows. A row
deferred by a temporary failure stays pending with its `next_attempt` (NULL: never tried,
due at once), its attempt count and the last reply; `queue` holds the queue-wide operations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..errors import StoreError
from ..mail.model import Digest
from . import Store, schema

BATCH = 500
_O = schema.outbox
_I = schema.issues
_S = schema.subscribers


class AlreadyPlanned(StoreError):
    """Another process planned an issue of these articles first (two planners raced: a
    leader that was paused while a standby took over). Nothing of this one was written."""


@dataclass(frozen=True)
class Issue:
    id: int
    cadence: str
    created: datetime
    since: datetime
    status: str  # pending | done
    article_ids: tuple[str, ...]
    total: int


@dataclass(frozen=True)
class OutboxRow:
    """One message still to send, with what is needed to build it."""

    id: int
    issue_id: int
    subscriber_id: int
    variant_id: int
    email: str
    name: str | None
    attempts: int
    subscriber_status: str
    queued_at: datetime | None = None  # wall clock; the retry deadline counts from here


@dataclass(frozen=True)
class Failure:
    """What `mark_failed` changed: the row (False: it was no longer pending) and whether
    that made the subscriber `bounced`."""

    changed: bool
    bounced: bool = False


@dataclass(frozen=True)
class IssueCounts:
    issue_id: int
    cadence: str
    created: datetime
    status: str
    pending: int  # not tried yet
    sent: int
    failed: int
    deferred: int = 0  # tried, failed temporarily, waiting for their next attempt
    next_attempt: datetime | None = None  # of the deferred row due first (see queue)
    last_reply: str | None = None  # the reply that deferred that row

    @property
    def unfinished(self) -> int:
        return self.pending + self.deferred


def _issue(row: Any) -> Issue:
    return Issue(id=row.id, cadence=row.cadence, created=row.created, since=row.since,
                 status=row.status, article_ids=tuple(json.loads(row.article_ids)),
                 total=row.total)


# Built once: constructing a statement costs more than executing it on SQLite.
_MARK_SENT = (
    _O.update()
    .where(_O.c.id == sa.bindparam("row_id"), _O.c.status == "pending")
    .values(status="sent", reply=sa.bindparam("reply"), sent_at=sa.bindparam("now"),
            attempts=_O.c.attempts + 1)
)


# A delivered message resets the subscriber's count of consecutive hard bounces.
_CLEAR_BOUNCES = (
    _S.update()
    .where(_S.c.id == sa.select(_O.c.subscriber_id).where(_O.c.id == sa.bindparam("row_id"))
           .scalar_subquery(), _S.c.bounces > 0)
    .values(bounces=0)
)


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("insert returned no primary key")
    return int(key[0])


VariantFor = Callable[[tuple[str, ...]], Digest | None]


class Outbox:
    """Issue and outbox operations on an open Store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.writer = store.writer

    # -- issues -----------------------------------------------------------------------------

    def pending_issue(self, cadence: str) -> Issue | None:
        """The oldest unfinished issue of a cadence (a crash or stop left it), if any."""
        query = (sa.select(_I).where(_I.c.cadence == cadence, _I.c.status == "pending")
                 .order_by(_I.c.id).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _issue(row) if row else None

    def unfinished_issues(self, cadence: str | None = None) -> list[Issue]:
        """Every issue with rows left to send (of one cadence, or all), oldest first."""
        query = sa.select(_I).where(_I.c.status == "pending").order_by(_I.c.id)
        if cadence is not None:
            query = query.where(_I.c.cadence == cadence)
        with self.engine.connect() as conn:
            return [_issue(row) for row in conn.execute(query)]

    def last_issue(self, cadence: str) -> Issue | None:
        query = sa.select(_I).where(_I.c.cadence == cadence).order_by(_I.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _issue(row) if row else None

    def get_issue(self, issue_id: int) -> Issue | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_I).where(_I.c.id == issue_id)).first()
        return _issue(row) if row else None

    def sent_article_ids(self, cadence: str) -> set[str]:
        table = schema.sent_articles
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.article_id).where(table.c.cadence == cadence))
            return {row[0] for row in rows}

    def create_issue(self, cadence: str, *, now: datetime, since: datetime,
                     article_ids: Sequence[str], default_cadence: str,
                     variant_for: VariantFor, queued_at: datetime | None = None) -> Issue | None:
        """Write the issue, its variants, its article ids and all outbox rows atomically.

        Subscribers are streamed in batches; `variant_for(tags)` renders the issue for one
        tag filter the first time it is met (None: nothing for that filter, no row). When no
        subscriber gets a row, nothing at all is written and None is returned, so the articles
        stay available for the subscribers who come later. `queued_at` (default: the wall
        clock) starts each row's retry deadline.
        """
        queued = queued_at or datetime.now(UTC)
        with self.writer.connect() as conn, conn.begin() as transaction:
            issue_id = _new_id(conn.execute(_I.insert().values(
                cadence=cadence, created=now, since=since, status="pending",
                article_ids=json.dumps(list(article_ids)), total=0)))
            if article_ids:
                try:  # the fence: (cadence, article) is unique, whoever plans
                    conn.execute(schema.sent_articles.insert(), [
                        {"cadence": cadence, "article_id": a, "issue_id": issue_id}
                        for a in article_ids])
                except sa.exc.IntegrityError as exc:  # rolled back as it leaves the block
                    raise AlreadyPlanned(
                        f"another process planned a {cadence} issue of these articles first; "
                        "nothing was written (nothing to do)") from exc
            variants: dict[str, int | None] = {}
            total = 0
            cadence_match = (_S.c.cadence == cadence)
            if cadence == default_cadence:
                cadence_match = sa.or_(cadence_match, _S.c.cadence.is_(None))
            last = 0
            while True:
                rows = conn.execute(
                    sa.select(_S.c.id, _S.c.email, _S.c.name, _S.c.tags)
                    .where(_S.c.id > last, _S.c.status == "active", cadence_match)
                    .order_by(_S.c.id).limit(BATCH)).all()
                if not rows:
                    break
                last = rows[-1].id
                batch = []
                for row in rows:
                    key = row.tags or ""
                    if key not in variants:
                        variants[key] = self._add_variant(conn, issue_id, key, variant_for)
                    variant_id = variants[key]
                    if variant_id is None:
                        continue
                    batch.append({"issue_id": issue_id, "subscriber_id": row.id,
                                  "variant_id": variant_id, "email": row.email,
                                  "name": row.name, "status": "pending", "attempts": 0,
                                  "queued_at": queued})
                if batch:
                    conn.execute(_O.insert(), batch)
                    total += len(batch)
            if not total:
                transaction.rollback()
                return None
            conn.execute(_I.update().where(_I.c.id == issue_id).values(total=total))
            row = conn.execute(sa.select(_I).where(_I.c.id == issue_id)).one()
        return _issue(row)

    @staticmethod
    def _add_variant(conn: sa.Connection, issue_id: int, key: str,
                     variant_for: VariantFor) -> int | None:
        digest = variant_for(tuple(t for t in key.split(",") if t))
        if digest is None:
            return None
        return _new_id(conn.execute(schema.variants.insert().values(
            issue_id=issue_id, tags=key, subject=digest.subject, html=digest.html,
            text=digest.text, article_ids=json.dumps(list(digest.article_ids)),
        )))

    def variant(self, variant_id: int) -> Digest:
        """The rendered digest a row refers to (as written when the issue was created)."""
        table = schema.variants
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(table, _I.c.cadence).join(_I, _I.c.id == table.c.issue_id)
                .where(table.c.id == variant_id)).one()
        return Digest(cadence=row.cadence, subject=row.subject, html=row.html, text=row.text,
                      article_ids=tuple(json.loads(row.article_ids)))

    def next_variant(self, issue_id: int, subscriber_id: int | None = None) -> int | None:
        """The variant of a subscriber's pending row (or of the first pending row)."""
        query = (sa.select(_O.c.variant_id).where(_O.c.issue_id == issue_id,
                                                  _O.c.status == "pending")
                 .order_by(_O.c.id).limit(1))
        with self.engine.connect() as conn:
            if subscriber_id is not None:
                found = conn.execute(query.where(_O.c.subscriber_id == subscriber_id)).scalar()
                if found is not None:
                    return int(found)
            first = conn.execute(query).scalar()
        return None if first is None else int(first)

    def pending_variant(self, issue_id: int, subscriber_id: int) -> int | None:
        """The variant of this subscriber's pending row in the issue, if they have one."""
        query = sa.select(_O.c.variant_id).where(
            _O.c.issue_id == issue_id, _O.c.subscriber_id == subscriber_id,
            _O.c.status == "pending")
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def finish_issue(self, issue_id: int) -> bool:
        """Mark the issue done if no row is pending. True if it is done."""
        with self.writer.begin() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(_O).where(
                _O.c.issue_id == issue_id, _O.c.status == "pending")).scalar()
            if left:
                return False
            conn.execute(_I.update().where(_I.c.id == issue_id).values(status="done"))
        return True

    # -- rows -------------------------------------------------------------------------------

    def due_rows(self, issue_id: int, *, after_id: int, now: datetime,
                 limit: int = BATCH) -> list[OutboxRow]:
        """Pending rows whose retry time has come, by id, after `after_id`.

        With SQLite one process per cadence sends, under the cadence's send lock; workers
        sharing a PostgreSQL store claim their rows instead (`claims.Claims.claim`).
        """
        query = (
            sa.select(_O.c.id, _O.c.issue_id, _O.c.subscriber_id, _O.c.variant_id, _O.c.email,
                      _O.c.name, _O.c.attempts, _S.c.status.label("subscriber_status"),
                      _O.c.queued_at)
            .join(_S, _S.c.id == _O.c.subscriber_id)
            .where(_O.c.issue_id == issue_id, _O.c.status == "pending", _O.c.id > after_id,
                   sa.or_(_O.c.next_attempt.is_(None), _O.c.next_attempt <= now))
            .order_by(_O.c.id).limit(limit)
        )
        with self.engine.connect() as conn:
            return [OutboxRow(**row._mapping) for row in conn.execute(query)]

    def next_retry(self, issue_id: int) -> datetime | None:
        """When the earliest deferred row of the issue is due, if any row is pending."""
        with self.engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(_O).where(
                _O.c.issue_id == issue_id, _O.c.status == "pending")).scalar()
            if not pending:
                return None
            when = conn.execute(sa.select(sa.func.min(_O.c.next_attempt)).where(
                _O.c.issue_id == issue_id, _O.c.status == "pending")).scalar()
        return when  # type: ignore[no-any-return]

    def mark_sent(self, row_id: int, reply: str, now: datetime) -> int:
        """Record the server's acceptance (one short transaction: this is the hot path).

        Returns the number of rows changed: 0 when the row was no longer pending (someone
        else recorded it), which the caller must not count as sent. A delivery also clears
        the subscriber's bounce count, so only consecutive hard bounces add up.
        """
        with self.writer.begin() as conn:
            changed = conn.execute(_MARK_SENT, {"row_id": row_id, "reply": reply[:1000],
                                                "now": now}).rowcount
            if changed:
                conn.execute(_CLEAR_BOUNCES, {"row_id": row_id})
        return int(changed)

    def mark_retry(self, row_id: int, reply: str, next_attempt: datetime) -> bool:
        """Defer a pending row; False when it was no longer pending (not to be counted)."""
        with self.writer.begin() as conn:
            changed = conn.execute(_O.update().where(
                _O.c.id == row_id, _O.c.status == "pending").values(
                reply=reply[:1000], next_attempt=next_attempt,
                attempts=_O.c.attempts + 1, claimed_by=None, claimed_until=None)).rowcount
        return bool(changed)

    def mark_failed(self, row_id: int, reply: str, *,
                    bounce_limit: int | None = None) -> Failure:
        """Give up on a pending row. With `bounce_limit`, count a hard bounce against the
        subscriber. A row no longer pending is left alone (`changed` False, nothing counted)."""
        with self.writer.begin() as conn:
            subscriber_id = conn.execute(sa.select(_O.c.subscriber_id).where(
                _O.c.id == row_id)).scalar_one()
            changed = conn.execute(_O.update().where(
                _O.c.id == row_id, _O.c.status == "pending").values(
                status="failed", reply=reply[:1000], attempts=_O.c.attempts + 1)).rowcount
            if bounce_limit is None or not changed:
                return Failure(changed=bool(changed))
            conn.execute(_S.update().where(_S.c.id == subscriber_id).values(
                bounces=_S.c.bounces + 1))
            result = conn.execute(_S.update().where(
                _S.c.id == subscriber_id, _S.c.bounces >= bounce_limit,
                _S.c.status == "active").values(status="bounced"))
            return Failure(changed=True, bounced=result.rowcount == 1)

    # -- reporting --------------------------------------------------------------------------

    def counts(self, issue_ids: Iterable[int] | None = None, limit: int = 20) -> list[IssueCounts]:
        """Per issue (newest first): pending, sent and failed rows."""
        waiting = sa.and_(_O.c.status == "pending", _O.c.next_attempt.is_(None))
        deferred = sa.and_(_O.c.status == "pending", _O.c.next_attempt.is_not(None))
        per_status = {
            "pending": sa.func.sum(sa.case((waiting, 1), else_=0)),
            "deferred": sa.func.sum(sa.case((deferred, 1), else_=0)),
            **{name: sa.func.sum(sa.case((_O.c.status == name, 1), else_=0))
               for name in ("sent", "failed")},
        }
        query = (
            sa.select(_I.c.id, _I.c.cadence, _I.c.created, _I.c.status,
                      *(func.label(name) for name, func in per_status.items()))
            .select_from(_I.outerjoin(_O, _O.c.issue_id == _I.c.id))
            .group_by(_I.c.id, _I.c.cadence, _I.c.created, _I.c.status)
            .order_by(_I.c.id.desc()).limit(limit)
        )
        if issue_ids is not None:
            query = query.where(_I.c.id.in_(list(issue_ids)))
        with self.engine.connect() as conn:
            return [IssueCounts(issue_id=r.id, cadence=r.cadence, created=r.created,
                                status=r.status, pending=int(r.pending or 0),
                                sent=int(r.sent or 0), failed=int(r.failed or 0),
                                deferred=int(r.deferred or 0))
                    for r in conn.execute(query)]
