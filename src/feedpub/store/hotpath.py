"""The send loop's per-window statements, compiled once and run on the driver's connection.

A sending session asks two things of the store for every window of up to eight messages:
right before it goes out, whether each row is still pending and what its subscriber's status
is now (`LiveStatus`); once the server took them, that they are sent (`SentRecorder`, the
group commit). At hundreds of messages a second these are the store's hot path, so each
statement is compiled once per window size, and the driver runs it without SQLAlchemy's
per-call work (a quarter of the cost). Every other operation goes through `outbox` and
`queue` as usual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.compiler import SQLCompiler

from . import schema
from .dialect import begin_write

_O = schema.outbox
_S = schema.subscribers
# Rows looked up by id are tested `status || ''`, so that SQLite finds them by primary key.
# Plain `status = 'pending'` lets its planner pick the status index, and while an issue is
# sent nearly every row is pending: each check of eight rows then walked the whole index
# (1.5 ms at 10,000 subscribers, ten times that at 100,000).
_STILL_PENDING = _O.c.status.concat("") == "pending"

# What the sender asks right before each message: is the row still pending, and what is its
# subscriber's status now? One primary-key lookup on each table.
_LIVE = (
    sa.select(_S.c.status)
    .select_from(_O.join(_S, _S.c.id == _O.c.subscriber_id))
    .where(_O.c.id == sa.bindparam("row_id"), _STILL_PENDING)
)
# The same for a worker: only while the row is still claimed by this worker (a lease that ran
# out and was claimed by another worker is that worker's to send).
_LIVE_CLAIMED = _LIVE.where(_O.c.claimed_by == sa.bindparam("owner"))


def _ids(count: int) -> list[sa.BindParameter[int]]:
    return [sa.bindparam(f"id{n}", type_=sa.Integer) for n in range(count)]


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once for the driver: its SQL, literal values and bind order."""

    sql: str
    fixed: dict[str, Any]
    order: list[str] | None


class _Prepares:
    """Statements prepared for one engine's dialect."""

    def __init__(self, engine: sa.Engine, extra: dict[str, Any] | None = None) -> None:
        self._dialect = engine.dialect
        self._extra = extra or {}

    def _prepare(self, statement: sa.ClauseElement, keys: Sequence[str]) -> _Prepared:
        compiled = cast(SQLCompiler, statement.compile(dialect=self._dialect))
        start: dict[str, Any] = {**dict.fromkeys(keys, 0), **self._extra}
        fixed = dict(compiled.construct_params(start))  # the literals, e.g. 'pending'
        order = list(compiled.positiontup or []) if compiled.positional else None
        return _Prepared(str(compiled), fixed, order)

    @staticmethod
    def _execute(cursor: Any, prepared: _Prepared, values: dict[str, Any]) -> None:
        values = {**prepared.fixed, **values}
        order = prepared.order
        cursor.execute(prepared.sql, values if order is None else [values[k] for k in order])


