"""The 304 short path in the HTTP protocol: same answers as the ASGI path, on one connection."""

from __future__ import annotations

import socket

from feedpub.web.app import server_options
from web_helpers import ARTICLES, serve


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed, or none for 304) from a keep-alive
    socket; `buffer` keeps what was read beyond it."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, "connection closed before a full response"
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        assert data, "connection closed inside a body"
        rest += data
    buffer[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def _request(path: str, *extra: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_the_short_path_is_in_use_with_this_uvicorn(make_site) -> None:
    cfg = make_site(ARTICLES)
    with serve(cfg) as (_, app):
        assert server_options(app)["http"] != "auto"


def test_keep_alive_connection_mixes_short_304s_with_full_answers(make_site) -> None:
    cfg = make_site(ARTICLES)
    with serve(cfg) as (server, app), \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        short = []
        asked = app.static.not_modified

        def counted(path: str, headers: object) -> object:
            answer = asked(path, headers)  # type: ignore[arg-type]
            short.append(answer is not None)
            return answer

        app.static.not_modified = counted  # type: ignore[method-assign]
        buffer = bytearray()
        sock.sendall(_request("/feed.xml"))
        status, first, body = _read_response(sock, buffer)
        assert status == 200 and body.startswith(b"<?xml")
        etag = first["etag"]
        # The same connection, now between responses: the short path answers.
        sock.sendall(_request("/feed.xml", f"If-None-Match: {etag}"))
        status, headers, body = _read_response(sock, buffer)
        assert status == 304 and body == b""
        assert headers["etag"] == etag and headers["cache-control"] == first["cache-control"]
        assert headers["vary"] == "Accept-Encoding" and "date" in headers
        assert "content-type" not in headers and "server" not in headers
        # A stale validator, a gzip client and a page after it still get full answers.
        sock.sendall(_request("/feed.xml", 'If-None-Match: "old"'))
        status, _, body = _read_response(sock, buffer)
        assert status == 200 and body.startswith(b"<?xml")
        sock.sendall(_request("/feed.xml", f"If-None-Match: {etag}", "Accept-Encoding: gzip"))
        status, headers, _ = _read_response(sock, buffer)
        assert status == 200 and headers["content-encoding"] == "gzip"
        gz_etag = headers["etag"]
        # Two conditional requests in one packet (pipelined): both answered, in order.
        sock.sendall(_request("/feed.xml", f"If-None-Match: {etag}")
                     + _request("/atom.xml", f"If-None-Match: {etag}")
                     + _request("/feed.xml", f"If-None-Match: {gz_etag}",
                                "Accept-Encoding: gzip"))
        answers = [_read_response(sock, buffer) for _ in range(3)]
        assert [a[0] for a in answers] == [304, 200, 304]
        assert answers[1][2].startswith(b"<?xml") and b"<feed" in answers[1][2]
        # Percent-encoded and unknown paths take the full path: the same rules apply.
        sock.sendall(_request("/%66eed.xml", f"If-None-Match: {etag}"))
        assert _read_response(sock, buffer)[0] == 304
        sock.sendall(_request("/../feed.xml", f"If-None-Match: {etag}"))
        assert _read_response(sock, buffer)[0] == 404
    # The protocol wrote two of the 304s; the first request of a connection, a request queued
    # behind an unfinished response and an encoded path take the ASGI path.
    assert short.count(True) == 2
    metrics = app.metrics.render().decode()
    # Every feed request counted once: 200, 304, 200, 200(gz), 304, 200, 304, 304.
    assert "feedpub_feed_requests_total 8.0" in metrics
    assert "feedpub_not_modified_total 4.0" in metrics


def test_head_and_if_modified_since_on_the_short_path(make_site) -> None:
    cfg = make_site(ARTICLES)
    with serve(cfg) as (server, _), \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        buffer = bytearray()
        sock.sendall(_request("/atom.xml"))
        _, first, _ = _read_response(sock, buffer)
        sock.sendall(_request("/atom.xml", f"If-Modified-Since: {first['last-modified']}")
                     .replace(b"GET", b"HEAD", 1))
        status, headers, body = _read_response(sock, buffer)
        assert status == 304 and body == b"" and headers["etag"] == first["etag"]
        sock.sendall(_request("/index.html"))  # the connection is still in a good state
        status, _, body = _read_response(sock, buffer)
        assert status == 200 and b"<html" in body
