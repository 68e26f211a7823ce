"""The queue runner: send every due row of every unfinished issue, whatever its cadence.

`run_queue` is one pass. The daemon calls it on start and every `[delivery] queue_interval`;
`feedpub digest send` calls it before sending its cadence; a worker process could call it
the same way. A cadence whose send lock another process holds is skipped this pass (that
process is sending it). When the relay cannot be used at all, the rows stay pending (those
queued longer than `retry_give_up` ago are failed), and the error is kept in the store for
`feedpub status` until a pass gets through again.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config import Config
from ..errors import DeliveryError
from ..store import CADENCES, Store, open_store
from ..store.outbox import Outbox
from ..store.queue import DeliveryQueue, QueueSummary
from .mailing import SendReport, drain_issue
from .sendlock import SendBusyError, send_lock

log = logging.getLogger(__name__)

META_RELAY_ERROR = "queue.relay_error"  # JSON {"since": ISO time, "error": text}, or ""


@dataclass(frozen=True)
class QueueReport:
    """What one pass of the queue runner did."""

    issues: tuple[SendReport, ...]  # one per unfinished issue it sent rows of
    busy: tuple[str, ...] = ()  # cadences another process was sending: skipped
    error: str | None = None  # the relay could not be used; the rows wait
    expired: int = 0  # rows failed because they waited past retry_give_up

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.issues)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.issues) + self.expired


@dataclass(frozen=True)
class RelayError:
    since: datetime
    error: str


def run_queue(cfg: Config, *, stop: threading.Event | None = None,
              cadences: tuple[str, ...] = CADENCES) -> QueueReport:
    """One pass: the due rows of every unfinished issue of `cadences`, oldest issue first."""
    reports: list[SendReport] = []
    busy: list[str] = []
    with open_store(cfg) as store:
        for cadence in cadences:
            if stop is not None and stop.is_set():
                break
            if not Outbox(store).unfinished_issues(cadence):
                continue
            try:
                with send_lock(cfg, cadence):
                    for issue in Outbox(store).unfinished_issues(cadence):
                        if stop is not None and stop.is_set():
                            break
                        reports.append(drain_issue(cfg, store, issue, stop=stop,
                                                   progress=None, resumed=True))
            except SendBusyError:
                busy.append(cadence)
            except DeliveryError as exc:
                expired = relay_failed(cfg, store, exc)
                return QueueReport(tuple(reports), tuple(busy), str(exc), expired)
        if reports:
            relay_worked(store)
    return QueueReport(tuple(reports), tuple(busy))


def relay_failed(cfg: Config, store: Store, exc: Exception) -> int:
    """Record that the relay could not be used (kept for `feedpub status`, with the time it
    started) and fail the rows queued longer than retry_give_up. Returns how many failed."""
    now = datetime.now(UTC)
    known = relay_error(store)
    since = known.since if known is not None else now
    store.set_meta(META_RELAY_ERROR, json.dumps({"since": since.isoformat(),
                                                 "error": str(exc)}))
    give_up = timedelta(seconds=float(cfg.delivery.retry_give_up))
    expired = DeliveryQueue(store).expire(
        now, give_up, f"gave up: queued more than {cfg.delivery.retry_give_up:g} s ago and "
                      f"the server could not be reached: {exc}")
    log.warning("the mail server could not be used since %s; the queue waits and tries again "
                "(%s)", since.isoformat(timespec="seconds"), exc)
    if expired:
        log.warning("%d queued message(s) given up: older than delivery.retry_give_up", expired)
        for issue in Outbox(store).unfinished_issues():
            Outbox(store).finish_issue(issue.id)
    return expired


def note_relay(cfg: Config, exc: Exception | None) -> None:
    """After a send outside `run_queue`: record the relay error (None: the relay worked)."""
    with open_store(cfg) as store:
        if exc is None:
            relay_worked(store)
        else:
            relay_failed(cfg, store, exc)


def relay_worked(store: Store) -> None:
    """Clear a recorded relay error once messages go through again."""
    if store.get_meta(META_RELAY_ERROR):
        store.set_meta(META_RELAY_ERROR, "")


def relay_error(store: Store) -> RelayError | None:
    """The relay error a queue run recorded and no later run cleared, if any."""
    saved = store.get_meta(META_RELAY_ERROR)
    if not saved:
        return None
    try:
        data = json.loads(saved)
        return RelayError(datetime.fromisoformat(data["since"]), str(data["error"]))
    except (ValueError, KeyError, TypeError):
        return None


def retry_now(cfg: Config) -> int:
    """Make every deferred row due now (after fixing the relay). Returns how many."""
    with open_store(cfg) as store:
        count = DeliveryQueue(store).retry_now(datetime.now(UTC))
    if count:
        log.info("%d deferred message(s) made due now", count)
    return count


def queue_summary(cfg: Config) -> tuple[QueueSummary, RelayError | None]:
    """The queue's size, its oldest deferred row and any standing relay error."""
    with open_store(cfg) as store:
        return DeliveryQueue(store).summary(), relay_error(store)


__all__ = ["META_RELAY_ERROR", "QueueReport", "RelayError", "note_relay", "queue_summary",
           "relay_error", "retry_now", "run_queue"]
