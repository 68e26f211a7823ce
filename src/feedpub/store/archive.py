"""The newsletter's public archive: each issue as everyone may read it (no personal part).

Written once per issue, before its first message goes out (safe to repeat: an issue already
recorded is left as it is); listed once at least one of its messages was sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from . import Store, schema

_P = schema.public_issues
_O = schema.outbox


@dataclass(frozen=True)
class PublicIssue:
    issue_id: int
    cadence: str
    created: datetime
    subject: str
    html: str
    text: str
    articles: tuple[tuple[str, str], ...]  # (title, url)


class IssueArchive:
    """Public issue records on an open Store."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.writer = store.writer

    def has(self, issue_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(_P.c.issue_id).where(
                _P.c.issue_id == issue_id)).first() is not None

    def save(self, issue: PublicIssue) -> bool:
        """Record `issue` unless it is recorded already; True if this call wrote it."""
        with self.writer.begin() as conn:
            if conn.execute(sa.select(_P.c.issue_id).where(
                    _P.c.issue_id == issue.issue_id)).first() is not None:
                return False
            conn.execute(_P.insert().values(
                issue_id=issue.issue_id, cadence=issue.cadence, created=issue.created,
                subject=issue.subject, html=issue.html, text=issue.text,
                articles=json.dumps([list(pair) for pair in issue.articles])))
        return True

    def sent(self) -> list[PublicIssue]:
        """Every recorded issue of which at least one message was sent, oldest first."""
        any_sent = sa.select(_O.c.id).where(_O.c.issue_id == _P.c.issue_id,
                                            _O.c.status == "sent").exists()
        with self.engine.connect() as conn:
            rows: Sequence[sa.Row[tuple[object, ...]]] = conn.execute(
                sa.select(_P).where(any_sent).order_by(_P.c.issue_id)).all()
        return [PublicIssue(issue_id=row.issue_id, cadence=row.cadence, created=row.created,
                            subject=row.subject, html=row.html, text=row.text,
                            articles=tuple((str(t), str(u)) for t, u in json.loads(row.articles)))
                for row in rows]
