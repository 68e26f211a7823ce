"""The subscriber store: SQLAlchemy Core over SQLite or PostgreSQL, with numbered migrations.

`open_store(cfg)` is the only way in. Records come out as frozen `Subscriber` values; the
database is never exposed as ORM objects. Safe for several threads and processes on one file.
`outbox` keeps issues and their queue rows, `queue` the operations over the whole queue
(deferred rows, expiry, the per-message status check), `csvio` imports and exports subscribers,
`schema` and `dialect` hold the tables and what differs between databases.

Never imports: articles, feeds, site, delivery, jobs, web, scheduler, daemon or cli. It keeps
mail's records (`mail.model`) and nothing else of mail.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from ..config import Config
from ..errors import StoreError, SubscriberError
from . import schema
from .dialect import create_engine, insert_ignore, safe_url, writer
from .schema import address_key

STATUSES = ("pending", "active", "unsubscribed", "bounced")
CADENCES = ("daily", "weekly")
BATCH = 1000


@dataclass(frozen=True)
class Subscriber:
    """One newsletter subscriber."""

    id: int
    email: str  # as first written, domain lower-cased; compared ignoring case (`address_key`)
    name: str | None
    status: str  # "pending" | "active" | "unsubscribed" | "bounced"
    created: datetime  # tz-aware UTC
    confirmed: datetime | None
    cadence: str | None  # "daily" | "weekly" | None (None = config default)
    tags: tuple[str, ...]  # empty = all tags
    confirm_nonce: str | None = None  # set while pending: confirm links name it (used once)


def normalize_email(address: str) -> str:
    """Check the syntax (no DNS) and return the address with its domain lower-cased."""
    if not isinstance(address, str) or not address.strip():
        raise SubscriberError("empty email address (give an address such as name@example.org)")
    try:
        info = validate_email(address.strip(), check_deliverability=False,
                              allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{address!r} is not a valid email address: {exc}") from exc
    return f"{info.local_part}@{info.domain.lower()}"


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def normalize_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Lower-case, strip, de-duplicate and sort a tag filter."""
    if isinstance(tags, str):
        tags = tags.split(",")
    return tuple(sorted({t.strip().lower() for t in tags if t and t.strip()}))


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise SubscriberError(f"unknown status {status!r} (use one of {', '.join(STATUSES)})")


def _check_cadence(cadence: str | None) -> None:
    if cadence is not None and cadence not in CADENCES:
        raise SubscriberError(f"unknown cadence {cadence!r} (use 'daily' or 'weekly')")


def _clean_name(name: str | None) -> str | None:
    """A display name as data: trimmed, at most 200 characters, without control, format
    (bidi overrides, zero-width) or unassigned characters; whitespace runs become one space."""
    if name is None:
        return None
    kept = "".join(" " if unicodedata.category(ch) in _NAME_BREAK else ch for ch in name
                   if unicodedata.category(ch) not in _NAME_DROP)
    cleaned = " ".join(kept.split())
    return cleaned[:200].strip() or None


_NAME_BREAK = frozenset(("Cc", "Zl", "Zp"))  # controls and line breaks: a space
_NAME_DROP = frozenset(("Cf", "Cs", "Co", "Cn"))  # bidi overrides, zero-width, unassigned


def rate_key(email: str) -> str:
    """The address confirmation mails are counted under: lower-cased, without a `+tag`
    (only for counting: the subscriber keeps the address as given)."""
    local, _, domain = address_key(email).rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _row_to_subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id, email=row.email, name=row.name, status=row.status, created=row.created,
        confirmed=row.confirmed, cadence=row.cadence,
        tags=tuple(t for t in (row.tags or "").split(",") if t), confirm_nonce=row.confirm_nonce,
    )


_S = schema.subscribers
_COLUMNS = (_S.c.id, _S.c.email, _S.c.name, _S.c.status, _S.c.created, _S.c.confirmed,
            _S.c.cadence, _S.c.tags, _S.c.confirm_nonce)