class LiveStatus(_Prepares):
    """Per-message check on a connection of its own (one per sending thread).

    `check(row_id)` returns the subscriber's status, or None when the row is no longer
    pending (recorded elsewhere, or the subscriber was erased), or, with `owner`, no longer
    claimed by that worker; `check_many` asks the same for the few rows a session is about to
    send, in one query. It runs outside any transaction (autocommit, as the store's SQLite
    connections are set up; ended at once elsewhere), so it sees every commit made before
    it, such as an unsubscribe a moment ago.
    """

    def __init__(self, engine: sa.Engine, owner: str | None = None) -> None:
        super().__init__(engine, {"owner": owner} if owner is not None else None)
        self._raw = engine.raw_connection()  # held while the session sends
        self._cursor = self._raw.cursor()
        self._owner = owner
        self._one = self._prepare(_LIVE if owner is None else _LIVE_CLAIMED, ["row_id"])
        self._many: dict[int, _Prepared] = {}

    def _run(self, prepared: _Prepared, values: dict[str, Any]) -> list[Any]:
        try:
            self._execute(self._cursor, prepared, values)
            return list(self._cursor.fetchall())
        finally:
            self._raw.rollback()  # no-op in autocommit; ends a driver-begun transaction

    def check(self, row_id: int) -> str | None:
        found = self._run(self._one, {"row_id": row_id})
        return str(found[0][0]) if found else None

    def check_many(self, row_ids: Sequence[int]) -> dict[int, str]:
        """`check` for a group of rows in one query: row id -> subscriber status, for the
        rows still pending (and claimed by `owner`); a row missing from the answer is not to
        be sent."""
        if not row_ids:
            return {}
        prepared = self._many.get(len(row_ids))
        if prepared is None:
            keys = _ids(len(row_ids))
            statement = sa.select(_O.c.id, _S.c.status).select_from(
                _O.join(_S, _S.c.id == _O.c.subscriber_id)).where(_O.c.id.in_(keys),
                                                                   _STILL_PENDING)
            if self._owner is not None:
                statement = statement.where(_O.c.claimed_by == sa.bindparam("owner"))
            prepared = self._many[len(row_ids)] = self._prepare(
                statement, [key.key for key in keys])
        found = self._run(prepared, {f"id{n}": row_id for n, row_id in enumerate(row_ids)})
        return {int(row_id): str(status) for row_id, status in found}

    def close(self) -> None:
        self._cursor.close()
        self._raw.close()

    def __enter__(self) -> LiveStatus:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SentRecorder(_Prepares):
    """The group commit of a window: `record` marks the rows the server accepted as sent
    (as `Outbox.mark_sent` does one row), in one write transaction on a driver connection
    taken from the pool for that transaction only. Safe to share between threads."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self._engine = engine
        self._begin = begin_write(engine)
        stamp: Callable[[Any], Any] | None = _O.c.sent_at.type.bind_processor(engine.dialect)
        self._stamp = stamp or (lambda value: value)
        self._statements: dict[int, tuple[_Prepared, _Prepared]] = {}

    def _for(self, count: int) -> tuple[_Prepared, _Prepared]:
        found = self._statements.get(count)
        if found is None:
            keys = _ids(count)
            mark = (_O.update().where(_O.c.id.in_(keys), _STILL_PENDING)
                    .values(status="sent", reply=sa.bindparam("reply"),
                            sent_at=sa.bindparam("now"), attempts=_O.c.attempts + 1)
                    .returning(_O.c.id))
            # A delivered message resets its subscriber's count of consecutive hard bounces.
            clear = (_S.update().where(_S.c.id.in_(sa.select(_O.c.subscriber_id).where(
                _O.c.id.in_(keys))), _S.c.bounces > 0).values(bounces=0))
            names = [key.key for key in keys]
            found = self._statements[count] = (
                self._prepare(mark, [*names, "reply", "now"]), self._prepare(clear, names))
        return found

    def record(self, sent: Sequence[tuple[int, str]], now: datetime) -> set[int]:
        """Mark (row id, reply) pairs sent at `now`, in one transaction; returns the ids it
        changed (a row no longer pending is left alone)."""
        by_reply: dict[str, list[int]] = {}
        for row_id, reply in sent:
            by_reply.setdefault(reply[:1000], []).append(row_id)
        when = self._stamp(now)
        changed: set[int] = set()
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self._begin:
                cursor.execute(self._begin)
            for reply, ids in by_reply.items():  # one reply for all, as a rule
                mark, _ = self._for(len(ids))
                self._execute(cursor, mark, {**_numbered(ids), "reply": reply, "now": when})
                changed.update(int(row[0]) for row in cursor.fetchall())
            if changed:
                ordered = sorted(changed)
                _, clear = self._for(len(ordered))
                self._execute(cursor, clear, _numbered(ordered))
            raw.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                raw.rollback()
            raise
        finally:
            raw.close()  # back to the pool (a broken connection is discarded there)
        return changed


def _numbered(ids: Sequence[int]) -> dict[str, int]:
    return {f"id{n}": row_id for n, row_id in enumerate(ids)}
