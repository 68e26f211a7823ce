"""Plan a scheduled issue without sending it: the digest job of `feedpub run --no-send`.

The issue and all its outbox rows are written in one transaction, exactly as `send_digest`
writes them; the sender workers (`feedpub worker`) then send them. The issue's public page is
recorded before any of its messages can go out, and the archive written at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..config import Config
from ..store import open_store
from ..store.outbox import Issue
from .archive import publish_archive, record_public_issue
from .mailing import plan_issue
from .sendlock import send_lock


def plan_digest(cfg: Config, cadence: str, *, now: datetime | None = None) -> Issue | None:
    """Create the next issue of `cadence` (None: nothing new, or nobody would receive it)."""
    from .publish import published_articles

    when = now or datetime.now(UTC)
    with send_lock(cfg, cadence), open_store(cfg) as store:
        pool = published_articles(cfg, when)
        issue = plan_issue(cfg, store, cadence, now=when, articles=pool)
        if issue is not None:
            record_public_issue(cfg, store, issue, pool)
            publish_archive(cfg, store)
    return issue
