"""Tables and the numbered migrations that create them.

`migrate(engine)` brings any older database up to `SCHEMA_VERSION`, one step at a time, each
step in its own transaction, recording progress in `schema_version`. A step is never edited
once released: a later change to a table is a new step (ALTER ...), and the table's definition
as first created is then frozen into the step that created it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..errors import StoreError
from .dialect import writer


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect (SQLite has no zone support)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied", UTCDateTime, nullable=False),
)

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

subscribers = sa.Table(
    "subscribers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("confirmed", UTCDateTime),
    sa.Column("cadence", sa.String(16)),
    sa.Column("tags", sa.Text, nullable=False, server_default=""),
    sa.Column("bounces", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_subscribers_status", "status", "id"),
)

issues = sa.Table(
    "issues", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("cadence", sa.String(16), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("since", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done
    sa.Column("article_ids", sa.Text, nullable=False),  # JSON list
    sa.Column("total", sa.Integer, nullable=False),
    sa.Index("ix_issues_cadence", "cadence", "status"),
)

variants = sa.Table(
    "variants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
    sa.Column("tags", sa.Text, nullable=False),  # the subscribers' tag filter, "" = all
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("article_ids", sa.Text, nullable=False),
    sa.UniqueConstraint("issue_id", "tags", name="uq_variants_issue_tags"),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("variant_id", sa.Integer, sa.ForeignKey("variants.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt", UTCDateTime),
    sa.Column("reply", sa.Text),
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_outbox_issue_subscriber"),
    sa.Index("ix_outbox_issue_status", "issue_id", "status", "id"),
)

sent_articles = sa.Table(
    "sent_articles", metadata,
    sa.Column("cadence", sa.String(16), primary_key=True),
    sa.Column("article_id", sa.String(500), primary_key=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
)


def _create(*names: str) -> Callable[[sa.Connection], None]:
    def step(conn: sa.Connection) -> None:
        for name in names:
            metadata.tables[name].create(conn)

    return step


# Numbered steps; index + 1 is the version a step brings the database to.
MIGRATIONS: list[Callable[[sa.Connection], None]] = [
    _create("meta", "subscribers"),
    _create("issues", "variants", "outbox", "sent_articles"),
]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: sa.Engine) -> int:
    """Apply the missing steps; safe when several processes start at once. Returns the version."""
    with writer(engine).begin() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            schema_version.create(conn, checkfirst=True)
    version = 0
    for number, step in enumerate(MIGRATIONS, start=1):
        with writer(engine).begin() as conn:
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database is at schema version {version}, newer than this feedpub "
                    f"understands ({SCHEMA_VERSION}); upgrade feedpub"
                )
            if version >= number:
                continue
            step(conn)
            conn.execute(schema_version.insert().values(version=number,
                                                        applied=datetime.now(UTC)))
            version = number
    return version


# -- reports that came back by mail (bounces, complaints, unsubscribe mails) ----------------

mail_reports = sa.Table(
    "mail_reports", metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of the mail: each counts once
    sa.Column("kind", sa.String(16), nullable=False),  # hard, soft, complaint, ...
    sa.Column("subscriber_id", sa.Integer),  # no foreign key: a purge keeps the count
    sa.Column("issue_id", sa.Integer),
    sa.Column("address", sa.String(320)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("received", UTCDateTime, nullable=False),
    sa.Index("ix_mail_reports_received", "received"),
    sa.Index("ix_mail_reports_issue", "issue_id"),
)

bounce_scores = sa.Table(
    "bounce_scores", metadata,
    sa.Column("subscriber_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("last_bounce", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)


def add_mail_reports(conn: sa.Connection) -> None:
    mail_reports.create(conn)
    bounce_scores.create(conn)


MIGRATIONS.append(add_mail_reports)
SCHEMA_VERSION = len(MIGRATIONS)
