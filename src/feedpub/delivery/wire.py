"""The DATA stream of an SMTP transaction: a message's fragments, dot-stuffed, on the socket.

A digest copy comes as fragments (`Envelope.seal_parts`): a short per-recipient header
block and value, and long static fragments that are the same objects for every copy of an
issue. Dot-stuffing (RFC 5321 4.5.2: a line that starts with "." gets another one) is done
once per static fragment and kept (`Stuffer`), so per copy only the short fragments are
scanned; the fragments then go out in one `sendmsg` call, without first being joined into
one 80 KB buffer. Over TLS, where the socket has no `sendmsg`, they are joined.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Sequence

END = b".\r\n"  # the line that ends DATA
CACHED = 2048  # fragments at least this long are stuffed once and kept
KEPT = 256  # at most this many stuffed fragments are kept (a send uses a few dozen)
BATCH = 512  # buffers per sendmsg call, well under the usual IOV_MAX of 1024


def dot_stuff(data: bytes) -> bytes:
    """CRLF message bytes as DATA carries them: a line starting with "." gets another one
    (RFC 5321 4.5.2), and the last line ends with CRLF. Two bytes.replace passes instead of
    a multiline regex, which costs about 20 times more on an 80 KB message."""
    body = data.replace(b"\n.", b"\n..")
    if body.startswith(b"."):
        body = b"." + body
    return body if body.endswith(b"\r\n") else body + b"\r\n"


class Stuffer:
    """Dot-stuffs messages given as fragments, keeping the result for long fragments.

    A fragment is kept by identity (the static fragments of an issue are the same objects
    in every copy), together with the fragment itself so that its id is not reused while it
    is kept. A line that starts at a fragment's first byte is stuffed here too, since only
    the fragment before it shows that a line starts there.
    """

    def __init__(self) -> None:
        self._kept: dict[int, tuple[bytes, bytes]] = {}

    def stuffed(self, data: bytes | Sequence[bytes]) -> list[bytes]:
        """The DATA stream of a message (bytes, or fragments that join into it), without
        the final ".": its concatenation is `dot_stuff(b"".join(data))`."""
        if isinstance(data, bytes):
            return [dot_stuff(data)]
        out: list[bytes] = []
        line_start = True
        tail = b""  # the message's last two bytes so far (a CRLF may span two fragments)
        for fragment in data:
            if not fragment:
                continue
            if line_start and fragment[:1] == b".":
                out.append(b".")
            out.append(self._inner(fragment))
            line_start = fragment[-1:] == b"\n"
            tail = (tail + fragment[-2:])[-2:]
        if tail != b"\r\n":
            out.append(b"\r\n")
        return out

    def _inner(self, fragment: bytes) -> bytes:
        """The fragment with every "." that follows a line end doubled."""
        if len(fragment) < CACHED:
            return fragment.replace(b"\n.", b"\n..")
        kept = self._kept.get(id(fragment))
        if kept is not None and kept[0] is fragment:
            return kept[1]
        if len(self._kept) >= KEPT:
            self._kept.clear()  # the next issue's fragments: the old ones are not used again
        result = fragment.replace(b"\n.", b"\n..")
        self._kept[id(fragment)] = (fragment, result)
        return result


def send_all(sock: socket.socket, buffers: Iterable[bytes]) -> None:
    """Write every buffer, in order: `sendmsg` (gathered, no joining) on a plain socket,
    one joined `sendall` on a TLS socket."""
    chunks = list(buffers)
    if isinstance(sock, ssl.SSLSocket):
        sock.sendall(b"".join(chunks))
        return
    for start in range(0, len(chunks), BATCH):
        _send_gathered(sock, chunks[start:start + BATCH])


def _send_gathered(sock: socket.socket, chunks: list[bytes]) -> None:
    """`sendmsg` until every byte is written (it may take only part of them)."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if sent:
            views[0] = views[0][sent:]
