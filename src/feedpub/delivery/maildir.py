"""The zero-setup backend: each message becomes a file in a Maildir; nothing leaves the machine."""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from types import TracebackType

from ..config import Config
from ..errors import DeliveryError
from .base import ConnectionFailure, envelope, message_bytes


class MaildirMailer:
    """Writes each message into a Maildir (`[delivery] maildir`); nothing leaves the machine."""

    def __init__(self, cfg: Config) -> None:
        self.path = cfg.path(cfg.delivery.maildir)
        self._box: mailbox.Maildir | None = None

    def __enter__(self) -> MaildirMailer:
        try:
            self._box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            raise ConnectionFailure(
                f"cannot open the Maildir {self.path}: {exc} (check [delivery] maildir)"
            ) from exc
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None

    def send(self, message: EmailMessage) -> str:
        envelope(message)  # same checks as SMTP
        return self._add(message_bytes(message))

    def send_raw(self, sender: str, recipient: str, data: bytes | Sequence[bytes],
                 before_end: Callable[[], None] | None = None,
                 then: tuple[str, str] | None = None) -> str:
        if before_end is not None:
            before_end()
        return self._add(data if isinstance(data, bytes) else b"".join(data))

    def _add(self, data: bytes) -> str:
        if self._box is None:
            raise DeliveryError("the Maildir mailer is not open (use it in a with block)")
        try:
            key = self._box.add(data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise ConnectionFailure(f"cannot write to the Maildir {self.path}: {exc}") from exc
        return f"maildir {key}"
