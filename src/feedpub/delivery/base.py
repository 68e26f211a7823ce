"""What every delivery backend shares: the `Mailer` protocol and the failure classes.

Backends (`maildir`, `smtp`) implement the small `Mailer` protocol and are chosen by
`[delivery] backend` from the registry in `registry`. A mailer is a context manager:
connections open on enter, close on exit. Failures are classified so the sender knows what
to do next:

* `TemporaryFailure` (4xx, connection dropped mid-message): retry this message later;
* `PermanentFailure` (5xx for this message): give up on it, go on with others; a hard
  bounce only when the reply says the address is bad;
* `ConnectionFailure` (server unreachable, TLS or login refused): stop, resume next run.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses, parseaddr
from types import TracebackType
from typing import Protocol

from ..errors import DeliveryError


class TemporaryFailure(DeliveryError):
    """The server deferred this message (4xx) or the connection broke; try again later."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class PermanentFailure(DeliveryError):
    """The server refused this message for good (5xx).

    `bounce` is True only when the refusal says the recipient's address is bad (a hard
    bounce, see `is_recipient_failure`): only those count towards `bounce_limit`. A refusal
    about our server or the message (e.g. `550 5.7.1 client host blocked` at RCPT, `552 5.2.3`
    too large, `554 5.7.1` at DATA) fails the message but says nothing about the subscriber.
    """

    def __init__(self, message: str, code: int = 0, *, bounce: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.bounce = bounce


_ENHANCED_STATUS = re.compile(r"(\d)\.(\d{1,3})\.(\d{1,3})\b")  # RFC 3463, leading the text
_SENDER_ADDRESS = frozenset({"1.7", "1.8"})  # 5.1.7 / 5.1.8 are about *our* sender address
# 5.2.1 mailbox disabled; 5.2.2 mailbox full: counted too, because only consecutive bounces
# add up and a mailbox that stays full over `bounce_limit` issues is almost always abandoned.
_MAILBOX_GONE = frozenset({"2.1", "2.2"})
_BARE_RCPT_BOUNCES = frozenset({550, 551, 553})  # no such user / not local / bad mailbox name


def is_recipient_failure(command: str, code: int, reply: str) -> bool:
    """True when a 5xx reply says the recipient's address is bad (a hard bounce).

    With an enhanced status code: 5.1.x (bad address; not 5.1.7/5.1.8, which are about the
    sender), 5.2.1 (mailbox disabled) or 5.2.2 (mailbox full), at any stage. Without one: a
    bare 550, 551 or 553 answer to RCPT. Everything else (policy blocks 5.7.x, message too
    large 5.2.3, other codes) fails the message without counting against the subscriber.
    """
    if not 500 <= code < 600:
        return False
    found = _ENHANCED_STATUS.match(reply.strip())
    if found is None:
        return command == "RCPT" and code in _BARE_RCPT_BOUNCES
    klass, subject, detail = found.groups()
    status = f"{subject}.{detail}"
    if klass != "5":
        return False
    if subject == "1":
        return status not in _SENDER_ADDRESS
    return status in _MAILBOX_GONE


class ConnectionFailure(DeliveryError):
    """No message can go out now: server unreachable, TLS failed or login refused."""


class Mailer(Protocol):
    """Hands finished messages on. Opens connection(s) on enter, closes them on exit."""

    def __enter__(self) -> Mailer: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def send(self, message: EmailMessage) -> str:
        """Send a message to its To addresses; returns the server's reply or the Maildir key."""
        ...

    def send_raw(self, sender: str, recipient: str, data: bytes | Sequence[bytes],
                 before_end: Callable[[], None] | None = None,
                 then: tuple[str, str] | None = None) -> str:
        """Send ready-made CRLF message bytes to one recipient (the digest fast path).

        `data` may also be the message as fragments that join into those bytes; a fragment
        every copy shares is the same object in each, so a backend may prepare it once.
        `before_end` runs before the point where the message becomes accepted (SMTP: before
        the final "."); the sender waits there for the previous message's record.
        `then` is the envelope (sender, recipient) of the message the caller sends next on
        this mailer, which a backend may announce early (SMTP: its commands travel with
        this message's final "."). A call for any other message drops what was announced.
        """
        ...


def message_bytes(message: EmailMessage) -> bytes:
    """Serialize for the wire: CRLF line ends, headers folded, 7-bit safe."""
    return message.as_bytes(policy=SMTP)


def envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """Envelope sender and recipients of a message (From and To/Cc headers)."""
    sender = parseaddr(str(message.get("From", "")))[1]
    recipients = [addr for _, addr in getaddresses(
        [str(v) for v in message.get_all("To", []) + message.get_all("Cc", [])]) if addr]
    if not sender or not recipients:
        raise DeliveryError("a message needs a From and at least one To address")
    return sender, recipients


class RateLimiter:
    """Spaces sends evenly to at most `rate` per second over all threads (0 = unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)
