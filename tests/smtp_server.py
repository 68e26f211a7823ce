"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, an ephemeral port, scripted replies.

Import the fixtures in a test module (`from smtp_server import smtp_server, tls_smtp_server`)
or use `SmtpServer` directly. The handler records every accepted message as received on the
wire and can be told to answer 421/451/550 for chosen recipients, to drop the connection at
the n-th DATA, or to slow each DATA down.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "mailer", "s3cret-pass"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # exactly the bytes of the DATA phase (dot-unstuffed)

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Handler:
    """Records accepted messages; `rcpt_replies[address]` is a list of replies to give to
    RCPT for that address, one per attempt (the last one repeats), `data_replies[address]`
    the same for the end of DATA; `drop_at` closes the connection instead of answering the
    n-th DATA (1-based, counted over the server's life). `rcpt_times` records when each
    RCPT for an address arrived. `on_rcpt(address)` runs before each RCPT is answered.
    `gate`, when given, holds every DATA answer until it is set; `data_waiting` is set as
    soon as one DATA waits there. `pipelining` False: PIPELINING is not advertised."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    rcpt_times: dict[str, list[float]] = field(default_factory=dict)  # time.monotonic()
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    data_attempts: dict[str, int] = field(default_factory=dict)
    drop_at: set[int] = field(default_factory=set)
    data_delay: float = 0.0
    data_count: int = 0
    sessions: int = 0
    on_rcpt: Callable[[str], None] | None = None
    pipelining: bool = True  # advertise PIPELINING (RFC 2920) as most servers do
    gate: threading.Event | None = None
    data_waiting: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        if self.pipelining:  # aiosmtpd reads pipelined commands but does not advertise it
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self.lock:
            attempt = self.rcpt_attempts.get(address, 0)
            self.rcpt_attempts[address] = attempt + 1
            self.rcpt_times.setdefault(address, []).append(time.monotonic())
            replies = self.rcpt_replies.get(address)
        if self.on_rcpt is not None:
            self.on_rcpt(address)
        if replies:
            reply = replies[min(attempt, len(replies) - 1)]
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.gate is not None:
            self.data_waiting.set()
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.data_count += 1
            drop = self.data_count in self.drop_at
        if drop:
            server.transport.close()
            return "421 closing"
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        with self.lock:
            attempt = self.data_attempts.get(rcpt, 0)
            self.data_attempts[rcpt] = attempt + 1
            replies = self.data_replies.get(rcpt)
        if replies:
            reply = replies[min(attempt, len(replies) - 1)]
            if not reply.startswith("250"):
                return reply
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content)))
        return "250 2.0.0 Ok: queued"

    def copies(self) -> dict[str, int]:
        """How many accepted messages each recipient got."""
        counts: dict[str, int] = {}
        with self.lock:
            for item in self.received:
                for rcpt in item.rcpt_tos:
                    counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """A running aiosmtpd controller plus the config snippet that points feedpub at it."""

    def __init__(self, handler: Handler | None = None, **smtp_kwargs: Any) -> None:
        self.handler = handler or Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     **smtp_kwargs)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def config(self, security: str = "none", extra: str = "") -> str:
        return (f'\n[delivery]\nbackend = "smtp"\nretry_first = 0.05\n\n[delivery.smtp]\n'
                f'host = "127.0.0.1"\nport = {self.port}\nsecurity = "{security}"\n'
                f"timeout = 10.0\n{extra}\n")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no auth) with a recording handler."""
    with SmtpServer() as server:
        yield server


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@dataclass
class TlsServer:
    server: SmtpServer
    ca_file: Path


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[TlsServer]:
    """STARTTLS required, AUTH only over TLS, certificate from a private test CA."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with SmtpServer(tls_context=context, require_starttls=True, auth_require_tls=True,
                    auth_required=True, authenticator=_authenticator) as server:
        yield TlsServer(server, ca_file)


def greylisting(address: str, times: int, reply: str = "451 4.7.1 greylisted, try later",
                ) -> Handler:
    """A handler that answers `reply` to RCPT for `address` on its first `times` attempts
    (forever when `times` is 0), then accepts it like any other recipient."""
    return Handler(rcpt_replies={address: [reply] * times + ["250"] if times else [reply]})
