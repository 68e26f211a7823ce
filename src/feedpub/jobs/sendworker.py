"""`feedpub worker`: one of any number of sender processes sharing a PostgreSQL store.

A worker loops over the unfinished issues and sends their due rows, claimed a small batch at
a time (`store.claims`: `SELECT … FOR UPDATE SKIP LOCKED`, a lease on each claimed row), with
its own SMTP sessions (`[delivery.smtp] connections`). A thread renews the leases of its rows
every third of `[cluster] lease_seconds`; when the worker stops it hands back the rows it did
not send. A worker killed outright stops renewing: its rows are claimed by another worker
once their lease runs out. As with one sender, a message accepted by the server but not yet
recorded can go out again after a crash: at most `IN_FLIGHT` (the group commit of
`delivery.sender`) per SMTP session of the dead worker.

`[delivery.smtp] rate` is one limit over all workers: a token bucket kept in the database
(`rate_buckets`, filled by the database's clock) from which each worker takes a few tokens
at a time. However many workers run, they cannot take more than `rate` per second between
them (plus one bucket's worth, a tenth of a second of sending, at the start).

A database that cannot be reached (restarted, failed over, a network cut) does not end a
worker: it logs `worker_database_error`, waits (1 s, doubling up to DB_RETRY_MAX) and starts
again with a fresh connection, under the same name. Rows it had claimed are taken up again
once their lease runs out, by it or another worker; what was sent but not recorded is bounded
as after a crash.

SQLite is one process by design (its file lock, `feedpub run`): a worker refuses it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from ..config import Config
from ..delivery.sender import IssueSender
from ..delivery.window import Tally
from ..errors import ClusterError, DeliveryError, StoreError
from ..logfmt import log_event
from ..store import Store, open_store
from ..store.claims import Claims, SharedRate, claiming, owner_name
from ..store.dialect import safe_url
from ..store.outbox import Issue, Outbox, OutboxRow
from .queue import relay_failed, relay_worked

log = logging.getLogger("feedpub.worker")

RELAY_PAUSE = 30.0  # seconds a worker waits after the relay could not be used
DB_RETRY_FIRST = 1.0  # seconds a worker waits after the database failed, doubled each time
DB_RETRY_MAX = 30.0


def require_shared_store(cfg: Config, what: str = "feedpub worker") -> None:
    """ClusterError unless the store is one several processes and machines may share."""
    if not cfg.database_url.startswith("postgresql"):
        raise ClusterError(
            f"{what} needs a PostgreSQL store, and [store] url is "
            f"{safe_url(cfg.database_url)!r}: a SQLite file is sent from by one process at a "
            "time (`feedpub run`, or `feedpub digest send`), so extra workers could not share "
            "it. Keep using `feedpub run` alone, or move the site to PostgreSQL (`feedpub db "
            "copy --to postgresql+psycopg://…`, then point [store] url at it) to add workers")


@dataclass
class WorkerReport:
    """What a worker did over its life."""

    name: str
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    relay_errors: int = 0
    database_errors: int = 0
    passes: int = 0  # looks at the queue that went through

    def add(self, tally: Tally) -> None:
        self.sent += tally.sent
        self.failed += tally.failed
        self.retried += tally.retried
        self.skipped += tally.skipped


def run_worker(cfg: Config, *, stop: threading.Event, name: str | None = None,
               idle: float = 1.0) -> WorkerReport:
    """Send due rows of every unfinished issue, with other workers, until `stop` is set;
    then finish the messages in flight, record them, hand back the rest and return.
    `idle`: seconds between two looks at the queue when nothing was due."""
    require_shared_store(cfg)
    report = WorkerReport(name or owner_name())
    lease = timedelta(seconds=float(cfg.cluster.lease_seconds))
    log_event(log, "worker_started", name=report.name, lease=lease.total_seconds(),
              batch=cfg.cluster.claim_batch,
              rate=(cfg.delivery.smtp.rate if cfg.delivery.backend == "smtp" else 0) or None)
    wait, passes = DB_RETRY_FIRST, 0
    while not stop.is_set():
        try:
            _work(cfg, stop, report, lease, idle)
        except (sa.exc.DBAPIError, StoreError) as exc:  # the database went away: wait, retry
            if isinstance(exc, StoreError) and not isinstance(exc.__cause__,
                                                              sa.exc.DBAPIError):
                raise  # not an outage (a schema older or newer than the code): say so and stop
            if stop.is_set():
                break
            if report.passes > passes:  # it worked for a while since the last failure
                wait, passes = DB_RETRY_FIRST, report.passes
            report.database_errors += 1
            log_event(log, "worker_database_error", level=logging.WARNING, name=report.name,
                      error=_first_line(exc), retry_in=wait)
            stop.wait(wait)
            wait = min(DB_RETRY_MAX, wait * 2)
    log_event(log, "worker_stopped", name=report.name, sent=report.sent,
              failed=report.failed, deferred=report.retried, skipped=report.skipped,
              database_errors=report.database_errors)
    return report


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _work(cfg: Config, stop: threading.Event, report: WorkerReport, lease: timedelta,
          idle: float) -> None:
    """Passes over the queue on one connection until `stop` is set (a database error ends
    them early: the caller starts again)."""
    with open_store(cfg) as store, claiming(store, lease, report.name) as claims:
        limiter = SharedRate.of(cfg, store)
        while not stop.is_set():
            worked = _one_pass(cfg, store, claims, limiter, lease, stop, report)
            report.passes += 1
            if worked is None:
                report.relay_errors += 1
                stop.wait(min(RELAY_PAUSE, float(cfg.delivery.queue_interval)))
            elif not worked:
                stop.wait(idle)


def _one_pass(cfg: Config, store: Store, claims: Claims, limiter: SharedRate,
              lease: timedelta, stop: threading.Event, report: WorkerReport) -> bool | None:
    """The due rows of every unfinished issue; whether any row was due (None: the relay
    could not be used)."""
    outbox = Outbox(store)
    worked = False
    for issue in outbox.unfinished_issues():
        if stop.is_set():
            break
        try:
            tally = _drain(cfg, store, claims, limiter, lease, issue, stop)
        except DeliveryError as exc:
            claims.release()
            relay_failed(cfg, store, exc)
            return None
        if tally is None:
            continue
        worked = True
        report.add(tally)
        outbox.finish_issue(issue.id)
        log_event(log, "worker_issue", name=report.name, issue=issue.id, sent=tally.sent,
                  failed=tally.failed, deferred=tally.retried, skipped=tally.skipped)
    if worked:
        relay_worked(store)
    return worked


def _drain(cfg: Config, store: Store, claims: Claims, limiter: SharedRate, lease: timedelta,
           issue: Issue, stop: threading.Event) -> Tally | None:
    """Send the rows of `issue` this worker can claim; None when none was due."""
    claim = claims.source(issue.id, lease, cfg.cluster.claim_batch)
    first = claim()
    if not first:
        return None
    waiting = [first]

    def next_batch() -> list[OutboxRow]:
        return waiting.pop() if waiting else claim()

    sender = IssueSender(cfg, Outbox(store), issue, stop=stop, claim=next_batch,
                         owner=claims.owner, limiter=limiter)
    return sender.run()


__all__ = ["WorkerReport", "require_shared_store", "run_worker"]
