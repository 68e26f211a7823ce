"""Digest emails as bytes: headers and MIME structure built once per issue, filled per subscriber.

`MessageTemplate.render()` is the one implementation of the message format: it returns the
exact bytes handed to the server (CRLF line ends, quoted-printable UTF-8 parts, headers folded
under 78 columns and never over 998 octets). `build_message()` parses those same bytes into an
`EmailMessage` for callers that want an object. Both are pure (no I/O).
"""

from __future__ import annotations

import binascii
import email
import email.policy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, quote
from typing import cast

from ..config import Config
from .addresses import ascii_address
from .model import Digest
from .personalize import Personalizer, clean_header_text, fill_issue, subscriber_values

CRLF = b"\r\n"
_POLICY = email.policy.SMTP
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")


def _fold(name: str, value: str) -> bytes:
    """One header, folded and RFC 2047-encoded as needed (value must be a single line)."""
    text = clean_header_text(value)
    folded = _POLICY.header_factory(name, text).fold(policy=_POLICY)
    return (_encoded(name, text) if "=?" in folded else folded).encode("ascii")


def _encoded(name: str, text: str, after: str = "") -> str:
    """`name: text` as whole UTF-8 encoded-words, each holding its own spaces, folded
    between them; then `after` (" <address>"), on a line of its own if it would not fit.

    The email package's folder, given text that needs encoded-words, may split it into
    encoded-words where the space between them is the text's own, or keep a space at the end
    of a line and start the next with another; RFC 2047 readers (mail programs, and the
    package's own parser) ignore a space between two encoded-words, and keep both of the
    others: "Quay 🌙" read back as "Quay  🌙", "Ünïcödé News" as "ÜnïcödéNews".
    """
    words = Header(text, "utf-8", header_name=name).encode(linesep="\r\n")
    last = f"{name}: {words}".rsplit("\r\n", 1)[-1]
    fold = "\r\n" if after and len(last) + len(after) > 78 else ""
    return f"{name}: {words}{fold}{after}\r\n"


def _fold_address(name: str, display_name: str, address: str) -> bytes:
    """An address header; the display name is quoted or RFC 2047-encoded as needed.

    An internationalized domain is written in its ASCII (IDNA) form, as in the envelope:
    RFC 2047 encoded-words are not allowed inside an address. A name in ASCII is written as
    it is, or as a quoted string when it holds a special character (not encoded: spam
    filters mark a From name encoded without need; only a name too long for one line is),
    and the address goes on a line of its own when both do not fit on one.
    """
    display_name = clean_header_text(display_name)
    address = ascii_address(address)
    if not display_name and address.isascii():
        return f"{name}: {address}\r\n".encode("ascii")
    if address.isascii() and display_name.isascii():
        phrase = (display_name if _PLAIN_NAME.fullmatch(display_name) and "=?" not in display_name
                  else f'"{quote(display_name)}"')
        line = f"{name}: {phrase} <{address}>"
        if len(line) <= 78:
            return line.encode("ascii") + CRLF
        if len(line) <= 990:
            return f"{name}: {phrase}\r\n <{address}>\r\n".encode("ascii")
    if address.isascii():
        return _encoded(name, display_name, f" <{address}>").encode("ascii")
    username, _, domain = address.rpartition("@")
    value = Address(display_name=display_name, username=username, domain=domain)
    return _POLICY.header_factory(name, value).fold(policy=_POLICY).encode("ascii")


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8, CRLF line ends, lines of at most 76 characters.

    Encodes a piece that starts at column 0; it may end anywhere (callers follow it with a
    soft line break). binascii picks LF for soft breaks when the piece has no line end of its
    own, so line ends are normalized afterwards (the output holds no other CR or LF).
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    encoded = binascii.b2a_qp(normalized.encode("utf-8"), quotetabs=False, istext=True,
                              header=False)
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # The caller adds a soft break ("=") after the last line: leave room for it.
    head, _, last = encoded.rpartition(b"\r\n")
    if len(last) <= 75:
        return encoded
    cut = 75
    if last[cut - 1:cut] == b"=":  # never split an =XX escape
        cut -= 1
    elif last[cut - 2:cut - 1] == b"=":
        cut -= 2
    return (head + b"\r\n" if head else b"") + last[:cut] + SOFT_BREAK + last[cut:]


SOFT_BREAK = b"=\r\n"  # a quoted-printable line break that decodes to nothing
ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


