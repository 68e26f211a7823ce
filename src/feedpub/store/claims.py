"""Claims with leases on outbox rows, and the send rate shared by every worker.

Several `feedpub worker` processes drain one PostgreSQL queue. A worker claims a small batch
of due rows of an issue with `SELECT … FOR UPDATE SKIP LOCKED` and writes its name and a lease
(`claimed_by`, `claimed_until`) on them in the same short transaction: other workers skip rows
locked by a claim in progress and rows whose lease still runs. The worker renews the leases
of its rows while it sends them (`renew`) and hands back what it did not send (`release`); a
worker that dies stops renewing, and its rows are claimed again once their lease runs out.

Times of leases and due rows are the workers' wall clocks (keep the nodes on NTP; the lease
is many times longer than any skew worth the name). The shared rate uses the database's clock.

`claiming` gives one sender its claims (renewed by a `LeaseKeeper` thread, handed back at the
end); `SharedRate` is `[delivery.smtp] rate` over every sender: a token bucket in one row.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ..config import Config
from . import Store, schema
from .dialect import dialect_of, insert_ignore
from .outbox import OutboxRow

_O = schema.outbox
_S = schema.subscribers
_B = schema.rate_buckets
_PENDING = _O.c.status == "pending"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    """Tokens handed out by the shared bucket; with none, how long until the next one."""

    tokens: int
    wait: float


class Claims:
    """Claim, renew and release outbox rows for one worker (`owner`) on an open Store."""

    def __init__(self, store: Store, owner: str) -> None:
        self.engine = store.engine
        self.writer = store.writer
        self.owner = owner

    def claim(self, issue_id: int, *, now: datetime, lease: timedelta,
              limit: int) -> list[OutboxRow]:
        """Up to `limit` due rows of the issue no other worker holds, now held by this one
        until `now + lease`, by id."""
        free = sa.or_(_O.c.claimed_until.is_(None), _O.c.claimed_until < now)
        due = sa.or_(_O.c.next_attempt.is_(None), _O.c.next_attempt <= now)
        pick = (sa.select(_O.c.id).where(_O.c.issue_id == issue_id, _PENDING, due, free)
                .order_by(_O.c.id).limit(limit).with_for_update(skip_locked=True))
        with self.writer.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(_O.update().where(_O.c.id.in_(ids)).values(
                claimed_by=self.owner, claimed_until=now + lease))
            rows = conn.execute(
                sa.select(_O.c.id, _O.c.issue_id, _O.c.subscriber_id, _O.c.variant_id,
                          _O.c.email, _O.c.name, _O.c.attempts,
                          _S.c.status.label("subscriber_status"), _O.c.queued_at)
                .join(_S, _S.c.id == _O.c.subscriber_id)
                .where(_O.c.id.in_(ids)).order_by(_O.c.id))
            return [OutboxRow(**row._mapping) for row in rows]

    def renew(self, until: datetime) -> int:
        """Extend the lease of every pending row this worker holds. Returns how many."""
        with self.writer.begin() as conn:
            return int(conn.execute(_O.update().where(
                _O.c.claimed_by == self.owner, _PENDING).values(claimed_until=until)).rowcount)

    def release(self) -> int:
        """Hand back the pending rows this worker holds (it stops, or its relay failed)."""
        with self.writer.begin() as conn:
            return int(conn.execute(_O.update().where(
                _O.c.claimed_by == self.owner, _PENDING).values(
                claimed_by=None, claimed_until=None)).rowcount)

    def source(self, issue_id: int, lease: timedelta,
               limit: int) -> Callable[[], list[OutboxRow]]:
        """The claim of the next batch of the issue, as a sender asks for it."""
        return lambda: self.claim(issue_id, now=datetime.now(UTC), lease=lease, limit=limit)

    def free_the_dead(self) -> int:
        """Hand back the rows claimed by processes of this host that are gone (a sender
        killed here and started again need not wait for its lease). Returns how many."""
        host = self.owner.split(":", 1)[0]
        with self.engine.connect() as conn:
            owners = conn.execute(sa.select(_O.c.claimed_by).distinct().where(
                _PENDING, _O.c.claimed_by.like(f"{host}:%"))).scalars().all()
        dead = [o for o in owners if o != self.owner and not _running(o)]
        if not dead:
            return 0
        with self.writer.begin() as conn:
            return int(conn.execute(_O.update().where(_O.c.claimed_by.in_(dead), _PENDING)
                                    .values(claimed_by=None, claimed_until=None)).rowcount)

    def held(self) -> int:
        """How many pending rows this worker holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_O).where(
                _O.c.claimed_by == self.owner, _PENDING)).scalar_one())


