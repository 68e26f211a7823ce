"""The local outbox: the messages the maildir backend wrote, listed and decoded for reading.

`feedpub outbox` and the `/_outbox/` pages of `feedpub run --dev` read the Maildir through
this module. Messages are numbered from 1, oldest first, so a number stays the same while new
messages arrive. Bodies are decoded (quoted-printable, base64, charsets), so links are whole.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..config import Config
from ..errors import FeedpubError

_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


@dataclass(frozen=True)
class OutboxEntry:
    """One message of the outbox: its number, file and main headers."""

    number: int
    path: Path
    date: datetime | None
    to: str
    subject: str


@dataclass(frozen=True)
class DecodedMessage:
    """A message with its bodies decoded and the links found in them."""

    entry: OutboxEntry
    headers: list[tuple[str, str]]
    text: str
    html: str
    links: list[str]


def maildir_path(cfg: Config) -> Path:
    return cfg.path(cfg.delivery.maildir)


def _files(folder: Path) -> list[Path]:
    found = [p for sub in ("new", "cur") if (folder / sub).is_dir()
             for p in (folder / sub).iterdir() if p.is_file() and not p.name.startswith(".")]
    # Maildir names start with the delivery time in seconds; the name breaks ties.
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name.split(":")[0]))


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _entry(number: int, path: Path, message: EmailMessage) -> OutboxEntry:
    try:
        when = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        when = None
    if when is None:
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return OutboxEntry(number, path, when, str(message["To"] or ""),
                       str(message["Subject"] or ""))


def list_outbox(cfg: Config) -> list[OutboxEntry]:
    """Every message in the outbox, oldest first (numbered from 1)."""
    return [_entry(n, path, _parse(path)) for n, path in enumerate(_files(maildir_path(cfg)), 1)]


def read_message(cfg: Config, number: int) -> DecodedMessage:
    """Message `number` (as `list_outbox` numbers them), decoded."""
    files = _files(maildir_path(cfg))
    if not 1 <= number <= len(files):
        where = maildir_path(cfg)
        raise FeedpubError(
            f"no message {number} in the outbox {where} ({len(files)} message(s); "
            "see `feedpub outbox list`)" if files else
            f"the outbox {where} is empty (the maildir backend writes there when mail is sent)")
    path = files[number - 1]
    message = _parse(path)
    text = html = ""
    plain_part = message.get_body(("plain",))
    if plain_part is not None:
        text = str(plain_part.get_content())  # type: ignore[attr-defined]
    html_part = message.get_body(("html",))
    if html_part is not None:
        html = str(html_part.get_content())  # type: ignore[attr-defined]
    links = list(dict.fromkeys(_LINK.findall(text) + _LINK.findall(html.replace("&amp;", "&"))))
    headers = [(k, str(v)) for k, v in message.items()
               if k.lower() in ("date", "from", "to", "subject", "list-unsubscribe",
                                "message-id")]
    return DecodedMessage(_entry(number, path, message), headers, text, html, links)
