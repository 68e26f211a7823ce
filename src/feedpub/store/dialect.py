"""Everything that differs between database dialects lives here: SQLite and PostgreSQL.

The rest of the store speaks SQLAlchemy Core only and asks this module for an engine, a
write-transaction engine, an "insert, ignore duplicates" statement, a lock that serializes
migrations between processes, and a way to move id sequences past copied rows. Each dialect
is one entry of a registry (`DIALECTS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from ..errors import StoreError

WRITE_OPTION = "feedpub_write"
BUSY_TIMEOUT_MS = 30_000


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    """SQLite in WAL mode with a busy timeout; write transactions start with BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock up front, so a transaction that reads and then
    writes never fails with SQLITE_BUSY when another process committed in between: it waits
    (busy_timeout) instead. Readers are never blocked in WAL mode.

    `synchronous = FULL`: every commit is on disk (the WAL is synced) before it returns, so
    a row recorded as sent, or a sign-up acknowledged to a visitor, survives an operating
    system crash or power loss. (NORMAL syncs only at checkpoints: the last commits before an
    outage could be lost, and their messages sent again.)
    """
    database = url.database or ""
    if database and database != ":memory:":
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the database {database}: {exc} "
                "(check [store] url and folder permissions)"
            ) from exc
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=20, max_overflow=20,  # one per sending thread and then some
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # see the docstring
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


POSTGRESQL_DRIVER = "postgresql+psycopg"
# Any 64-bit number unique to feedpub: the advisory lock that serializes migrations.
_MIGRATION_LOCK = 0x66656564707562  # "feedpub"


def _postgresql_engine(url: sa.URL) -> sa.Engine:
    """PostgreSQL through psycopg 3 (`postgresql://` and `postgresql+psycopg://` both work)."""
    if url.drivername != POSTGRESQL_DRIVER:
        if url.drivername != "postgresql":
            raise StoreError(
                f"[store] url uses the driver {url.drivername!r}; feedpub talks to PostgreSQL "
                f"through psycopg 3 (write the URL as {POSTGRESQL_DRIVER}://user@host/database)"
            )
        url = url.set(drivername=POSTGRESQL_DRIVER)
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            "[store] url points at PostgreSQL, but its driver is not installed "
            "(pip install 'feedpub[postgresql]', which brings psycopg 3)"
        ) from exc
    return sa.create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


@dataclass(frozen=True)
class Dialect:
    """What one database needs done its own way."""

    engine: Callable[[sa.URL], sa.Engine]
    insert: Callable[[sa.Table], Any]  # an INSERT that supports on_conflict_do_nothing
    migration_lock: Callable[[sa.Connection], None]  # inside the migration's transaction
    reset_sequence: Callable[[sa.Connection, sa.Table], None]  # after rows with ids were copied
    clock: Callable[[sa.Connection], float]  # seconds since the epoch, one clock for all nodes
    # What starts a write transaction on a driver connection (`hotpath`), where the driver
    # does not begin one itself: SQLite's connections are in autocommit mode (see above).
    begin_write: str | None


def _nothing(*_args: Any) -> None:
    """SQLite: BEGIN IMMEDIATE already serializes writers; ids follow max(rowid)."""


def _pg_migration_lock(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def _pg_reset_sequence(conn: sa.Connection, table: sa.Table) -> None:
    for column in table.primary_key.columns:
        if column.autoincrement is True or (
                column.autoincrement == "auto" and isinstance(column.type, sa.Integer)
                and len(table.primary_key.columns) == 1):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"),
                {"table": table.name, "column": column.name})


def _local_clock(_conn: sa.Connection) -> float:
    """SQLite: one machine, its own clock."""
    return time.time()


def _pg_clock(conn: sa.Connection) -> float:
    """PostgreSQL: the server's clock, shared by every node whatever their own clocks say."""
    return float(conn.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())


DIALECTS: dict[str, Dialect] = {
    "sqlite": Dialect(_sqlite_engine, sqlite.insert, _nothing, _nothing, _local_clock,
                      "BEGIN IMMEDIATE"),
    "postgresql": Dialect(_postgresql_engine, postgresql.insert, _pg_migration_lock,
                          _pg_reset_sequence, _pg_clock, None),
}


def safe_url(database_url: str) -> str:
    """The URL as it may appear in a message or a log: without its password."""
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return database_url


def dialect_of(engine_or_conn: sa.Engine | sa.Connection) -> Dialect:
    name = engine_or_conn.dialect.name
    dialect = DIALECTS.get(name)
    if dialect is None:
        raise StoreError(f"the database dialect {name!r} is not supported "
                         f"(supported: {', '.join(DIALECTS)})")
    return dialect


def begin_write(engine: sa.Engine) -> str | None:
    """The statement that starts a write transaction on one of `engine`'s driver
    connections (None: the driver begins one with the first statement)."""
    return dialect_of(engine).begin_write


def create_engine(database_url: str) -> sa.Engine:
    """An engine for `database_url`, configured for several threads and processes."""
    try:
        url = make_url(database_url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"[store] url = {database_url!r} is not a database URL "
            "(use e.g. 'sqlite:///data/feedpub.db' or "
            "'postgresql+psycopg://feedpub@db.example.org/feedpub')"
        ) from exc
    dialect = DIALECTS.get(url.get_backend_name())
    if dialect is None:
        raise StoreError(
            f"[store] url = {safe_url(database_url)!r}: unsupported database "
            f"'{url.get_backend_name()}' (supported: {', '.join(DIALECTS)})"
        )
    return dialect.engine(url)


def writer(engine: sa.Engine) -> sa.Engine:
    """The same engine, but transactions begun on it take the write lock at once (SQLite);
    PostgreSQL locks rows as they are written and needs nothing more."""
    return engine.execution_options(**{WRITE_OPTION: True})


def insert_ignore(engine: sa.Engine, table: sa.Table, values: Mapping[str, Any] | None = None,
                  *, index: list[str]) -> Any:
    """INSERT that silently skips rows conflicting on the unique columns `index`."""
    stmt = dialect_of(engine).insert(table)
    if values is not None:
        stmt = stmt.values(**values)
    return stmt.on_conflict_do_nothing(index_elements=index)

