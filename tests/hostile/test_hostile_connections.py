"""Abusive clients against a real server: idle floods, half requests, every connection busy.

The flood test runs `feedpub run` as a child whose soft open-file limit is 1,024 (systemd's
default) and holds 2,000 idle connections against it.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from feedpub.config import Config
from feedpub.web.security import SECURITY_HEADERS
from process_helpers import Process
from web_helpers import ARTICLES, serve

FLOOD = 2000


def _soft_limit_1024() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """Let this process hold the flood's sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(f"the hard open-file limit ({hard}) is below {FLOOD + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class _Run(Process):
    """`feedpub run --port 0` with a soft limit of 1,024 open files."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg, "run", "--host", "127.0.0.1", "--port", "0",
                         preexec_fn=_soft_limit_1024)

    def stop(self) -> None:  # type: ignore[override]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed (or reset) this connection."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def test_2000_idle_connections_do_not_keep_readers_out(make_site, many_descriptors) -> None:
    cfg = make_site(ARTICLES, extra="[web]\nheader_timeout = 4.0\n")
    run = _Run(cfg)
    idle: list[socket.socket] = []
    try:
        url = run.wait_for(r"event=listening url=(\S+)").group(1)
        limit = run.wait_for(r"event=listening .*descriptors=(\d+)").group(1)
        assert int(limit) > 1024  # raised from the soft limit to the hard one
        run.wait_for(r"event=build ")
        port = int(url.rsplit(":", 1)[1].strip("/"))
        for n in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", port))
            if n % 2:
                sock.sendall(b"GET /fe")  # half a request line, never finished
            sock.setblocking(False)
            idle.append(sock)
        time.sleep(0.5)  # let the server accept the backlog
        with httpx.Client(timeout=1.0) as client:  # a reader gets an answer, within a second
            started = time.monotonic()
            response = client.get(url + "feed.xml")
            took = time.monotonic() - started
        assert response.status_code == 200 and b"<rss" in response.content, took
        assert response.headers["x-content-type-options"] == "nosniff"
        # After header_timeout every idle connection is gone (evicted earlier, or timed out).
        deadline = time.monotonic() + 4.0 + 10.0
        open_ = list(idle)
        while open_ and time.monotonic() < deadline:
            time.sleep(0.25)
            open_ = [s for s in open_ if not _closed(s)]
        assert open_ == [], f"{len(open_)} idle connections still open"
        assert run.proc.poll() is None
        assert not any("Too many open files" in line for line in run.lines), run.lines[-20:]
    finally:
        for sock in idle:
            sock.close()
        run.stop()


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_at_the_cap_idle_ones_are_evicted_and_only_then_503(make_site) -> None:
    cfg = make_site(ARTICLES, extra="[web]\nmax_connections = 2\nheader_timeout = 30.0\n")
    busy_head = (b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    with serve(cfg) as (server, app):
        silent = _raw(server.port, b"")
        busy = _raw(server.port, busy_head)  # head sent, body pending: busy
        time.sleep(0.2)
        # At the cap: the silent one is evicted for a reader.
        reader = _raw(server.port,
                      b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(reader).startswith(b"HTTP/1.1 200 ")
        silent.settimeout(5)
        assert _read_all(silent) == b""
        # Now both slots busy: the newcomer is told to come back, not reset.
        other = _raw(server.port, busy_head)
        time.sleep(0.2)
        refused = _raw(server.port, b"")
        answer = _read_all(refused)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert b"\r\nretry-after: 5" in head
        for name, value in SECURITY_HEADERS:
            assert (name + b": " + value).lower() in head
        limits = app.connection_limits
        assert limits is not None and limits.evicted >= 1 and limits.refused == 1
        for sock in (busy, other, reader, refused, silent):
            sock.close()


def test_a_half_request_is_closed_after_header_timeout(make_site) -> None:
    cfg = make_site(ARTICLES, extra="[web]\nheader_timeout = 1.0\n")
    with serve(cfg) as (server, _):
        half = _raw(server.port, b"GET /feed.xml HTTP/1.1\r\nHost:")
        half.settimeout(10)
        started = time.monotonic()
        assert _read_all(half) == b""
        assert time.monotonic() - started < 9  # closed by the server, not by our timeout
        # A keep-alive connection that starts a second request and stalls goes the same way.
        keep = _raw(server.port, b"GET /feed.xml HTTP/1.1\r\nHost: x\r\n\r\nGET /fe")
        keep.settimeout(10)
        data = _read_all(keep)
        assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1 ") == 1


def test_the_cap_stays_under_the_descriptor_limit() -> None:
    from feedpub.web.connections import connection_cap

    assert connection_cap(1000, 1024) == 924
    assert connection_cap(1000, 100_000) == 1000
    assert connection_cap(1000, 150) == 75
    assert connection_cap(1000, 0) == 1000