def take_tokens(store: Store, name: str, *, rate: float, burst: float, want: int) -> Grant:
    """Take up to `want` tokens from the shared bucket `name`, which fills at `rate` per
    second up to `burst` (by the database's clock). One short transaction, the bucket's row
    locked (FOR UPDATE) so that workers take turns."""
    clock = dialect_of(store.engine).clock
    with store.writer.begin() as conn:
        conn.execute(insert_ignore(store.engine, _B, {"name": name, "tokens": burst,
                                                      "updated": clock(conn)}, index=["name"]))
        row = conn.execute(sa.select(_B.c.tokens, _B.c.updated).where(_B.c.name == name)
                           .with_for_update()).one()
        # Read the clock once the row is ours: a time read before waiting for the lock would
        # be older than the one the previous holder wrote, and its tokens counted twice.
        now = max(clock(conn), row.updated)
        tokens = min(burst, row.tokens + (now - row.updated) * rate)
        taken = max(0, min(want, math.floor(tokens)))
        tokens -= taken
        conn.execute(_B.update().where(_B.c.name == name).values(tokens=tokens, updated=now))
    return Grant(taken, 0.0 if taken else (1.0 - tokens) / rate)


def _running(owner: str) -> bool:
    """Whether the process named by `owner` (host:pid:…) still runs on this host (a name
    that does not parse counts as running: its lease decides)."""
    parts = owner.split(":")
    if len(parts) < 3 or not parts[1].isdigit():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def owner_name() -> str:
    """Unique among the workers of a cluster: host, pid and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedRate:
    """`[delivery.smtp] rate` over all workers: tokens taken from the database's bucket, a
    few at a time (at most a tenth of a second's worth), spent by this worker's sessions."""

    def __init__(self, store: Store, rate: float) -> None:
        self.store = store
        self.rate = rate
        self.burst = max(1.0, rate / 10)
        self._tokens = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, cfg: Config, store: Store) -> SharedRate:
        """The configured rate ([delivery.smtp] rate; none for another backend)."""
        return cls(store, cfg.delivery.smtp.rate if cfg.delivery.backend == "smtp" else 0.0)

    def wait(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:  # this worker's other sessions wait their turn here
            while self._tokens < 1:
                grant = take_tokens(self.store, "smtp", rate=self.rate, burst=self.burst,
                                    want=math.ceil(self.burst))
                self._tokens += grant.tokens
                if not grant.tokens:
                    time.sleep(min(grant.wait, 1.0))
            self._tokens -= 1


class LeaseKeeper:
    """Renews this worker's leases every third of the lease, in a thread of its own."""

    def __init__(self, claims: Claims, lease: timedelta) -> None:
        self.claims = claims
        self.lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedpub-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                self.claims.renew(datetime.now(UTC) + self.lease)
            except sa.exc.SQLAlchemyError:  # the next renewal tries again; logged
                log.warning("could not renew the claims of %s", self.claims.owner,
                            exc_info=True)


@contextmanager
def claiming(store: Store, lease: timedelta, owner: str | None = None) -> Iterator[Claims]:
    """Claims of one sender, their leases renewed while the block runs and what is left
    unsent handed back at its end."""
    claims = Claims(store, owner or owner_name())
    freed = claims.free_the_dead()
    if freed:
        log.info("%d message(s) claimed by a sender of this host that is gone: free again",
                 freed)
    try:
        with LeaseKeeper(claims, lease):
            yield claims
    finally:
        claims.release()
