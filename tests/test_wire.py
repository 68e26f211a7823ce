"""The DATA stream: dot-stuffing of fragmented messages and gathered writes, on real sockets."""

from __future__ import annotations

import re
import socket
import threading

from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedpub.delivery import wire
from feedpub.delivery.registry import open_mailer
from feedpub.delivery.wire import Stuffer, dot_stuff, send_all
from smtp_server import SmtpServer


def reference(data: bytes) -> bytes:
    """RFC 5321 4.5.2 as smtplib writes it: a "." starting any line doubled, CRLF at the end."""
    stuffed = re.sub(rb"(?m)^\.", b"..", data)
    return stuffed if stuffed.endswith(b"\r\n") else stuffed + b"\r\n"


LINES = st.lists(st.sampled_from([b".", b"..", b"a", b"a.", b".a", b"\r\n", b"\r\n.", b"=",
                                  b"x" * 700]), max_size=60).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(LINES, st.lists(st.one_of(st.integers(min_value=0, max_value=40),
                                 st.integers(min_value=0, max_value=50_000)), max_size=8))
@example(b".a\r\n.\r\n", [1, 2, 4])
@example(b"a\r\n.b", [3])  # a fragment that starts a line with "."
@example(b"", [])
@example(b"abc\r\n", [4])  # the final CRLF split over two fragments
@example(b"x\r\n.\r\n", [1, 4, 5])
def test_fragments_are_stuffed_as_the_whole_message(data: bytes, cuts: list[int]) -> None:
    """However a message is cut into fragments (empty ones too), the stream is the whole
    message dot-stuffed; and stuffing again with the same fragment objects (kept ones
    reused) gives the same stream."""
    points = sorted({min(cut, len(data)) for cut in cuts})
    fragments = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    stuffer = Stuffer()
    assert b"".join(stuffer.stuffed(fragments)) == reference(data)
    assert b"".join(stuffer.stuffed(fragments)) == reference(data)
    assert b"".join(stuffer.stuffed(data)) == dot_stuff(data) == reference(data)


def test_a_kept_fragment_is_known_by_identity_not_by_address() -> None:
    """A long fragment is stuffed once and reused while it lives; a new object, even at the
    address of a freed one, is stuffed afresh."""
    stuffer = Stuffer()
    first = b"a\r\n.b\r\n" * 1000
    assert len(first) >= wire.CACHED
    once = stuffer.stuffed([first])
    assert stuffer.stuffed([first])[0] is once[0]  # reused, not stuffed again
    address = id(first)
    del first, once
    for _ in range(100):  # new objects of the same size: one may take the freed address
        other = b"z\r\n.y\r\n" * 1000
        assert b"".join(stuffer.stuffed([other])) == reference(other)
        if id(other) == address:
            break
        del other
    many = [bytes([65 + n % 26]) * wire.CACHED + b"\r\n.%d" % n for n in range(wire.KEPT * 2)]
    for fragment in many:  # more than are kept: the store is emptied, never outgrows KEPT
        assert b"".join(stuffer.stuffed([fragment])) == reference(fragment)
        assert len(stuffer._kept) <= wire.KEPT


def test_gathered_writes_survive_partial_sends() -> None:
    """sendmsg may take only part of the buffers when the peer reads slowly: every byte
    still arrives, in order (a loopback TCP pair with a small send buffer)."""
    calls: list[int] = []

    class Counted(socket.socket):  # counts the sendmsg calls
        def sendmsg(self, buffers, *args):  # type: ignore[no-untyped-def, override]
            calls.append(1)
            return super().sendmsg(buffers, *args)

    listener = socket.create_server(("127.0.0.1", 0))
    plain = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    client = Counted(fileno=plain.detach())
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.settimeout(30)
    fragments = [bytes([n % 251]) * (n * 37 % 2000) for n in range(1200)]  # > BATCH buffers
    expected = b"".join(fragments)
    received = bytearray()

    def read() -> None:
        while len(received) < len(expected):
            chunk = server.recv(65536)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        send_all(client, fragments)
        reader.join(timeout=60)
    finally:
        client.close()
        server.close()
    assert len(expected) > 1_000_000 and bytes(received) == expected
    assert len(calls) > 3  # at most BATCH buffers a call, and partial sends went on


def test_fragments_reach_a_real_server_unstuffed(make_site) -> None:
    """What the server stores is the joined message: stuffing is undone by the server, with
    a dot at the start of a fragment, of a line inside one, and of the message."""
    head = b"Subject: dots\r\n\r\n"
    long = (b"x" * 70 + b"\r\n") * 40 + b".inside a long fragment\r\n"
    body = [b".starts the body\r\n", long, b".", b"split dot line\r\n..two\r\n",
            b"last line without its end"]
    with SmtpServer() as server:
        cfg = make_site(extra=server.config())
        with open_mailer(cfg) as mailer:
            seen: list[int] = []
            mailer.send_raw("a@example.com", "b@example.com", (head, *body), None)
            mailer.send_raw("a@example.com", "b@example.com", (head, *body),
                            lambda: seen.append(1))
            assert seen == [1]
        assert [item.data for item in server.handler.received] == [
            head + b"".join(body) + b"\r\n"] * 2
