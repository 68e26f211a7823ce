"""uvicorn's HTTP protocol with a short path for the commonest request of a feed server.

Feed readers poll with `If-None-Match` / `If-Modified-Since`, and most polls end in 304 Not
Modified. Answering one through ASGI costs a task, a scope and two messages per request; here
the protocol asks the app's static handler (`StaticFiles.not_modified`, the same rules the ASGI
path applies) as soon as the request head is parsed and, when the client's copy is current,
writes the 304 itself. Everything else (other methods, bodies, percent-encoded paths,
pipelined or non-keep-alive requests, a 200) goes through uvicorn and the ASGI app unchanged.

uvicorn takes the protocol class as `uvicorn.Config(http=...)`. The short path relies on a
few attributes of uvicorn's httptools protocol (`cycle`, `pipeline`, `flow`, `parser`, `url`,
`headers`, `on_response_complete`); `protocol_class()` falls back to uvicorn's own choice when
they are missing, so a change in uvicorn costs speed, never correctness.
"""

from __future__ import annotations

import logging
from typing import Any

from .static import StaticFiles

log = logging.getLogger("feedpub.web")

_STATUS_304 = b"HTTP/1.1 304 Not Modified\r\n"
_METHODS = ("on_headers_complete", "on_response_complete", "_unset_keepalive_if_required")


def protocol_class(static: StaticFiles) -> Any:
    """The HTTP protocol for `uvicorn.Config(http=...)`: httptools with the 304 short path,
    or "auto" (uvicorn's default) when httptools or the expected protocol is unavailable."""
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"
    if not all(hasattr(HttpToolsProtocol, name) for name in _METHODS):
        return "auto"

    class NotModifiedProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """HttpToolsProtocol that writes fresh-cache 304s without an ASGI round trip."""

        def on_headers_complete(self) -> None:
            # A 304 written here re-arms the keep-alive timer at once; a pipelined request
            # parsed after it (same packet) must not run under that timer.
            self._unset_keepalive_if_required()
            if not self._answer_not_modified():
                super().on_headers_complete()

        def _answer_not_modified(self) -> bool:
            try:
                response = self._short_path()
            except Exception:  # noqa: BLE001 - never worse than the normal path
                log.debug("304 short path declined", exc_info=True)
                return False
            if response is None:
                return False
            self.transport.write(response)
            # The request is complete: the parser's on_message_complete sees the previous,
            # finished cycle and does nothing; this arms keep-alive as after any response.
            self.on_response_complete()
            return True

        def _short_path(self) -> bytes | None:
            """The bytes of a 304 for the request just parsed, or None to let uvicorn and
            the app answer it."""
            parser = self.parser
            cycle = self.cycle
            # Only between responses on a persistent HTTP/1.1 connection (so the request
            # after this one finds the state uvicorn expects), for bodiless GET/HEAD.
            if (cycle is None or not cycle.response_complete or self.pipeline
                    or self.flow.write_paused or parser.get_http_version() != "1.1"
                    or not parser.should_keep_alive() or parser.should_upgrade()
                    or parser.get_method() not in (b"GET", b"HEAD")):
                return None
            headers = self.headers
            conditional = False
            for name, _ in headers:
                if name in (b"content-length", b"transfer-encoding", b"expect"):
                    return None
                if name in (b"if-none-match", b"if-modified-since"):
                    conditional = True
            if not conditional:  # a plain GET is answered with the body: the ASGI path
                return None
            path = httptools.parse_url(self.url).path
            if b"%" in path or self.root_path:
                return None
            answer = static.not_modified(path.decode("ascii"), headers)
            if answer is None:
                return None
            lines = [_STATUS_304]
            for name, value in (*self.server_state.default_headers, *answer):
                lines += (name, b": ", value, b"\r\n")
            lines.append(b"\r\n")
            return b"".join(lines)

    return NotModifiedProtocol

