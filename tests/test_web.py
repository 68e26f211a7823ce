"""Feeds over HTTP from a real uvicorn server on loopback: types, validators, gzip, HEAD,
traversal, cache refresh, WebSub headers and pings, health and metrics."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import feedparser
import httpx
import pytest

from feedpub.fsutil import atomic_write
from feedpub.jobs.publish import build_feeds
from feedpub.web.app import create_app
from feedpub.web.static import accepts_gzip, etag_matches, safe_relpath
from feedpub.web.websub import HubPinger, ping_hub
from web_helpers import ARTICLES, raw_request, serve

BOTH_DATABASES = True  # each test runs on SQLite and on PostgreSQL (conftest)

FEED_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
    "tags/python.xml": "application/rss+xml; charset=utf-8",
    "tags/python.atom": "application/atom+xml; charset=utf-8",
}


@pytest.fixture
def served(make_site) -> Iterator[tuple]:
    cfg = make_site(ARTICLES, extra="""
        [web]
        cache_control = "public, max-age=123"
        """)
    with serve(cfg) as (server, app), httpx.Client(base_url=server.url, timeout=10) as client:
        yield cfg, server, app, client


def test_feed_content_types_validators_and_cache_control(served) -> None:
    cfg, server, app, client = served
    for path, media in FEED_TYPES.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == media
        assert response.headers["etag"].startswith('"') and len(response.headers["etag"]) > 10
        assert response.headers["last-modified"].endswith("GMT")
        assert response.headers["cache-control"] == "public, max-age=123"
        assert response.content == (cfg.public_dir / path).read_bytes()
    parsed = feedparser.parse(client.get("feed.xml").content)
    assert [e.title for e in parsed.entries] == ["Second post", "First post"]


def test_conditional_get_answers_304_without_body(served) -> None:
    _, _, app, client = served
    first = client.get("feed.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = client.get("feed.xml", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    # A 304 carries what caches update (RFC 9110 15.4.5); the stored 200 keeps the rest.
    assert again.headers["cache-control"] == first.headers["cache-control"]
    assert again.headers["vary"] == "Accept-Encoding"
    assert "content-type" not in again.headers and "server" not in again.headers
    weak = client.get("feed.xml", headers={"If-None-Match": f'"nope", W/{etag}'})
    assert weak.status_code == 304
    by_date = client.get("feed.xml", headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304
    stale = client.get("feed.xml", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert stale.status_code == 200 and stale.content
    other = client.get("feed.xml", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    metrics = client.get("metrics").text
    assert "feedpub_not_modified_total 3.0" in metrics
    assert "feedpub_feed_requests_total 6.0" in metrics


def test_gzip_when_asked_with_vary_and_its_own_etag(served) -> None:
    cfg, _, _, client = served
    plain = client.get("atom.xml", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    with client.stream("GET", "atom.xml", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["vary"] == "Accept-Encoding"
        gz_etag = response.headers["etag"]
    assert gzip.decompress(raw) == (cfg.public_dir / "atom.xml").read_bytes()
    assert len(raw) < len(plain.content)
    assert gz_etag != plain.headers["etag"]
    refused = client.get("atom.xml", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    cached = client.get("atom.xml", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag})
    assert cached.status_code == 304


def test_repeated_if_none_match_lines_form_one_list(served) -> None:
    _, server, _, _ = served
    _, first, _ = raw_request(server.port, "/feed.xml")
    etag = first["etag"]
    status, headers, body = raw_request(server.port, "/feed.xml", headers=[
        ("If-None-Match", etag), ("If-None-Match", '"zzz"')])
    assert status == 304 and body == b"" and headers["etag"] == etag
    status, _, _ = raw_request(server.port, "/feed.xml", headers=[
        ("If-None-Match", '"zzz"'), ("If-None-Match", f"W/{etag}")])
    assert status == 304
    status, _, body = raw_request(server.port, "/feed.xml", headers=[
        ("If-None-Match", '"yyy"'), ("If-None-Match", '"zzz"')])
    assert status == 200 and body


def test_etag_of_the_other_encoding_does_not_match(served) -> None:
    _, server, _, _ = served
    _, gz, _ = raw_request(server.port, "/atom.xml", headers={"Accept-Encoding": "gzip"})
    _, plain, _ = raw_request(server.port, "/atom.xml")
    assert gz["content-encoding"] == "gzip" and "content-encoding" not in plain
    # no Accept-Encoding: identity is chosen, so the gzip ETag is not a match
    status, headers, body = raw_request(server.port, "/atom.xml",
                                        headers={"If-None-Match": gz["etag"]})
    assert status == 200 and headers["etag"] == plain["etag"]
    assert b"<feed" in body and "content-encoding" not in headers
    # and gzip chosen: the identity ETag is not a match either
    status, headers, _ = raw_request(server.port, "/atom.xml", headers={
        "Accept-Encoding": "gzip", "If-None-Match": plain["etag"]})
    assert status == 200 and headers["etag"] == gz["etag"]
    status, headers, _ = raw_request(server.port, "/atom.xml", headers={
        "Accept-Encoding": "gzip", "If-None-Match": gz["etag"]})
    assert status == 304 and headers["etag"] == gz["etag"]


def test_if_modified_since_in_the_future_is_ignored(served) -> None:
    _, server, _, _ = served
    status, _, body = raw_request(server.port, "/feed.xml", headers={
        "If-Modified-Since": "Mon, 01 Jan 2035 00:00:00 GMT"})
    assert status == 200 and b"<rss" in body
    _, first, _ = raw_request(server.port, "/feed.xml")
    status, _, _ = raw_request(server.port, "/feed.xml", headers={
        "If-Modified-Since": first["last-modified"]})
    assert status == 304


@pytest.mark.parametrize(("accept", "gzipped"), [
    ("GZIP", True),
    ("Gzip;Q=0.5", True),
    ("x-gzip", True),
    ("*", True),
    ("*;q=1, gzip;q=0", False),
    ("gzip;q=0, *", False),
    ("br;q=1, *;q=0", False),
    ("identity, *;q=0.1", True),
    ("gzip;q=0.000", False),
    ("gzip;q=bad", False),
    ("deflate, br", False),
])
def test_gzip_negotiation_over_http(served, accept: str, gzipped: bool) -> None:
    _, server, _, _ = served
    status, headers, _ = raw_request(server.port, "/atom.xml",
                                     headers={"Accept-Encoding": accept})
    assert status == 200
    assert (headers.get("content-encoding") == "gzip") is gzipped, accept


def test_only_builder_feeds_are_feeds(make_site, hub) -> None:
    from feedpub.web.websub import changed_feed_urls

    hub_url, _ = hub
    cfg = make_site(ARTICLES, extra=f'[feeds]\nwebsub_hub = "{hub_url}"\n')
    build_feeds(cfg)
    atomic_write(cfg.public_dir / "sitemap.xml", b"<urlset/>")
    atomic_write(cfg.public_dir / "posts" / "data.xml", b"<data/>")
    atomic_write(cfg.public_dir / "tags" / "deeper" / "x.xml", b"<data/>")
    with serve(cfg, build=False) as (server, _), httpx.Client(base_url=server.url) as client:
        for path in ("sitemap.xml", "posts/data.xml", "tags/deeper/x.xml"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/xml", path
            assert "link" not in response.headers, path
        for path in ("feed.xml", "tags/python.xml", "archive/1.xml", "archive/1.atom"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("application/"), path
            assert response.headers["content-type"] != "application/xml", path
            assert f'<{hub_url}>; rel="hub"' in response.headers.get_list("link"), path
        metrics = client.get("metrics").text
        assert "feedpub_feed_requests_total 4.0" in metrics
    written = ["sitemap.xml", "posts/data.xml", "feed.xml", "archive/1.json", "index.html"]
    assert changed_feed_urls("https://x.example/", written) == [
        "https://x.example/feed.xml", "https://x.example/archive/1.json"]


def test_head_has_headers_and_no_body(served) -> None:
    _, server, _, client = served
    plain = {"Accept-Encoding": "identity"}
    get = client.get("feed.json", headers=plain)
    head = client.head("feed.json", headers=plain)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "application/feed+json; charset=utf-8"
    status, headers, body = raw_request(server.port, "/feed.json", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(get.content))


@pytest.mark.parametrize("target", [
    "/../config.toml", "/%2e%2e/config.toml", "/tags/..%2f..%2fconfig.toml",
    "/%2e%2e%2fconfig.toml", "/tags/%2e%2e/%2e%2e/config.toml", "/..%5cconfig.toml",
    "/posts/../../config.toml", "/.%2e/data/secret.key",
])
def test_paths_outside_public_are_404(served, target: str) -> None:
    cfg, server, _, _ = served
    status, _, body = raw_request(server.port, target)
    assert status == 404
    assert b"base_url" not in body and b"[site]" not in body
    assert (cfg.root / "config.toml").exists()


def test_files_only_answer_get_and_head(served) -> None:
    _, _, _, client = served
    response = client.post("feed.xml", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_hidden_files_and_directories_are_not_served(served) -> None:
    cfg, _, _, client = served
    atomic_write(cfg.public_dir / ".secret", b"hidden")
    assert client.get(".secret").status_code == 404
    assert client.get("tags").status_code == 404


def test_pages_are_html_with_security_headers(served) -> None:
    _, _, _, client = served
    for path in ("", "index.html", "posts/2026-01-05-second.html"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
    missing = client.get("nope.html")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "Page not found" in missing.text
    assert missing.headers["x-content-type-options"] == "nosniff"


def test_rebuilt_file_is_served_fresh(served) -> None:
    cfg, _, app, client = served
    old = client.get("feed.xml")
    (cfg.articles_dir / "2026-01-09-third.txt").write_text(
        "date 2026-01-09 Third post\n\nA new one.\n", encoding="utf-8")
    report = build_feeds(cfg)
    assert "feed.xml" in report.written
    app.rebuilt(report.written)
    new = client.get("feed.xml", headers={"If-None-Match": old.headers["etag"]})
    assert new.status_code == 200
    assert new.headers["etag"] != old.headers["etag"]
    assert b"Third post" in new.content
    # a change made behind the app's back (another process) is noticed by its stat check
    atomic_write(cfg.public_dir / "feed.xml", b"<rss version='2.0'><channel/></rss>")
    assert client.get("feed.xml").content == b"<rss version='2.0'><channel/></rss>"


def test_healthz_and_metrics_use_their_own_registry(served) -> None:
    cfg, _, app, client = served
    health = client.get("healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    client.get("feed.xml")
    text = client.get("metrics").text
    assert "feedpub_feed_requests_total 1.0" in text
    assert "feedpub_emails_sent_total" in text and "feedpub_builds_total" in text
    other = create_app(cfg)
    assert b"feedpub_feed_requests_total 0.0" in other.metrics.render()


_HUB_LOCK = threading.Lock()


class _Hub(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, list[str]]] = []
    failures_left = 0
    refusal = 503  # what a refused ping is answered
    delay = 0.0  # seconds before answering: a slow hub

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        form = parse_qs(self.rfile.read(length).decode())
        cls = type(self)
        time.sleep(cls.delay)
        with _HUB_LOCK:
            refuse = cls.failures_left > 0
            if refuse:
                cls.failures_left -= 1
            else:
                cls.received.append(form)
        self.send_response(cls.refusal if refuse else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[tuple[str, type[_Hub]]]:
    handler = type("Hub", (_Hub,), {"received": [], "failures_left": 0, "delay": 0.0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub", handler
    server.shutdown()
    server.server_close()


def test_websub_link_headers_when_a_hub_is_set(make_site, hub) -> None:
    hub_url, _ = hub
    cfg = make_site(ARTICLES, extra=f'[feeds]\nwebsub_hub = "{hub_url}"\n')
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url) as client:
        response = client.get("atom.xml")
        links = response.headers.get_list("link")
        assert f'<{hub_url}>; rel="hub"' in links
        assert '<https://news.example.org/atom.xml>; rel="self"' in links
        assert "link" not in client.get("index.html").headers


def test_websub_ping_retries_until_the_hub_accepts(hub) -> None:
    hub_url, handler = hub
    handler.failures_left = 1
    failed = ping_hub(hub_url, ["https://news.example.org/feed.xml"], backoff=0.05)
    assert failed == []
    assert handler.received == [{"hub.mode": ["publish"],
                                 "hub.url": ["https://news.example.org/feed.xml"]}]
    handler.failures_left = 5
    assert ping_hub(hub_url, ["https://x.example/feed.xml"], attempts=2, backoff=0.01) == [
        "https://x.example/feed.xml"]


def test_websub_pings_every_url_and_stops_retrying_when_stopping(hub) -> None:
    hub_url, handler = hub
    urls = [f"https://news.example.org/tags/t{n}.xml" for n in range(12)]
    assert ping_hub(hub_url, [*urls, urls[0]]) == []
    assert sorted(form["hub.url"][0] for form in handler.received) == sorted(urls)
    handler.received.clear()
    handler.failures_left = 100
    stop = threading.Event()
    result: list[list[str]] = []
    worker = threading.Thread(target=lambda: result.append(
        ping_hub(hub_url, urls[:2], attempts=5, backoff=600, stop=stop)))
    worker.start()
    deadline = time.monotonic() + 15
    while handler.failures_left > 98 and time.monotonic() < deadline:
        worker.join(0.02)  # wait until both first tries were refused
    stop.set()
    worker.join(15)  # a retry after 600 s would still be waiting
    assert not worker.is_alive()
    assert sorted(result[0]) == sorted(urls[:2])
    assert handler.failures_left == 98 and handler.received == []


def test_the_pinger_reports_pings_accepted_or_refused_for_good_but_not_retryable_ones(
        hub) -> None:
    from feedpub.web.websub import REFUSED, ping_outcomes

    hub_url, handler = hub
    settled: list[str] = []
    pinger = HubPinger(hub_url, backoff=0.01, attempts=2, on_settled=settled.extend)
    pinger.submit(["https://news.example.org/feed.xml"])
    assert pinger.wait_idle(10)
    assert settled == ["https://news.example.org/feed.xml"]
    handler.failures_left, handler.refusal = 2, 503  # down for both tries: kept for later
    pinger.submit(["https://news.example.org/atom.xml"])
    assert pinger.wait_idle(10)
    assert settled == ["https://news.example.org/feed.xml"]
    handler.failures_left, handler.refusal = 1, 400  # refused for good: not tried again
    outcome = ping_outcomes(hub_url, ["https://news.example.org/a.xml"], backoff=0.01)
    assert outcome == {"https://news.example.org/a.xml": REFUSED}
    assert handler.failures_left == 0 and len(handler.received) == 1
    handler.refusal = 503
    assert pinger.close(1) == []


def test_closing_the_pinger_lets_queued_pings_reach_a_slow_hub(hub) -> None:
    hub_url, handler = hub
    handler.delay = 0.5
    first = [f"https://news.example.org/a{n}.xml" for n in range(3)]
    second = ["https://news.example.org/feed.xml", "https://news.example.org/atom.xml"]
    pinger = HubPinger(hub_url)
    pinger.submit(first)
    deadline = time.monotonic() + 10
    while pinger._batch != first and time.monotonic() < deadline:  # the first are in flight
        time.sleep(0.01)
    pinger.submit(second)  # queued behind them
    assert pinger.close(3) == []
    assert sorted(form["hub.url"][0] for form in handler.received) == sorted(first + second)
    pinger.submit(["https://news.example.org/late.xml"])  # closed: ignored
    assert len(handler.received) == 5


def test_closing_the_pinger_returns_the_urls_a_hung_hub_did_not_take(hub) -> None:
    hub_url, handler = hub
    handler.delay = 2.0
    urls = ["https://news.example.org/feed.xml", "https://news.example.org/atom.xml"]
    pinger = HubPinger(hub_url)
    pinger.submit(urls)
    assert sorted(pinger.close(0.2)) == sorted(urls)


def test_any_error_in_a_ping_is_a_failed_ping_not_an_accepted_one() -> None:
    url = "https://news.example.org/feed.xml"
    # urllib rejects the URL itself (ValueError) ...
    assert ping_hub("hub.example.org/hub", [url], attempts=2, backoff=0.01) == [url]
    # ... or the hub answers something that is not HTTP (http.client.BadStatusLine)
    with socket.create_server(("127.0.0.1", 0)) as server:
        def answer_garbage() -> None:
            for _ in range(2):  # one connection per try
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HELLO\r\n\r\n")
        garbage = threading.Thread(target=answer_garbage, daemon=True)
        garbage.start()
        hub_url = f"http://127.0.0.1:{server.getsockname()[1]}/hub"
        assert ping_hub(hub_url, [url], attempts=2, backoff=0.01) == [url]
        garbage.join(10)


def test_helpers() -> None:
    assert safe_relpath("/") == "index.html"
    assert safe_relpath("/tags/a.xml") == "tags/a.xml"
    for bad in ("/../x", "/a/../../x", "/a//b", "/.hidden", "/a\\..\\b", "x", "/a\x00"):
        assert safe_relpath(bad) is None, bad
    assert accepts_gzip(b"gzip, deflate, br")
    assert accepts_gzip(b"br;q=1.0, gzip;q=0.8")
    assert not accepts_gzip(b"gzip;q=0")
    assert not accepts_gzip(b"br")
    assert accepts_gzip(b"GZIP") and accepts_gzip(b"*") and accepts_gzip(b"x-gzip;q=0.1")
    assert not accepts_gzip(b"*;q=1, gzip;q=0") and not accepts_gzip(b"gzip;q=0, *")
    assert not accepts_gzip(b"") and not accepts_gzip(b"gzip;q=x")
    assert etag_matches(b'W/"abc"', '"abc"') and etag_matches(b"*", '"x"')
    assert not etag_matches(b'"abc-gz"', '"abc"')
    assert not etag_matches(b'"abd"', '"abc"')
