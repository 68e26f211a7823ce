"""Everything that differs between database dialects lives here (SQLite now, PostgreSQL next).

The rest of the store speaks SQLAlchemy Core only and asks this module for an engine, a
write-transaction engine, and an "insert, ignore duplicates" statement.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def _generic_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


ENGINES = {"sqlite": _sqlite_engine, "postgresql": _generic_engine}


def create_engine(database_url: str) -> sa.Engine:
    """An engine for `database_url`, configured for several threads and processes."""
    try:
        url = make_url(database_url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"[store] url = {database_url!r} is not a database URL "
            "(use e.g. 'sqlite:///data/feedpub.db')"
        ) from exc
    factory = ENGINES.get(url.get_backend_name())
    if factory is None:
        raise StoreError(
            f"[store] url = {database_url!r}: unsupported database "
            f"'{url.get_backend_name()}' (supported: {', '.join(ENGINES)})"
        )
    return factory(url)


def writer(engine: sa.Engine) -> sa.Engine:
    """The same engine, but transactions begun on it take the write lock at once."""
    return engine.execution_options(**{WRITE_OPTION: True})


def insert_ignore(engine: sa.Engine, table: sa.Table, values: Mapping[str, Any] | None = None,
                  *, index: list[str]) -> Any:
    """INSERT that silently skips rows conflicting on the unique columns `index`."""
    name = engine.dialect.name
    if name == "sqlite":
        stmt = sqlite.insert(table)
        if values is not None:
            stmt = stmt.values(**values)
        return stmt.on_conflict_do_nothing(index_elements=index)
    if name == "postgresql":
        pstmt = postgresql.insert(table)
        if values is not None:
            pstmt = pstmt.values(**values)
        return pstmt.on_conflict_do_nothing(index_elements=index)
    raise StoreError(f"insert_ignore: dialect {name!r} is not supported")
