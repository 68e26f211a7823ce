"""Drain one issue's due outbox rows through the configured mailer, exactly once each.

The calling thread streams due rows from the database in batches, builds each message (the
issue was rendered once; only the recipient's values are filled in, by `outgoing_message`)
and queues it; one worker thread per mailer session sends a window of up to `IN_FLIGHT`
messages at a time and records their acceptance in one transaction (group commit). So a
crash can repeat at most the messages accepted but not yet recorded: `IN_FLIGHT` per session.

Right before each window goes out, its worker looks up the rows and their subscribers again,
in one query (`LiveStatus.check_many`): an unsubscribe, bounce or removal committed a moment
earlier stops the message. Under a send rate the window shrinks (see `window`), down to one
message when sending slowly. Without one, each message of a window names the next to the
mailer (`then`), so the SMTP backend sends the next message's commands with this one's end.

Several workers sharing a PostgreSQL queue pass `claim` (the next batch of rows claimed for
this sender, see `store.claims`) and `owner`: a row whose claim went to another sender
meanwhile is not sent.

A temporary failure defers the row to its next attempt (`backoff`); `run()` never waits
for a deferred row: it returns when nothing is due, and the next run (the daemon's queue
runner, or `feedpub digest send`) takes the row up once it is due.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ..config import Config
from ..mail import tokens
from ..mail.addresses import ascii_address
from ..mail.message import MessageTemplate, Recipient
from ..store.hotpath import LiveStatus, SentRecorder
from ..store.outbox import Issue, Outbox, OutboxRow
from .backoff import next_attempt
from .base import ConnectionFailure, PermanentFailure, RateLimiter, TemporaryFailure
from .envelope import Envelope
from .registry import open_mailer, sessions
from .window import PendingRecord, Tally, window

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
SendRaw = Callable[[str, str, Sequence[bytes], Callable[[], None] | None,
                    tuple[str, str] | None], str]
Claim = Callable[[], list[OutboxRow]]  # the next batch of rows claimed for this run
RECORDERS = 4  # threads recording windows, at most: a send holds sessions + 4 connections


class Limiter(Protocol):
    def wait(self) -> None: ...


def recipient_for(cfg: Config, subscriber_id: int, email: str, name: str | None) -> Recipient:
    return Recipient(subscriber_id=subscriber_id, email=email, name=name,
                     unsubscribe_url=tokens.link(cfg, "unsubscribe", subscriber_id, email),
                     preferences_url=tokens.link(cfg, "preferences", subscriber_id, email))


@dataclass(frozen=True)
class Outgoing:
    """One message as it goes on the wire: envelope sender, recipient and the exact bytes,
    as fragments (`parts`) whose shared ones are the same objects in every copy."""

    sender: str
    recipient: str
    parts: tuple[bytes, ...]

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


class IssueSender:
    """Sends the pending rows of one issue; `run()` returns when none is due or on stop."""

    def __init__(self, cfg: Config, outbox: Outbox, issue: Issue, *,
                 stop: threading.Event | None = None, progress: Progress | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 claim: Claim | None = None, owner: str | None = None,
                 limiter: Limiter | None = None) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.issue = issue
        self.stop = stop or threading.Event()
        self.abort = threading.Event()
        self.failure: Exception | None = None
        self.progress = progress
        self.clock = clock
        self.tally = Tally()
        # A worker passes the rows it claimed (`claim`, returning the next batch), its name
        # (`owner`: a row whose claim went elsewhere is not sent) and the shared rate.
        self.claim = claim
        self.owner = owner
        self.limiter: Limiter = limiter or RateLimiter(
            cfg.delivery.smtp.rate if cfg.delivery.backend == "smtp" else 0.0)
        self.workers = sessions(cfg)
        self.window = window(cfg)
        self.chain = not (cfg.delivery.backend == "smtp" and cfg.delivery.smtp.rate > 0)
        self.queue: queue.Queue[tuple[OutboxRow, Outgoing] | None] = queue.Queue(
            maxsize=self.workers * self.window * 2)
        self._templates: dict[int, MessageTemplate] = {}
        # Deliverability: envelope sender (VERP) and DKIM signature of each copy.
        self.envelope = Envelope(cfg)
        self.recorder: ThreadPoolExecutor | None = None
        self.sent_recorder = SentRecorder(outbox.engine)  # the group record's statements

    # -- building ---------------------------------------------------------------------------

    def _template(self, variant_id: int) -> MessageTemplate:
        template = self._templates.get(variant_id)
        if template is None:
            digest = self.outbox.variant(variant_id)
            template = MessageTemplate(self.cfg, digest, issue_id=self.issue.id,
                                       date=self.issue.created)
            self._templates[variant_id] = template
        return template

    def outgoing_message(self, row: OutboxRow) -> Outgoing:
        """The one place where a row becomes its envelope sender (VERP when [delivery]
        return_path is set) and per-recipient bytes (DKIM-signed when configured): see
        `Envelope`."""
        head, body = self._template(row.variant_id).render_parts(
            recipient_for(self.cfg, row.subscriber_id, row.email, row.name))
        return Outgoing(sender=self.envelope.sender(row.subscriber_id, row.issue_id),
                        recipient=ascii_address(row.email),
                        parts=self.envelope.seal_parts(head, body))

    def build(self, row: OutboxRow) -> bytes:
        return self.outgoing_message(row).data

    # -- running ----------------------------------------------------------------------------

    def run(self) -> Tally:
        """Send until nothing is due (deferred rows are left for a later run) or stopped.

        Raises DeliveryError (naming host:port) when the server cannot be used; the rows not
        sent stay pending for the next run.
        """
        counts = self.outbox.counts([self.issue.id])[0]
        self.tally.done = counts.sent + counts.failed
        self._report()
        # A few recording threads serve every session: each holds a database connection
        # only while it commits, and more would only queue for the same write lock.
        self.recorder = ThreadPoolExecutor(max_workers=min(self.workers, RECORDERS),
                                           thread_name_prefix="feedpub-record")
        threads = [threading.Thread(target=self._worker, name=f"feedpub-send-{n}", daemon=True)
                   for n in range(self.workers)]
        for thread in threads:
            thread.start()
        try:
            # Rows deferred during a pass that fall due before it ends are taken up too.
            while not self._halted() and self._feed_due_rows():
                self.queue.join()  # every queued row is recorded before we look again
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

    def _feed_due_rows(self) -> int:
        """Queue every row due now; returns how many rows were taken up."""
        after, taken = 0, 0
        while not self._halted():
            if self.claim is not None:
                rows = self.claim()
            else:
                rows = self.outbox.due_rows(self.issue.id, after_id=after, now=self.clock())
            if not rows:
                break
            after = rows[-1].id
            for row in rows:
                if self._halted():
                    return taken
                taken += 1
                if row.subscriber_status != "active":
                    self._failed(row, f"not sent: subscriber is {row.subscriber_status}")
                    continue
                self.queue.put((row, self.outgoing_message(row)))
        return taken

    def _worker(self) -> None:
        try:
            with (open_mailer(self.cfg) as mailer,
                  LiveStatus(self.outbox.engine, self.owner) as live):
                if self._consume(mailer.send_raw, live):
                    return
        except Exception as exc:  # recorded here, re-raised by run()
            self._fail(exc)
        self._consume(None, None)  # this session is gone: discard until the end marker

    def _consume(self, send: SendRaw | None, live: LiveStatus | None) -> bool:
        """Send queued items, a window of up to `window` at a time, until the end marker
        (True); a failure propagates.

        The subscribers' statuses of a window are read in one query right before it goes
        out; its accepted messages are recorded in one transaction (group commit) by the
        recorder pool while the next window streams to the server, and the first message of
        that window is only let through to acceptance (the final "." of DATA) once the
        record is committed. So at most `window` accepted messages per session are ever
        unrecorded. An item counts as done for `run()` only when its record is written.
        """
        settle = PendingRecord(self.queue)
        try:
            while True:
                items, more = self._next_window(settle)
                if items:
                    window = self._send_window(send, live, items, settle)
                    settle()  # no-op unless no message of this window reached its end
                    settle.pending = window
                if not more:
                    return True
        finally:
            settle()

    def _next_window(self, settle: PendingRecord
                     ) -> tuple[list[tuple[OutboxRow, Outgoing]], bool]:
        """Up to `window` queued items, waiting only for the first (after finishing the
        pending record); False once the end marker was taken."""
        try:
            first = self.queue.get_nowait()
        except queue.Empty:
            settle()
            first = self.queue.get()
        if first is None:
            return [], False
        items = [first]
        while len(items) < self.window:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, False
            items.append(item)
        return items, True

    def _send_window(self, send: SendRaw | None, live: LiveStatus | None,
                     items: list[tuple[OutboxRow, Outgoing]], settle: PendingRecord
                     ) -> tuple[Future[None], int] | None:
        """Send a window; returns the future of its group record and how many items it
        settles (None: every item is settled already)."""
        accepted: list[tuple[int, str]] = []
        settled = 0
        try:
            statuses: dict[int, str] = {}
            if send is not None and live is not None and not self._halted():
                self.limiter.wait()  # the first message's turn: the check comes after it
                statuses = live.check_many([row.id for row, _ in items])
            for n, (row, message) in enumerate(items):
                if send is not None and not self._halted():
                    if n:
                        self.limiter.wait()
                    then = self._next_to_send(items, n + 1, statuses)
                    reply = self._send_one(send, row, message, statuses.get(row.id), settle,
                                           then)
                    if reply is not None:
                        accepted.append((row.id, reply))
                        continue
                settled += 1
                self.queue.task_done()
        except BaseException:
            try:
                if accepted:  # what the server took is recorded before the failure goes on
                    self._record_sent(accepted)
            finally:
                for _ in range(len(items) - settled):
                    self.queue.task_done()
            raise
        if not accepted:
            return None
        assert self.recorder is not None
        return self.recorder.submit(self._record_sent, accepted), len(accepted)

    def _next_to_send(self, items: list[tuple[OutboxRow, Outgoing]], n: int,
                      statuses: dict[int, str]) -> tuple[str, str] | None:
        """The envelope of the window's next message when it will be sent right after this
        one (the mailer may announce it early); never under a send rate, whose wait comes
        before each message."""
        if not self.chain or n >= len(items) or statuses.get(items[n][0].id) != "active":
            return None
        message = items[n][1]
        return message.sender, message.recipient

    def _send_one(self, send: SendRaw, row: OutboxRow, message: Outgoing, status: str | None,
                  settle: PendingRecord, then: tuple[str, str] | None = None) -> str | None:
        """Send one message; returns the server's acceptance (None: recorded already)."""
        if status != "active":  # as read right before the window: see the docstring
            self._skip(row, status)
            return None
        try:
            # Only a record still pending is waited for before the final ".": without
            # one, the mailer may send the message and its end in one write.
            return send(message.sender, message.recipient, message.parts,
                        settle if settle.pending is not None else None, then)
        except TemporaryFailure as exc:
            self._defer(row, str(exc))
        except PermanentFailure as exc:
            self._failed(row, str(exc), bounce=exc.bounce)
        except ConnectionFailure as exc:
            self._fail(exc)
        return None

    def _defer(self, row: OutboxRow, reply: str) -> None:
        """Reschedule the row on the backoff schedule, or give it up past its deadline."""
        attempts = row.attempts + 1
        now = self.clock()
        when = next_attempt(self.cfg.delivery, attempts, now, row.queued_at)
        if when is None:
            self._failed(row, f"gave up after {attempts} tries: {reply}")
        elif self.outbox.mark_retry(row.id, reply, when):
            self._count("retried")
            log.info("deferred %s (try %d) until %s: %s", row.email, attempts,
                     when.isoformat(timespec="seconds"), reply)
        else:
            self._not_pending(row.id, "retry")

    def _skip(self, row: OutboxRow, status: str | None) -> None:
        """Not sent: the subscriber's status changed since the row was read, or the row was
        settled (or erased with its subscriber) meanwhile."""
        if status is None:
            self._count("skipped")
            return
        self._failed(row, f"not sent: subscriber is {status}")
        self._count("skipped")

    def _record_sent(self, accepted: list[tuple[int, str]]) -> None:
        changed = self.sent_recorder.record(accepted, self.clock())
        for row_id, _ in accepted:
            if row_id not in changed:
                self._not_pending(row_id, "delivery")
        self._count("sent", len(changed))

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
        # recorded by someone else meanwhile: the send lock or the claim should prevent it
        log.error("outbox row %d was no longer pending when its %s was recorded", row_id, what)

    def _fail(self, exc: Exception) -> None:
        with self.tally.lock:
            if self.failure is None:
                self.failure = exc
        self.abort.set()

    def _count(self, what: str, n: int = 1) -> None:
        if not n:
            return
        with self.tally.lock:
            setattr(self.tally, what, getattr(self.tally, what) + n)
            if what in ("sent", "failed"):
                self.tally.done += n
                self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.tally.done, self.issue.total)
