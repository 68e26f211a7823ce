"""The registry of delivery backends, chosen by `[delivery] backend`.

Each backend is imported only when it is opened, so a site that mails through a Maildir never
loads the SMTP stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import ConfigError

if TYPE_CHECKING:  # the protocol only: checking a backend's name must not load the email stack
    from .base import Mailer


def _maildir_mailer(cfg: Config) -> Mailer:
    from .maildir import MaildirMailer

    return MaildirMailer(cfg)


def _smtp_mailer(cfg: Config) -> Mailer:
    from .smtp import SmtpMailer

    return SmtpMailer(cfg)


MAILERS: dict[str, Callable[[Config], Mailer]] = {
    "maildir": _maildir_mailer,
    "smtp": _smtp_mailer,
}


# How many sessions a backend may run side by side (a Maildir needs only one writer).
SESSIONS: dict[str, Callable[[Config], int]] = {
    "maildir": lambda cfg: 1,
    "smtp": lambda cfg: max(1, cfg.delivery.smtp.connections),
}


def sessions(cfg: Config) -> int:
    """Parallel sessions to open for the configured backend."""
    return SESSIONS.get(cfg.delivery.backend, lambda _: 1)(cfg)


def open_mailer(cfg: Config) -> Mailer:
    """The mailer named by `[delivery] backend` (not yet connected: use it in `with`)."""
    factory = MAILERS.get(cfg.delivery.backend)
    if factory is None:
        raise ConfigError(
            f"delivery.backend = {cfg.delivery.backend!r} is not a known backend "
            f"(use one of: {', '.join(sorted(MAILERS))})"
        )
    return factory(cfg)
