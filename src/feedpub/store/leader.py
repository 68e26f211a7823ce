"""Leadership among the nodes of one PostgreSQL store: a session-level advisory lock held on
a connection of its own.

The lock belongs to the database session: it is released when that session ends, whether
the process stopped, was killed (the kernel closes its socket) or lost its network (TCP
keepalives, set here to a third of the failover time, end the session on the server). The
holder checks its session on the same schedule (`alive`) and stops acting as leader as soon
as the check fails.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .dialect import POSTGRESQL_DRIVER

log = logging.getLogger(__name__)

LEADER_KEY = 0x66656564_6C656164  # "feedlead": any 64-bit number unique to feedpub


def is_shared(database_url: str) -> bool:
    """True for a store several nodes may share (PostgreSQL), False for a SQLite file."""
    return make_url(database_url).get_backend_name() == "postgresql"


class AdvisoryLock:
    """`pg_try_advisory_lock` on a dedicated connection, kept while it is held."""

    def __init__(self, database_url: str, *, check_seconds: float,
                 key: int = LEADER_KEY) -> None:
        idle = max(1, int(check_seconds))
        url = make_url(database_url).set(drivername=POSTGRESQL_DRIVER)
        self.engine = sa.create_engine(url, poolclass=NullPool, connect_args={
            "keepalives": 1, "keepalives_idle": idle, "keepalives_interval": idle,
            "keepalives_count": 2, "connect_timeout": idle * 3})
        self.key = key
        self._conn: sa.Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process holds it now."""
        if self._conn is not None:
            return True
        conn: Any = None
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                    {"key": self.key}).scalar())
        except sa.exc.SQLAlchemyError as exc:
            log.warning("cannot reach the database to take the leader lock: %s", exc)
            if conn is not None:
                conn.invalidate()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def alive(self) -> bool:
        """Whether the session holding the lock is still there (False: the lock is gone)."""
        if self._conn is None:
            return False
        try:  # the same session, or an error: a connection is never silently replaced
            self._conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._conn.close()
        except sa.exc.SQLAlchemyError:
            self._drop()
        self._conn = None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.invalidate()

    def close(self) -> None:
        self.release()
        self.engine.dispose()
