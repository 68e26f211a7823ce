"""Drain one issue's outbox through the configured mailer, exactly once per accepted message.

The calling thread streams due rows from the database in batches, builds each message (the
issue was rendered once; only the recipient's values are filled in) and queues it; one worker
thread per mailer session sends and records the outcome right after the server answers.
So a crash can repeat at most the messages accepted but not yet recorded: one per session.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..config import Config
from ..mail import tokens
from ..mail.addresses import ascii_address
from ..mail.message import MessageTemplate, Recipient
from ..store.outbox import Issue, Outbox, OutboxRow
from .base import ConnectionFailure, PermanentFailure, RateLimiter, TemporaryFailure
from .envelope import Envelope
from .registry import open_mailer, sessions

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
SendRaw = Callable[[str, str, bytes, Callable[[], None]], str]


@dataclass
class Tally:
    """What one run did to an issue (shared by the worker threads, under `lock`)."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    bounced: int = 0
    done: int = 0  # rows finished before and during this run, for the progress display
    lock: threading.Lock = field(default_factory=threading.Lock)


def recipient_for(cfg: Config, subscriber_id: int, email: str, name: str | None) -> Recipient:
    return Recipient(subscriber_id=subscriber_id, email=email, name=name,
                     unsubscribe_url=tokens.link(cfg, "unsubscribe", subscriber_id, email),
                     preferences_url=tokens.link(cfg, "preferences", subscriber_id, email))


