"""Connection limits for uvicorn's HTTP protocol: silent clients cannot starve readers.

A connection that opens and sends nothing, or half a request line, holds a file descriptor
for as long as the client likes; a thousand of them exhaust systemd's default limit and every
reader then gets an empty reply. Here:

- a connection must send a complete request head within `[web] header_timeout` seconds of
  opening (or of its last response, on a keep-alive connection), or it is closed;
- at most `[web] max_connections` are open at once (kept under the descriptor limit, which
  `raise_descriptor_limit` lifts to the hard limit at start). At the cap, a new connection
  evicts the oldest one still waiting for a request head (a silent client, an idle
  keep-alive), so readers keep getting answers during a flood; only when every connection is
  busy with a request is the newcomer answered 503 with `Retry-After`, never reset.

uvicorn's own 400 answer to a malformed request gets the security headers here too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .security import SECURITY_HEADERS

log = logging.getLogger("feedpub.web")

RESERVED_DESCRIPTORS = 100  # kept free for the database, logs, article reads, SMTP
RETRY_AFTER = 5  # seconds, in the 503 answered when every connection is busy


def raise_descriptor_limit() -> int:
    """Lift the soft limit on open files to the hard limit; return the soft limit now in
    force (0 where the platform has no such limit)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a Unix
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %d to %d", soft, hard)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(max_connections: int, descriptors: int) -> int:
    """`max_connections`, lowered to stay under the descriptor limit (0: no limit known)."""
    if descriptors <= 0:
        return max_connections
    room = descriptors - RESERVED_DESCRIPTORS if descriptors > 2 * RESERVED_DESCRIPTORS \
        else descriptors // 2
    return max(1, min(max_connections, room))


class ConnectionLimits:
    """The open connections of one server, and those still waiting for a request head
    (in the order they started waiting: the first is the one to evict)."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.waiting: dict[Any, None] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def oldest_waiting(self) -> Any | None:
        return next(iter(self.waiting), None)


def _busy_response() -> bytes:
    body = b"Too many connections; please retry shortly.\n"
    head = [b"HTTP/1.1 503 Service Unavailable",
            b"content-type: text/plain; charset=utf-8",
            b"content-length: " + str(len(body)).encode(),
            b"retry-after: " + str(RETRY_AFTER).encode(),
            b"cache-control: no-store", b"connection: close",
            *(name + b": " + value for name, value in SECURITY_HEADERS)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


_BUSY = _busy_response()


def limited_protocol(base: Any, limits: ConnectionLimits) -> Any:
    """`base` (uvicorn's httptools protocol or a subclass) with the limits above. Returns
    `base` unchanged when it is not a class (uvicorn's "auto": no httptools)."""
    if not isinstance(base, type):
        log.warning("connection limits need httptools; serving without them")
        return base

    class LimitedProtocol(base):  # type: ignore[misc, valid-type]
        _limits = limits
        _counted = False
        _refused = False
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            lim = self._limits
            if lim.open >= lim.max_connections:
                victim = lim.oldest_waiting()
                if victim is None:
                    self._refused = True
                    lim.refused += 1
                    transport.write(_BUSY)
                    transport.close()
                    return
                victim._evict()
            lim.open += 1
            self._counted = True
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._release()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._refused:
                super().data_received(data)

        def on_headers_complete(self) -> None:
            self._head_arrived()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            cycle = self.cycle
            if not self.transport.is_closing() and (cycle is None or cycle.response_complete):
                self._await_head()

        def send_400_response(self, msg: str) -> None:
            body = msg.encode("ascii", "replace")
            head = [b"HTTP/1.1 400 Bad Request",
                    *(name + b": " + value for name, value in self.server_state.default_headers),
                    *(name + b": " + value for name, value in SECURITY_HEADERS),
                    b"content-type: text/plain; charset=utf-8",
                    b"content-length: " + str(len(body)).encode(), b"connection: close"]
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            self.transport.close()

        # -- the waiting list ---------------------------------------------------------------

        def _await_head(self) -> None:
            lim = self._limits
            lim.waiting.pop(self, None)
            lim.waiting[self] = None  # to the end: the newest waiter
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(lim.header_timeout, self._head_timeout)

        def _head_arrived(self) -> None:
            self._limits.waiting.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self in self._limits.waiting:
                self._limits.timed_out += 1
                self._release()
                self.transport.abort()

        def _evict(self) -> None:
            self._limits.evicted += 1
            self._release()
            self.transport.abort()

        def _release(self) -> None:
            """Stop counting this connection (once), whatever ends it."""
            self._head_arrived()
            if self._counted:
                self._counted = False
                self._limits.open -= 1

    return LimitedProtocol