class Store:
    """Subscribers and key/value metadata; the outbox lives in `feedpub.store.outbox`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.writer = writer(engine)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- subscribers ------------------------------------------------------------------------

    def add_subscriber(self, email: str, name: str | None = None, *, status: str = "active",
                       cadence: str | None = None, tags: Sequence[str] = (),
                       now: datetime | None = None) -> tuple[Subscriber, bool]:
        """Add an address; an existing one (in any case) is returned unchanged. Returns
        (record, created?)."""
        address = normalize_email(email)
        key = address_key(address)
        _check_status(status)
        _check_cadence(cadence)
        when = now or datetime.now(UTC)
        values = {
            "email": address, "name": _clean_name(name), "status": status, "created": when,
            "confirmed": when if status == "active" else None, "cadence": cadence,
            "tags": ",".join(normalize_tags(tags)), "bounces": 0, "email_key": key,
            "confirm_nonce": new_nonce() if status == "pending" else None,
        }
        with self.writer.begin() as conn:
            result = conn.execute(insert_ignore(self.engine, _S, values, index=["email_key"])
                                  .returning(_S.c.id))
            created = result.first() is not None  # no row back: the address was there
            row = conn.execute(sa.select(*_COLUMNS).where(_S.c.email_key == key)).one()
        return _row_to_subscriber(row), created

    def get_subscriber(self, email: str) -> Subscriber | None:
        """The record for an address in any case (normalized first), or None."""
        key = address_key(normalize_email(email))
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(_S.c.email_key == key)).first()
        return _row_to_subscriber(row) if row else None

    def get_subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(_S.c.id == subscriber_id)).first()
        return _row_to_subscriber(row) if row else None

    def _update(self, subscriber_id: int, values: dict[str, Any]) -> Subscriber:
        with self.writer.begin() as conn:
            conn.execute(_S.update().where(_S.c.id == subscriber_id).values(**values))
            row = conn.execute(sa.select(*_COLUMNS).where(_S.c.id == subscriber_id)).first()
        if row is None:
            raise SubscriberError(f"no subscriber with id {subscriber_id}")
        return _row_to_subscriber(row)

    def set_status(self, subscriber_id: int, status: str) -> Subscriber:
        """Change the status; becoming active sets the confirmed time (and clears bounces).
        Becoming pending starts a new confirm nonce (older confirm links stop working);
        any other status ends it."""
        _check_status(status)
        values: dict[str, Any] = {"status": status,
                                  "confirm_nonce": new_nonce() if status == "pending" else None}
        if status == "active":
            values["confirmed"] = datetime.now(UTC)
            values["bounces"] = 0
        return self._update(subscriber_id, values)

    def update_preferences(self, subscriber_id: int, *, cadence: str | None,
                           tags: Sequence[str]) -> Subscriber:
        _check_cadence(cadence)
        return self._update(subscriber_id,
                            {"cadence": cadence, "tags": ",".join(normalize_tags(tags))})

    def rename_subscriber(self, subscriber_id: int, name: str | None) -> Subscriber:
        """Set the name used in the greeting ("" or None: no name)."""
        return self._update(subscriber_id, {"name": _clean_name(name)})

    def delete_subscriber(self, subscriber_id: int) -> bool:
        """Erase a subscriber and their delivery history. True if there was one."""
        with self.writer.begin() as conn:
            conn.execute(schema.outbox.delete().where(
                schema.outbox.c.subscriber_id == subscriber_id))
            conn.execute(schema.subscriber_events.delete().where(
                schema.subscriber_events.c.subscriber_id == subscriber_id))
            result = conn.execute(_S.delete().where(_S.c.id == subscriber_id))
        return result.rowcount == 1

    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """All subscribers (optionally of one status), ordered by id, read in batches."""
        if status is not None:
            _check_status(status)
        last = 0
        while True:
            query = sa.select(*_COLUMNS).where(_S.c.id > last).order_by(_S.c.id).limit(BATCH)
            if status is not None:
                query = query.where(_S.c.status == status)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield _row_to_subscriber(row)
            last = rows[-1].id

    def count_subscribers(self) -> dict[str, int]:
        """Number of subscribers per status (every status present, zero if none)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_S.c.status, sa.func.count()).group_by(_S.c.status))
            counts = {status: 0 for status in STATUSES}
            counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    # -- confirmation mails per address -----------------------------------------------------

    def confirm_mails_since(self, email: str, since: datetime) -> int:
        """Confirmation mails recorded for this address (`rate_key`) since `since`."""
        table = schema.confirm_mails
        with self.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(table).where(
                table.c.address_key == rate_key(email), table.c.sent_at > since)).scalar()
        return int(count or 0)

    def record_confirm_mail(self, email: str, when: datetime, keep: timedelta) -> None:
        """Count one confirmation mail to this address; forget those older than `keep`."""
        table = schema.confirm_mails
        with self.writer.begin() as conn:
            conn.execute(table.delete().where(table.c.sent_at < when - keep))
            conn.execute(table.insert().values(address_key=rate_key(email), sent_at=when))

    # -- metadata ---------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.writer.begin() as conn:
            updated = conn.execute(schema.meta.update().where(schema.meta.c.key == key)
                                   .values(value=value))
            if updated.rowcount == 0:
                conn.execute(schema.meta.insert().values(key=key, value=value))


def open_store(cfg: Config, *, upgrade: bool = False) -> Store:
    """Open the configured database (creating a SQLite file and its folder if needed).

    An empty database gets the current schema. One at an older schema version is migrated only
    with `upgrade=True` (`feedpub db upgrade`); otherwise it is refused with that command, so
    a new release never changes the tables of a running site behind the operator's back.
    """
    engine = create_engine(cfg.database_url)
    where = safe_url(cfg.database_url)
    try:
        with engine.connect() as conn:
            version = schema.current_version(conn)
        if version == 0 or (upgrade and version < schema.SCHEMA_VERSION):
            schema.migrate(engine)
        elif version < schema.SCHEMA_VERSION:
            raise StoreError(
                f"the database {where} is at schema version {version}, older than this "
                f"feedpub needs ({schema.SCHEMA_VERSION}): back it up, then run "
                "`feedpub db upgrade`")
        elif version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"the database {where} is at schema version {version}, newer than this "
                f"feedpub understands ({schema.SCHEMA_VERSION}); upgrade feedpub")
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot open or migrate the database {where}: {exc} "
            "(check [store] url, that the server is up, the file's permissions and free "
            "disk space)"
        ) from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


def schema_versions(cfg: Config) -> tuple[int, int]:
    """(the database's schema version, the version this feedpub needs); 0 for an empty one."""
    engine = create_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            return schema.current_version(conn), schema.SCHEMA_VERSION
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database {safe_url(cfg.database_url)}: {exc} "
                         "(check [store] url and that the server is up)") from exc
    finally:
        engine.dispose()


__all__ = ["CADENCES", "STATUSES", "Store", "Subscriber", "address_key", "normalize_email",
           "normalize_tags", "open_store", "rate_key", "schema_versions"]