class IssueSender:
    """Sends the pending rows of one issue; `run()` returns when none is due or on stop."""

    def __init__(self, cfg: Config, outbox: Outbox, issue: Issue, *,
                 stop: threading.Event | None = None, progress: Progress | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.issue = issue
        self.stop = stop or threading.Event()
        self.abort = threading.Event()
        self.failure: Exception | None = None
        self.progress = progress
        self.clock = clock
        self.tally = Tally()
        self.limiter = RateLimiter(cfg.delivery.smtp.rate if cfg.delivery.backend == "smtp"
                                   else 0.0)
        self.workers = sessions(cfg)
        self.queue: queue.Queue[tuple[OutboxRow, bytes] | None] = queue.Queue(
            maxsize=self.workers * 4)
        self._templates: dict[int, MessageTemplate] = {}
        # Deliverability: envelope sender (VERP) and DKIM signature of each copy.
        self.envelope = Envelope(cfg)
        self.recorder: ThreadPoolExecutor | None = None

    # -- building ---------------------------------------------------------------------------

    def _template(self, variant_id: int) -> MessageTemplate:
        template = self._templates.get(variant_id)
        if template is None:
            digest = self.outbox.variant(variant_id)
            template = MessageTemplate(self.cfg, digest, issue_id=self.issue.id,
                                       date=self.issue.created)
            self._templates[variant_id] = template
        return template

    def build(self, row: OutboxRow) -> bytes:
        return self.envelope.seal(self._template(row.variant_id).render(  # DKIM: see Envelope
            recipient_for(self.cfg, row.subscriber_id, row.email, row.name)))

    # -- running ----------------------------------------------------------------------------

    def run(self) -> Tally:
        """Send until nothing is due; wait for deferred rows unless stopped.

        Raises DeliveryError (naming host:port) when the server cannot be used; the rows not
        sent stay pending for the next run.
        """
        counts = self.outbox.counts([self.issue.id])[0]
        self.tally.done = counts.sent + counts.failed
        self._report()
        self.recorder = ThreadPoolExecutor(max_workers=self.workers,
                                           thread_name_prefix="feedpub-record")
        threads = [threading.Thread(target=self._worker, name=f"feedpub-send-{n}", daemon=True)
                   for n in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            while not self._halted():
                self._feed_due_rows()
                self.queue.join()  # every queued row is recorded before we look again
                if self._halted():
                    break
                due = self.outbox.next_retry(self.issue.id)
                if due is None:
                    break
                wait = (due - self.clock()).total_seconds()
                if wait > 0:
                    self.stop.wait(wait)
        finally:
            for _ in threads:
                self.queue.put(None)
            for thread in threads:
                thread.join()
            self.recorder.shutdown(wait=True)
        if self.failure is not None:
            raise self.failure
        return self.tally

    def _halted(self) -> bool:
        return self.stop.is_set() or self.abort.is_set()

    def _feed_due_rows(self) -> None:
        after = 0
        while not self._halted():
            rows = self.outbox.due_rows(self.issue.id, after_id=after, now=self.clock())
            if not rows:
                return
            after = rows[-1].id
            for row in rows:
                if self._halted():
                    return
                if row.subscriber_status != "active":
                    self._failed(row, f"not sent: subscriber is {row.subscriber_status}")
                    continue
                self.queue.put((row, self.build(row)))

    def _worker(self) -> None:
        try:
            with open_mailer(self.cfg) as mailer:
                if self._consume(mailer.send_raw):
                    return
        except Exception as exc:  # recorded here, re-raised by run()
            self._fail(exc)
        self._consume(None)  # this session is gone: discard until the end marker

    def _consume(self, send: SendRaw | None) -> bool:
        """Send queued items until the end marker (True); a failure propagates.

        The record of a sent message is written by the recorder pool while the next message
        streams to the server; the next message is only let through to acceptance (the final
        "." of DATA) once that record is committed. An item counts as done for `run()` only
        when its record is written.
        """
        recording: Future[None] | None = None

        def settle() -> None:
            nonlocal recording
            if recording is not None:
                previous, recording = recording, None
                try:
                    previous.result()
                finally:
                    self.queue.task_done()

        try:
            while (item := self._next_item(settle)) is not None:
                try:
                    pending = None
                    if send is not None and not self._halted():
                        pending = self._send_one(send, *item, settle)
                except BaseException:
                    self.queue.task_done()
                    raise
                if pending is None:
                    self.queue.task_done()
                else:
                    recording = pending
        finally:
            settle()
        return True

    def _next_item(self, settle: Callable[[], None]) -> tuple[OutboxRow, bytes] | None:
        """The next queued item; before waiting for one, finish the pending record."""
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            settle()
            return self.queue.get()

    def _send_one(self, send: SendRaw, row: OutboxRow, data: bytes,
                  settle: Callable[[], None]) -> Future[None] | None:
        """Send one message; returns the future of its 'sent' record (None: recorded now)."""
        self.limiter.wait()
        sender = self.envelope.sender(row.subscriber_id, row.issue_id)  # VERP: see Envelope
        try:
            reply = send(sender, ascii_address(row.email), data, settle)
        except TemporaryFailure as exc:
            attempts = row.attempts + 1
            if attempts >= self.cfg.delivery.max_attempts:
                self._failed(row, f"gave up after {attempts} tries: {exc}")
            else:
                delay = self.cfg.delivery.retry_base * (2 ** (attempts - 1))
                if self.outbox.mark_retry(row.id, str(exc),
                                          self.clock() + timedelta(seconds=delay)):
                    self._count("retried")
                else:
                    self._not_pending(row.id, "retry")
            return None
        except PermanentFailure as exc:
            self._failed(row, str(exc), bounce=exc.bounce)
            return None
        except ConnectionFailure as exc:
            self._fail(exc)
            return None
        assert self.recorder is not None
        return self.recorder.submit(self._record_sent, row.id, reply)

    def _record_sent(self, row_id: int, reply: str) -> None:
        if self.outbox.mark_sent(row_id, reply, self.clock()):
            self._count("sent")
        else:
            self._not_pending(row_id, "delivery")

    def _failed(self, row: OutboxRow, reply: str, *, bounce: bool = False) -> None:
        """Record a row as failed; counted (and its bounce) only if the record changed it."""
        limit = self.cfg.delivery.bounce_limit if bounce else None
        outcome = self.outbox.mark_failed(row.id, reply, bounce_limit=limit)
        if not outcome.changed:
            self._not_pending(row.id, "failure")
            return
        self._count("failed")
        if outcome.bounced:
            self._count("bounced")
            log.warning("%s bounced %d times; marked as bounced", row.email,
                        self.cfg.delivery.bounce_limit)

    @staticmethod
    def _not_pending(row_id: int, what: str) -> None:
        # recorded by someone else meanwhile: the send lock should make this impossible
        log.error("outbox row %d was no longer pending when its %s was recorded", row_id, what)

    def _fail(self, exc: Exception) -> None:
        with self.tally.lock:
            if self.failure is None:
                self.failure = exc
        self.abort.set()

    def _count(self, what: str) -> None:
        with self.tally.lock:
            setattr(self.tally, what, getattr(self.tally, what) + 1)
            if what in ("sent", "failed"):
                self.tally.done += 1
                self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.tally.done, self.issue.total)
