"""A subscriber's history and the operator's changes to it; the variants of a past issue.

`record_event` logs who changed what and when (`feedpub subscribers set`, a resent
confirmation); `subscriber_history` puts those together with what the other tables already
know: when the address subscribed and confirmed, each issue it received or failed to receive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from . import Store, Subscriber, schema

_E = schema.subscriber_events
_O = schema.outbox
_I = schema.issues
_V = schema.variants


@dataclass(frozen=True)
class HistoryLine:
    """One dated line of a subscriber's history."""

    at: datetime
    event: str
    detail: str = ""
    actor: str = ""


def record_event(store: Store, subscriber_id: int, event: str, detail: str = "",
                 actor: str = "", now: datetime | None = None) -> None:
    with store.writer.begin() as conn:
        conn.execute(_E.insert().values(subscriber_id=subscriber_id,
                                        at=now or datetime.now(UTC), event=event,
                                        detail=detail, actor=actor))


def subscriber_history(store: Store, sub: Subscriber) -> list[HistoryLine]:
    """Everything known about one subscriber, oldest first."""
    lines = [HistoryLine(sub.created, "subscribed")]
    if sub.confirmed is not None:
        lines.append(HistoryLine(sub.confirmed, "confirmed"))
    with store.engine.connect() as conn:
        for row in conn.execute(sa.select(_E).where(_E.c.subscriber_id == sub.id)
                                .order_by(_E.c.id)):
            lines.append(HistoryLine(row.at, row.event, row.detail, row.actor))
        query = (sa.select(_O.c.issue_id, _O.c.status, _O.c.sent_at, _O.c.reply,
                           _O.c.attempts, _I.c.cadence, _I.c.created, _V.c.subject)
                 .join(_I, _I.c.id == _O.c.issue_id).join(_V, _V.c.id == _O.c.variant_id)
                 .where(_O.c.subscriber_id == sub.id).order_by(_O.c.id))
        for row in conn.execute(query):
            label = f"#{row.issue_id} {row.cadence} {row.subject!r}"
            if row.status == "sent":
                lines.append(HistoryLine(row.sent_at or row.created, "received", label))
            elif row.status == "failed":
                lines.append(HistoryLine(row.sent_at or row.created, "bounced",
                                         f"{label}: {row.reply or 'failed'}"))
            else:
                lines.append(HistoryLine(row.created, "queued",
                                         f"{label} ({row.attempts} attempt(s))"))
        bounces = conn.execute(sa.select(schema.subscribers.c.bounces)
                               .where(schema.subscribers.c.id == sub.id)).scalar() or 0
    lines.sort(key=lambda line: line.at)
    if bounces:
        lines.append(HistoryLine(lines[-1].at, "bounce count", str(bounces)))
    return lines


def issue_variant(store: Store, issue_id: int, tags: tuple[str, ...] = ()) -> int | None:
    """The variant of a past issue for a tag filter (() = the full issue), or None."""
    key = ",".join(tags)
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(_V.c.id).where(_V.c.issue_id == issue_id,
                                                      _V.c.tags == key)).scalar()
        if found is None and not tags:  # no full variant: every subscriber had a filter
            found = conn.execute(sa.select(_V.c.id).where(_V.c.issue_id == issue_id)
                                 .order_by(_V.c.id).limit(1)).scalar()
    return None if found is None else int(found)
