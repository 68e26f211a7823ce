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
from .dialect import dialect_of, writer


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
    # Added by step 3 (`_addresses_ignore_case`), which also creates them where missing.
    sa.Column("email_key", sa.String(320)),  # the address lower-cased: one per mailbox
    sa.Column("confirm_nonce", sa.String(32)),  # binds confirm links to one pending period
    sa.Index("ix_subscribers_status", "status", "id"),
    sa.Index("ux_subscribers_email_key", "email_key", unique=True),
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
    # When the row was queued (wall clock): a deferred row is given up retry_give_up later.
    # Added by step 3, like the index on (status, next_attempt) the queue runner reads by.
    sa.Column("queued_at", UTCDateTime),
    # A worker's claim on a pending row (PostgreSQL, several workers): whose, and until when.
    # Added by step 8 (`add_claims`), where missing.
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("claimed_until", UTCDateTime),
    sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_outbox_issue_subscriber"),
    sa.Index("ix_outbox_issue_status", "issue_id", "status", "id"),
    sa.Index("ix_outbox_due", "status", "next_attempt"),
)

sent_articles = sa.Table(
    "sent_articles", metadata,
    sa.Column("cadence", sa.String(16), primary_key=True),
    sa.Column("article_id", sa.String(500), primary_key=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
)

# The public archive of the newsletter: each issue's page without anything personal.
public_issues = sa.Table(
    "public_issues", metadata,
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), primary_key=True,
              autoincrement=False),
    sa.Column("cadence", sa.String(16), nullable=False),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("articles", sa.Text, nullable=False),  # JSON list of [title, url]
)


confirm_mails = sa.Table(
    "confirm_mails", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("address_key", sa.String(320), nullable=False),  # see `rate_key`
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Index("ix_confirm_mails_key", "address_key", "sent_at"),
)


def _create(*names: str) -> Callable[[sa.Connection], None]:
    def step(conn: sa.Connection) -> None:
        for name in names:
            metadata.tables[name].create(conn)

    return step


subscriber_events = sa.Table(
    "subscriber_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # e.g. "edited", "confirmation_sent"
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("actor", sa.String(200), nullable=False, server_default=""),  # who did it
    sa.Index("ix_subscriber_events_subscriber", "subscriber_id", "id"),
)


def add_subscriber_events(conn: sa.Connection) -> None:
    """Step 3: the log of operator changes to a subscriber (who, when, what)."""
    subscriber_events.create(conn)


def address_key(email: str) -> str:
    """What makes two addresses one subscriber: the whole address lower-cased (every major
    mailbox provider ignores case in the local part too)."""
    return email.lower()


def _merge_group(conn: sa.Connection, rows: list[Any]) -> None:
    """Fold subscriber rows of one mailbox into the oldest: its id and address as first
    written, the earliest confirmation, the union of tag filters ("" = every tag wins), the
    newest row's cadence and status (an active row wins over a pending one), the most
    bounces. Their outbox rows move to the kept id (a sent row wins over a pending one for
    the same issue), so a merged address never gets an issue twice."""
    keep, *others = rows
    newest = max(rows, key=lambda r: (r.created, r.id))
    statuses = {r.status for r in rows}
    status = "active" if newest.status == "pending" and "active" in statuses else newest.status
    tag_sets = [r.tags or "" for r in rows]
    tags = "" if "" in tag_sets else ",".join(sorted({t for ts in tag_sets
                                                       for t in ts.split(",") if t}))
    confirmed = [r.confirmed for r in rows if r.confirmed is not None]
    name = next((r.name for r in rows if r.name), None)
    ids = [r.id for r in others]
    box = outbox.c
    kept_issues = {row.issue_id: row for row in conn.execute(
        sa.select(box.id, box.issue_id, box.status).where(box.subscriber_id == keep.id))}
    for row in conn.execute(sa.select(box.id, box.issue_id, box.status)
                            .where(box.subscriber_id.in_(ids)).order_by(box.id)).all():
        held = kept_issues.get(row.issue_id)
        if held is not None and not (row.status == "sent" and held.status != "sent"):
            conn.execute(outbox.delete().where(box.id == row.id))
            continue
        if held is not None:
            conn.execute(outbox.delete().where(box.id == held.id))
        conn.execute(outbox.update().where(box.id == row.id).values(subscriber_id=keep.id))
        kept_issues[row.issue_id] = row
    conn.execute(subscriber_events.update().where(subscriber_events.c.subscriber_id.in_(ids))
                 .values(subscriber_id=keep.id))  # the operator's log follows the address
    conn.execute(subscribers.delete().where(subscribers.c.id.in_(ids)))
    conn.execute(subscribers.update().where(subscribers.c.id == keep.id).values(
        status=status, confirmed=min(confirmed) if confirmed else None, tags=tags,
        cadence=newest.cadence, name=name, bounces=max(r.bounces for r in rows)))


