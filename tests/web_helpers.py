"""Helpers for the web tests: a real uvicorn server in a thread, raw HTTP, a sample site."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from feedpub.config import Config
from feedpub.daemon.run import bind
from feedpub.jobs.publish import build_feeds
from feedpub.web.app import FeedpubApp, create_app, server_options

ARTICLES = {
    "2026-01-05-second.txt": """
        date 2026-01-05 Second post

        By: Ann Author

        Tags: Python, Web

        The second post talks about the web.
        """,
    "2026-01-02-first.txt": """
        date 2026-01-02 First post

        By: Ann Author

        Tags: Python

        The very first post.
        """,
}


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<ephemeral> in a background thread."""

    def __init__(self, app: Any, sock: socket.socket | None = None) -> None:
        self.app = app
        self.sock = sock or bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        # As `feedpub run` configures it (the 304 short path, proxy headers in the app).
        options = (server_options(app) if isinstance(app, FeedpubApp)
                   else {"log_config": None, "access_log": False})
        config = uvicorn.Config(app, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextmanager
def serve(cfg: Config, build: bool = True) -> Iterator[tuple[ServerThread, FeedpubApp]]:
    """Build the site (optionally) and serve it; yields (server, app)."""
    if build:
        build_feeds(cfg)
    app = create_app(cfg)
    server = ServerThread(app).start()
    try:
        yield server, app
    finally:
        server.stop()


def raw_request(port: int, target: str, method: str = "GET",
                headers: dict[str, str] | list[tuple[str, str]] | None = None,
                ) -> tuple[int, dict[str, str], bytes]:
    """Send the request line and headers exactly as given (no client-side path normalization,
    no Accept-Encoding unless asked; a list of pairs may repeat a header)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in pairs]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


class SmtpCatcher:
    """The shared aiosmtpd test server (tests/smtp_server.py), with parsed messages."""

    def __init__(self, delay: float = 0.0) -> None:
        from smtp_server import Handler, SmtpServer

        self.server = SmtpServer(Handler(data_delay=delay))
        self.port = self.server.port

    def start(self) -> SmtpCatcher:
        self.server.__enter__()
        return self

    def stop(self) -> None:
        self.server.__exit__()

    @property
    def messages(self) -> list[Any]:
        return [item.message() for item in list(self.server.handler.received)]

    def config(self) -> str:
        """The [delivery] config text pointing at this server."""
        return self.server.config()

    def wait(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.server.handler.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def link_in(message: Any, purpose: str) -> str:
    """The first `<base>purpose?token=…` link in a message's text."""
    import re

    body = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(rf"https?://\S+/{purpose}\?token=\S+", body)
    assert found, body
    return found.group(0)
