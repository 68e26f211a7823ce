"""Where reports arrive: a Maildir folder or an IMAP mailbox over TLS, behind one Protocol.

`open_mailbox(cfg)` picks the backend from [bounces]. A backend lists messages and removes
one (deletes it, or moves it to `processed_folder`) only when `done()` is called, which the
caller does after it committed the message's result; so a crash leaves the message in place
to be read again.
"""

from __future__ import annotations

import contextlib
import mailbox
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ..config import Config, secret
from ..errors import DeliveryError

IMAP_PASSWORD_ENV = "FEEDPUB_IMAP_PASSWORD"


class Mailbox(Protocol):
    """A folder of incoming reports."""

    name: str

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(handle, raw bytes) of every message present now."""
        ...

    def done(self, handle: str) -> None:
        """Remove a handled message (delete or move); safe to repeat."""
        ...

    def close(self) -> None: ...


class MaildirBox:
    """A Maildir folder (new/ and cur/); handled messages go to a sub-folder or are deleted."""

    def __init__(self, cfg: Config) -> None:
        self.path = cfg.path(Path(cfg.bounces.maildir))
        self.name = str(self.path)
        if not (self.path / "cur").is_dir() and not (self.path / "new").is_dir():
            raise DeliveryError(f"{self.path}: not a Maildir folder (no cur/ or new/); fix "
                                "[bounces] maildir")
        self.box = mailbox.Maildir(self.path, factory=None, create=False)
        self.processed = cfg.bounces.processed_folder

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for key in sorted(self.box.iterkeys()):
            try:
                yield key, self.box.get_bytes(key)
            except KeyError:
                continue  # removed meanwhile by another reader

    def done(self, handle: str) -> None:
        try:
            if self.processed:
                target = self.box.add_folder(self.processed) if self.processed not in \
                    self.box.list_folders() else self.box.get_folder(self.processed)
                target.add(self.box.get_message(handle))
            self.box.discard(handle)
        except KeyError:
            pass  # already gone: done before a crash

    def close(self) -> None:
        self.box.close()


class ImapBox:
    """An IMAP mailbox over TLS (imapclient); the password comes from FEEDPUB_IMAP_PASSWORD."""

    def __init__(self, cfg: Config) -> None:
        from imapclient import IMAPClient

        url = urlsplit(cfg.bounces.imap_url)
        host, port = url.hostname or "", url.port or 993
        self.folder = unquote(url.path.lstrip("/")) or "INBOX"
        self.name = f"imaps://{host}:{port}/{self.folder}"
        self.processed = cfg.bounces.processed_folder
        password = secret(IMAP_PASSWORD_ENV)
        if password is None:
            raise DeliveryError(f"{self.name}: set {IMAP_PASSWORD_ENV} to the password of "
                                f"{unquote(url.username or '')!r} ([bounces] imap_url)")
        context = ssl.create_default_context(
            cafile=cfg.path(Path(cfg.bounces.imap_ca_file)) if cfg.bounces.imap_ca_file
            else None)
        try:
            self.client = IMAPClient(host, port=port, ssl=True, ssl_context=context, timeout=30)
            self.client.login(unquote(url.username or ""), password)
            self.client.select_folder(self.folder)
            if self.processed and not self.client.folder_exists(self.processed):
                self.client.create_folder(self.processed)
        except Exception as exc:
            raise DeliveryError(f"{self.name}: cannot read the bounce mailbox: {exc} (check "
                                f"[bounces] imap_url, imap_ca_file and {IMAP_PASSWORD_ENV})") \
                from exc

    def messages(self) -> Iterator[tuple[str, bytes]]:
        uids = self.client.search(["NOT", "DELETED"])
        for start in range(0, len(uids), 100):
            batch = uids[start:start + 100]
            fetched = self.client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                data = fetched.get(uid, {}).get(b"BODY[]")
                if isinstance(data, bytes):
                    yield str(uid), data

    def done(self, handle: str) -> None:
        uid = int(handle)
        if self.processed and self.client.has_capability("MOVE"):
            self.client.move([uid], self.processed)
            return
        if self.processed:
            self.client.copy([uid], self.processed)
        self.client.delete_messages([uid])
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge([uid])
        else:
            self.client.expunge()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.client.logout()


BACKENDS: dict[str, Callable[[Config], Mailbox]] = {"maildir": MaildirBox, "imap": ImapBox}


def mailbox_kind(cfg: Config) -> str | None:
    """Which backend [bounces] configures; None when no mailbox is set."""
    chosen = {"imap": bool(cfg.bounces.imap_url), "maildir": bool(cfg.bounces.maildir)}
    return next((kind for kind, on in chosen.items() if on), None)


class _Opened(AbstractContextManager["Mailbox"]):
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    def __enter__(self) -> Mailbox:
        return self.box

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.box.close()


def open_mailbox(cfg: Config) -> AbstractContextManager[Mailbox]:
    kind = mailbox_kind(cfg)
    if kind is None:
        raise DeliveryError("no bounce mailbox is configured; set [bounces] maildir or "
                            "imap_url in config.toml")
    return _Opened(BACKENDS[kind](cfg))
