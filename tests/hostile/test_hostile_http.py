"""Every status the server can produce carries the security headers, including uvicorn's own
400, Starlette's 413 and the 500 of a failing page; and hostile sign-ups: encoded-word names,
replayed confirm links, address variants, a failing sign-up."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from feedpub.config import Config
from feedpub.mail.tokens import link
from feedpub.store import open_store
from feedpub.web.security import SECURITY_HEADERS
from web_helpers import ARTICLES, SmtpCatcher, link_in, serve


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher().start()
    yield catcher
    catcher.stop()


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _local(url: str, server_url: str) -> str:
    parts = urlsplit(url)
    return server_url + parts.path.lstrip("/") + "?" + parts.query


def _subscribe(client: httpx.Client, email: str, **fields: str) -> httpx.Response:
    form = client.get("subscribe")
    return client.post("subscribe", data={"email": email, "csrf_token": _token(form.text),
                                          **fields})


def _confirm(client: httpx.Client, url: str) -> httpx.Response:
    page = client.get(url)
    if page.status_code != 200 or "Welcome" in page.text:
        return page
    return client.post(url, data={"csrf_token": _token(page.text)})


def _status(cfg: Config, email: str) -> str | None:
    with open_store(cfg) as store:
        sub = store.get_subscriber(email)
    return sub.status if sub else None


def _raw_400(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_status_carries_the_security_headers(make_site, smtp: SmtpCatcher) -> None:
    cfg = make_site(ARTICLES, extra=smtp.config() + "[web]\nsubscribe_rate = 2\n")
    (cfg.root / "templates").mkdir()
    (cfg.root / "templates" / "preferences.html.j2").write_text("{{ no_such_function() }}")
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("s@example.org", status="active")
    seen: dict[int, httpx.Headers] = {}
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        feed = client.get("feed.xml")
        seen[200] = feed.headers
        seen[304] = client.get("feed.xml", headers={"if-none-match": feed.headers["etag"]}
                               ).headers
        seen[404] = client.get("no/such/page").headers
        seen[405] = client.delete("subscribe").headers
        seen[403] = client.post("subscribe", data={"email": "a@example.org"}).headers
        with httpx.Client(base_url=server.url, timeout=10) as once:  # these end the connection
            seen[413] = once.post("subscribe", content=b"x" * 200_000,
                                  headers={"content-type": "application/x-www-form-urlencoded"}
                                  ).headers
        with httpx.Client(base_url=server.url, timeout=10) as once:
            seen[500] = once.get(_local(link(cfg, "preferences", sub.id, sub.email),
                                        server.url)).headers
        assert _subscribe(client, "one@example.org").status_code == 200
        assert _subscribe(client, "two@example.org").status_code == 200
        seen[429] = _subscribe(client, "three@example.org").headers
        bad = client.get("confirm?token=nonsense")
        assert bad.status_code == 400
        seen[400] = bad.headers
        raw = _raw_400(server.port).lower()
    assert raw.startswith(b"http/1.1 400 ")
    for name, value in SECURITY_HEADERS:
        assert (name + b": " + value).lower() in raw
    statuses = sorted(seen)
    assert statuses == [200, 304, 400, 403, 404, 405, 413, 429, 500]
    for status, headers in seen.items():
        if status == 304:  # no body: nothing for the headers to protect
            continue
        for name, value in SECURITY_HEADERS:
            assert headers.get(name.decode()) == value.decode(), (status, name)

    # 503: the confirmation mail cannot go (the relay is down).
    down = make_site(ARTICLES, extra=f"""
        [delivery]
        backend = "smtp"
        max_attempts = 1
        [delivery.smtp]
        host = "127.0.0.1"
        port = {_closed_port()}
        security = "none"
        timeout = 2
        """)
    with serve(down) as (server, _), httpx.Client(base_url=server.url, timeout=30) as client:
        answer = _subscribe(client, "later@example.org")
    assert answer.status_code == 503
    for name, value in SECURITY_HEADERS:
        assert answer.headers.get(name.decode()) == value.decode()


def test_an_encoded_word_name_cannot_block_sign_up(make_site, smtp: SmtpCatcher) -> None:
    cfg = make_site(ARTICLES, extra=smtp.config() + "[web]\nsubscribe_rate = 100\n")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        for name in ("=?utf-8?q?=0D=0A?=", "Eve\r\nBcc: x@example.org", "\u202eevil\u200b",
                     "=?utf-8?b?DQpCY2M6IHhAZXhhbXBsZS5vcmc=?="):
            first = _subscribe(client, "target@example.org", name=name)
            assert first.status_code == 200, name
            with open_store(cfg) as store:
                store.delete_subscriber(store.get_subscriber("target@example.org").id)
        assert _subscribe(client, "target@example.org", name="=?utf-8?q?=0D=0A?=").status_code \
            == 200
        assert _subscribe(client, "target@example.org").status_code == 200  # still works
    messages = smtp.wait(3)  # the per-address cap is 3 a day
    for message in messages:
        assert message["To"].addresses[0].addr_spec == "target@example.org"
        assert "Bcc" not in message and "\r" not in str(message["To"])
    with open_store(cfg) as store:
        stored = store.get_subscriber("target@example.org")
    assert stored is not None and stored.name == "=?utf-8?q?=0D=0A?="  # data, as given


def test_a_failing_sign_up_leaves_no_row(make_site, smtp: SmtpCatcher) -> None:
    cfg = make_site(ARTICLES, extra=smtp.config())
    (cfg.root / "templates").mkdir()
    (cfg.root / "templates" / "confirm_email.txt.j2").write_text("{{ no_such_function() }}")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        response = _subscribe(client, "fails@example.org")
    assert response.status_code == 500
    for name, value in SECURITY_HEADERS:
        assert response.headers.get(name.decode()) == value.decode()
    assert _status(cfg, "fails@example.org") is None
    assert smtp.messages == []


def test_an_old_confirm_link_never_revives_a_subscription(make_site, smtp: SmtpCatcher) -> None:
    cfg = make_site(ARTICLES, extra=smtp.config())
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        assert _subscribe(client, "back@example.org").status_code == 200
        (first_mail,) = smtp.wait(1)
        first = _local(link_in(first_mail, "confirm"), server.url)
        assert _confirm(client, first).status_code == 200
        assert _status(cfg, "back@example.org") == "active"
        with open_store(cfg) as store:
            sub = store.get_subscriber("back@example.org")
            store.set_status(sub.id, "unsubscribed")
        assert _subscribe(client, "BACK@example.org").status_code == 200
        second = _local(link_in(smtp.wait(2)[1], "confirm"), server.url)
        assert _status(cfg, "back@example.org") == "pending"
        replay = client.get(first)
        assert replay.status_code == 400 and "earlier sign-up" in replay.text
        token = _token(client.get("subscribe").text)
        assert client.post(first, data={"csrf_token": token}).status_code == 400
        assert _status(cfg, "back@example.org") == "pending"
        assert _confirm(client, second).status_code == 200
    assert _status(cfg, "back@example.org") == "active"


def test_confirmation_mails_per_mailbox_survive_restarts(make_site, smtp: SmtpCatcher) -> None:
    cfg = make_site(ARTICLES, extra=smtp.config() + "[web]\nsubscribe_rate = 100\n")
    variants = ["victim@example.org", "victim+1@example.org", "VICTIM+2@Example.org",
                "Victim@example.org", "victim+3@example.org"]
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        for address in variants[:2]:
            assert _subscribe(client, address).status_code == 200
    with serve(cfg, build=False) as (server, _), \
            httpx.Client(base_url=server.url, timeout=10) as client:  # a restart
        answers = [_subscribe(client, address) for address in variants[2:]]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    smtp.wait(3)
    assert len(smtp.messages) == 3