def _addresses_ignore_case(conn: sa.Connection) -> None:
    """Step 5: one subscriber per mailbox whatever the case of its address (duplicates are
    merged, see `_merge_group`), the confirm-link nonce, and the count of confirmation mails
    per address. A database created by this version already has the columns."""
    inspector = sa.inspect(conn)
    columns = {c["name"] for c in inspector.get_columns("subscribers")}
    for column in ("email_key", "confirm_nonce"):
        if column not in columns:
            conn.execute(sa.text(f"ALTER TABLE subscribers ADD COLUMN {column} VARCHAR(320)"))
    c = subscribers.c
    groups: dict[str, list[Any]] = {}
    for row in conn.execute(sa.select(c.id, c.email, c.name, c.status, c.created, c.confirmed,
                                      c.cadence, c.tags, c.bounces)
                            .order_by(c.created, c.id)).all():
        groups.setdefault(address_key(row.email), []).append(row)
    for rows in groups.values():
        if len(rows) > 1:
            _merge_group(conn, rows)
    if groups:
        conn.execute(subscribers.update().where(c.id == sa.bindparam("kept"))
                     .values(email_key=sa.bindparam("key")),
                     [{"kept": rows[0].id, "key": key} for key, rows in groups.items()])
    if "ux_subscribers_email_key" not in {i["name"] for i in inspector.get_indexes("subscribers")}:
        next(i for i in subscribers.indexes if i.name == "ux_subscribers_email_key").create(conn)
    confirm_mails.create(conn, checkfirst=True)


def _outbox_queue_columns(conn: sa.Connection) -> None:
    """Step 6: the durable queue: each row's queue time (old rows: their issue's creation) and an
    index for "pending rows due by now" over all issues.

    A database created at step 2 by this version already has the column (the table is
    created from the current definition), so the column is added only where it is missing.
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
    if "queued_at" not in columns:
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE outbox ADD COLUMN queued_at {kind}")
    conn.execute(outbox.update().where(outbox.c.queued_at.is_(None)).values(
        queued_at=sa.select(issues.c.created).where(issues.c.id == outbox.c.issue_id)
        .scalar_subquery()))
    due = next(i for i in outbox.indexes if i.name == "ix_outbox_due")
    due.create(conn, checkfirst=True)


# Numbered steps; index + 1 is the version a step brings the database to.
MIGRATIONS: list[Callable[[sa.Connection], None]] = [
    _create("meta", "subscribers"),
    _create("issues", "variants", "outbox", "sent_articles"),
    add_subscriber_events,
    _create("public_issues"),
    _addresses_ignore_case,
    _outbox_queue_columns,
]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: sa.Engine) -> int:
    """Apply the missing steps; safe when several processes start at once. Returns the version."""
    with writer(engine).begin() as conn:
        dialect_of(conn).migration_lock(conn)
        if not sa.inspect(conn).has_table("schema_version"):
            schema_version.create(conn, checkfirst=True)
    version = 0
    for number, step in enumerate(MIGRATIONS, start=1):
        with writer(engine).begin() as conn:
            dialect_of(conn).migration_lock(conn)  # other processes wait here
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


# -- several sender workers: claims on outbox rows, and the shared send rate -----------------

rate_buckets = sa.Table(
    "rate_buckets", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),  # the database clock, epoch seconds
)


def add_claims(conn: sa.Connection) -> None:
    """Step 8: a lease on each claimed outbox row (`claimed_by`, `claimed_until`) and the token
    bucket that keeps [delivery.smtp] rate over all workers. A database created by this
    version already has the columns (the outbox is created from the current definition)."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
    if "claimed_by" not in columns:
        conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN claimed_by VARCHAR(100)")
    if "claimed_until" not in columns:
        kind = sa.DateTime().compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE outbox ADD COLUMN claimed_until {kind}")
    rate_buckets.create(conn, checkfirst=True)


MIGRATIONS.append(add_claims)
SCHEMA_VERSION = len(MIGRATIONS)
