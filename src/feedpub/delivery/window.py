"""A sending session's window: how many messages go out between two group records, what
one run did (`Tally`), and the record a session waits for before its next acceptance.

Used by `sender`; pure apart from waiting on a record's future.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..config import Config


@dataclass
class Tally:
    """What one run did to an issue (shared by the worker threads, under `lock`)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0  # deferred to a later attempt by this run
    bounced: int = 0
    skipped: int = 0  # not sent: the subscriber left (or the row was settled) meanwhile
    done: int = 0  # rows finished before and during this run, for the progress display
    lock: threading.Lock = field(default_factory=threading.Lock)


IN_FLIGHT = 8  # messages a session sends between two group commits: the duplicate bound


def window(cfg: Config) -> int:
    """How many messages a session sends per status read and group commit: `IN_FLIGHT`, or
    fewer under a send rate, so a window never spans more than a twentieth of a second and
    an unsubscribe is still seen by the next message when sending slowly."""
    rate = cfg.delivery.smtp.rate if cfg.delivery.backend == "smtp" else 0.0
    if rate <= 0:
        return IN_FLIGHT
    return max(1, min(IN_FLIGHT, int(rate / 20)))


class PendingRecord:
    """A session's last group record, as (future, items it settles); calling it waits for
    the record and marks its items done (a no-op when none is pending)."""

    def __init__(self, work: queue.Queue[Any]) -> None:
        self.work = work
        self.pending: tuple[Future[None], int] | None = None

    def __call__(self) -> None:
        if self.pending is None:
            return
        (previous, count), self.pending = self.pending, None
        try:
            previous.result()
        finally:
            for _ in range(count):
                self.work.task_done()