class EncodedBody:
    """A body part encoded once; per recipient only the short values are encoded.

    Every value is framed by soft line breaks, so each encoded static piece starts at column
    0 exactly as when it was encoded, and the decoded text equals the filled-in body.
    """

    def __init__(self, body: str, *, escape: bool) -> None:
        self.split = Personalizer(body, escape=escape)
        pieces = list(self.split.static)
        if not pieces[-1].endswith(("\n", "\r")):
            pieces[-1] += "\n"  # the part must end with a line break before the boundary
        self.encoded = [_qp(piece) for piece in pieces]

    def fill(self, values: Mapping[str, str]) -> bytes:
        return b"".join(self.parts(values))

    def parts(self, values: Mapping[str, str]) -> list[bytes]:
        """The encoded part as fragments: the static ones are the same objects for every
        recipient (a signer may canonicalise them once), each starting at column 0."""
        out = [self.encoded[0]]
        for key, piece in zip(self.split.keys, self.encoded[1:], strict=True):
            out += (SOFT_BREAK, _qp(self.split.value(values, key)), SOFT_BREAK, piece)
        return out

    def text(self, values: Mapping[str, str]) -> str:
        """The filled-in body as text (what a reader sees after decoding)."""
        return self.split.fill(values)


def sender_address(cfg: Config) -> str:
    """The From address, as "Name <address>"."""
    return formataddr((cfg.digest.from_name or cfg.site.title, cfg.digest.from_address),
                      charset="utf-8")


def list_id(cfg: Config, cadence: str) -> str:
    return f"{clean_header_text(cfg.site.title)} <{cadence}.{cfg.site.domain}>"


@dataclass(frozen=True)
class Recipient:
    """Who one copy goes to, and their personal links."""

    subscriber_id: int
    email: str
    name: str | None
    unsubscribe_url: str
    preferences_url: str


class MessageTemplate:
    """A digest variant turned into a message skeleton; `render()` fills one recipient in."""

    def __init__(self, cfg: Config, digest: Digest, *, issue_id: int, date: datetime) -> None:
        self.domain = cfg.site.domain
        self.issue_id = issue_id
        self.stamp = int(date.timestamp())
        self.envelope_from = cfg.digest.from_address
        seed = f"{issue_id}:{self.stamp}:{digest.subject}".encode()
        # "==" never occurs in quoted-printable text, so the boundary cannot clash with a body.
        self.boundary = "==fp_" + hashlib.sha256(seed).hexdigest()[:20] + "=="
        self.head = b"".join([
            _fold("From", sender_address(cfg)),
            _fold("Subject", digest.subject),
            _fold("Date", format_datetime(date)),
            _fold("List-Id", list_id(cfg, digest.cadence)),
        ])
        self.mailto = f"mailto:{cfg.digest.from_address}?subject=unsubscribe"
        self.mime_head = (
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative; boundary="' + self.boundary.encode() + b'"\r\n'
            b"\r\n"
        )
        part = (b"Content-Type: text/%s; charset=\"utf-8\"\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        delimiter = b"--" + self.boundary.encode()
        self.text_head = delimiter + CRLF + part % b"plain"
        self.html_head = delimiter + CRLF + part % b"html"
        self.tail = delimiter + b"--" + CRLF
        self.text = EncodedBody(fill_issue(digest.text, issue_id), escape=False)
        self.html = EncodedBody(fill_issue(digest.html, issue_id), escape=True)

    def message_id(self, subscriber_id: int) -> str:
        """Stable per (issue, subscriber): a repeated copy carries the same Message-ID."""
        return f"<feedpub.{self.issue_id}.{subscriber_id}.{self.stamp}@{self.domain}>"

    def render(self, to: Recipient) -> bytes:
        """The complete message for one recipient, ready for SMTP DATA."""
        head, body = self.render_parts(to)
        return head + b"".join(body)

    def render_parts(self, to: Recipient) -> tuple[bytes, list[bytes]]:
        """The message as its header block (ending with the empty line) and its body as
        fragments, the static ones shared by every recipient (see `EncodedBody.parts`)."""
        values = subscriber_values(to.name, to.unsubscribe_url, to.preferences_url)
        name = clean_header_text(to.name) if to.name else ""
        unsubscribe = clean_header_text(to.unsubscribe_url)
        head = b"".join([
            self.head,
            _fold_address("To", name, to.email),
            b"Message-ID: " + self.message_id(to.subscriber_id).encode("ascii") + CRLF,
            b"List-Unsubscribe: <" + unsubscribe.encode("ascii") + b">,\r\n <"
            + self.mailto.encode("ascii") + b">\r\n",
            # RFC 8058 3.1: one-click only when the unsubscribe URI is https.
            ONE_CLICK if unsubscribe.lower().startswith("https://") else b"",
            self.mime_head,
        ])
        return head, [self.text_head, *self.text.parts(values), self.html_head,
                      *self.html.parts(values), self.tail]


def build_message(cfg: Config, digest: Digest, to: Recipient, *, issue_id: int,
                  date: datetime) -> EmailMessage:
    """The digest message for one recipient as an EmailMessage (same bytes as on the wire)."""
    data = MessageTemplate(cfg, digest, issue_id=issue_id, date=date).render(to)
    return cast(EmailMessage, email.message_from_bytes(data, policy=email.policy.default))
