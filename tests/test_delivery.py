"""Messages and delivery backends against a real aiosmtpd server (plain, STARTTLS + AUTH)."""

from __future__ import annotations

import mailbox
import re
from email.message import EmailMessage

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedpub.delivery.base import ConnectionFailure, is_recipient_failure
from feedpub.delivery.registry import open_mailer
from feedpub.errors import ConfigError, DeliveryError
from feedpub.jobs.mailing import digest_status, send_digest
from feedpub.mail.digest import render_digest
from feedpub.mail.message import EncodedBody, Recipient, build_message
from feedpub.mail.personalize import FIELDS, Personalizer
from feedpub.store import open_store
from mail_helpers import NOW, add_subscribers, article
from smtp_server import PASSWORD, USER, Received, SmtpServer, smtp_server, tls_smtp_server

__all__ = ["smtp_server", "tls_smtp_server"]  # fixtures used by name


def check_wire_format(item: Received) -> EmailMessage:
    """What every received message must satisfy, checked on the received bytes."""
    data = item.data
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF on the wire"
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in data.split(b"\r\n"):
        assert len(line) <= 998
    for line in head.split(b"\r\n"):
        assert len(line) <= 78 or b"://" in line, line  # only a URL may not be folded
    assert head.isascii()
    msg = item.message()
    assert not msg.defects
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert not part.defects
        assert part.get_content_charset() == "utf-8"
    return msg


def test_digest_message_headers_and_parts(make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("Zoe.Smith@Example.ORG", "Zoë Ünicode")
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1, title="Grüße aus Köln"),
                                                         article(2)])
    assert report.sent == 1
    [item] = smtp_server.handler.received
    assert item.rcpt_tos == ["Zoe.Smith@example.org"]
    assert item.mail_from == "letters@news.example.org"
    msg = check_wire_format(item)
    raw_head = item.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?utf-8?" in raw_head  # RFC 2047 for the non-ASCII subject and name
    assert msg["Subject"] == "Test Site: 2 new, Grüße aus Köln"
    assert msg["From"].addresses[0].display_name == "Test Site"
    assert msg["From"].addresses[0].addr_spec == "letters@news.example.org"
    assert msg["To"].addresses[0].display_name == "Zoë Ünicode"
    assert msg["Date"].datetime == NOW
    assert re.fullmatch(r"<[^@<>\s]+@news\.example\.org>", msg["Message-ID"])
    assert msg["List-Id"] == "Test Site <weekly.news.example.org>"
    assert re.fullmatch(
        r"<https://news\.example\.org/unsubscribe\?token=[\w.-]+>, "
        r"<mailto:letters@news\.example\.org\?subject=unsubscribe>", msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",)).get_content()
    page = msg.get_body(("html",)).get_content()
    assert "Hello Zoë Ünicode," in text and "Grüße aus Köln" in text
    assert "https://news.example.org/posts/post-1.html" in text
    assert "Hello Zoë Ünicode," in page and "<table" in page
    unsubscribe = msg["List-Unsubscribe"].split(">")[0][1:]
    assert unsubscribe in text and unsubscribe in page.replace("&amp;", "&")


def test_internationalized_domain_is_ascii_in_the_to_header(make_site,
                                                             smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        store.add_subscriber("idn@bücher.de", "Jörg Bücher")
        store.add_subscriber("plain@bücher.de")
    assert send_digest(cfg, "weekly", now=NOW, articles=[article(1)]).sent == 2
    by_rcpt = {item.rcpt_tos[0]: item for item in smtp_server.handler.received}
    assert set(by_rcpt) == {"idn@xn--bcher-kva.de", "plain@xn--bcher-kva.de"}
    for rcpt, item in by_rcpt.items():
        msg = check_wire_format(item)
        [to] = msg["To"].addresses
        assert not msg["To"].defects
        assert to.addr_spec == rcpt
    named = by_rcpt["idn@xn--bcher-kva.de"].message()
    assert named["To"].addresses[0].display_name == "Jörg Bücher"


def test_no_header_injection_from_titles_or_names(make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        store.add_subscriber("victim@example.com", "Eve\r\nBcc: spy@example.com\r\nX-Evil: 1")
    title = "Breaking\r\nBcc: spy@example.com\nX-Evil: yes\r\n\r\n<b>body</b>"
    send_digest(cfg, "weekly", now=NOW, articles=[article(1, title=title)])
    [item] = smtp_server.handler.received
    assert item.rcpt_tos == ["victim@example.com"]
    msg = check_wire_format(item)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert len(msg.get_all("To")) == 1 and len(msg.get_all("Subject")) == 1
    assert "Bcc: spy@example.com X-Evil: yes" in msg["Subject"]
    assert msg["To"].addresses[0].addr_spec == "victim@example.com"


def test_pure_build_message_matches_the_wire_format(make_site) -> None:
    cfg = make_site()
    digest = render_digest(cfg, "weekly", [article(1)], NOW)
    to = Recipient(5, "a@example.com", None, "https://news.example.org/unsubscribe?token=t",
                   "https://news.example.org/preferences?token=p")
    msg = build_message(cfg, digest, to, issue_id=9, date=NOW)
    assert isinstance(msg, EmailMessage)
    assert msg["Message-ID"] == f"<feedpub.9.5.{int(NOW.timestamp())}@news.example.org>"
    assert msg["To"] == "a@example.com"
    assert "Hello, here is" in msg.get_body(("plain",)).get_content()


def test_starttls_with_private_ca_and_auth(make_site, tls_smtp_server, monkeypatch) -> None:
    server = tls_smtp_server.server
    extra = server.config("starttls", f'username = "{USER}"\nca_file = "{tls_smtp_server.ca_file}"')
    cfg = make_site(extra=extra)
    with open_store(cfg) as store:
        add_subscribers(store, 3)
    monkeypatch.setenv("FEEDPUB_SMTP_PASSWORD", PASSWORD)
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert report.sent == 3 and report.pending == 0
    assert sorted(server.handler.copies()) == [f"user{i}@example.com" for i in range(3)]
    for item in server.handler.received:
        check_wire_format(item)


def test_wrong_password_stops_with_clear_error_and_loses_nothing(make_site, tls_smtp_server,
                                                                 monkeypatch) -> None:
    server = tls_smtp_server.server
    extra = server.config("starttls", f'username = "{USER}"\nca_file = "{tls_smtp_server.ca_file}"')
    cfg = make_site(extra=extra)
    with open_store(cfg) as store:
        add_subscribers(store, 2)
    monkeypatch.setenv("FEEDPUB_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{server.port}.*login"):
        send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    [issue] = digest_status(cfg)
    assert (issue.status, issue.pending, issue.sent) == ("pending", 2, 0)
    monkeypatch.setenv("FEEDPUB_SMTP_PASSWORD", PASSWORD)
    report = send_digest(cfg, "weekly", now=NOW)
    assert report.resumed and report.sent == 2
    assert server.handler.copies() == {"user0@example.com": 1, "user1@example.com": 1}


def test_untrusted_certificate_is_refused(make_site, tls_smtp_server, monkeypatch) -> None:
    cfg = make_site(extra=tls_smtp_server.server.config("starttls", f'username = "{USER}"'))
    monkeypatch.setenv("FEEDPUB_SMTP_PASSWORD", PASSWORD)
    with (pytest.raises(ConnectionFailure, match=r"TLS .*127\.0\.0\.1.*ca_file"),
          open_mailer(cfg) as mailer):
        mailer.send_raw("a@example.com", "b@example.com", b"Subject: x\r\n\r\nx\r\n")
    assert tls_smtp_server.server.handler.received == []


def test_unreachable_server_keeps_the_issue_pending_then_resumes(make_site) -> None:
    from smtp_server import free_port

    port = free_port()
    cfg = make_site(extra=f'\n[delivery]\nbackend = "smtp"\n[delivery.smtp]\nhost = "127.0.0.1"\n'
                          f'port = {port}\nsecurity = "none"\ntimeout = 2.0\n')
    with open_store(cfg) as store:
        add_subscribers(store, 4)
    with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{port}"):
        send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    [issue] = digest_status(cfg)
    assert (issue.status, issue.pending) == ("pending", 4)
    server = SmtpServer()
    server.port = port
    server.controller.port = port
    with server:
        report = send_digest(cfg, "weekly", now=NOW)
    assert report.resumed and report.sent == 4
    assert set(server.handler.copies().values()) == {1}


def test_maildir_is_the_default_backend(make_site) -> None:
    cfg = make_site()
    assert cfg.delivery.backend == "maildir"
    with open_store(cfg) as store:
        add_subscribers(store, 3)
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert report.sent == 3
    box = mailbox.Maildir(cfg.root / "outbox", create=False)
    recipients = sorted(str(m["To"]) for m in box)
    assert recipients == [f"User {i} <user{i}@example.com>" for i in range(3)]


def test_unknown_backend_names_the_key(make_site) -> None:
    cfg = make_site(extra='\n[delivery]\nbackend = "carrier-pigeon"\n')
    with pytest.raises(ConfigError, match="delivery.backend"):
        open_mailer(cfg)


def test_implicit_tls_and_sessions_renewed_after_per_connection(make_site, tmp_path) -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with SmtpServer(ssl_context=context) as server:
        cfg = make_site(extra=server.config("tls", f'ca_file = "{ca_file}"\nper_connection = 3'))
        with open_store(cfg) as store:
            add_subscribers(store, 7)
        report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    assert report.sent == 7
    assert server.handler.sessions == 3  # 3 + 3 + 1 messages
    assert set(server.handler.copies().values()) == {1}


def test_mailer_send_takes_an_email_message(make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    msg = EmailMessage()
    msg["From"] = "Site <letters@news.example.org>"
    msg["To"] = "Ann <ann@example.com>, bob@example.com"
    msg["Subject"] = "Please confirm – ünïcode"
    msg.set_content("Confirm here: https://news.example.org/confirm?token=x\n")
    with open_mailer(cfg) as mailer:
        reply = mailer.send(msg)
    assert reply.count("250") == 2
    assert smtp_server.handler.copies() == {"ann@example.com": 1, "bob@example.com": 1}
    got = smtp_server.handler.received[0].message()
    assert got["Subject"] == "Please confirm – ünïcode"
    box_cfg = make_site()
    with open_mailer(box_cfg) as mailer:
        key = mailer.send(msg)
    assert key.startswith("maildir ")
    assert len(list(mailbox.Maildir(box_cfg.root / "outbox", create=False))) == 1


def test_rate_limiter_spaces_sends() -> None:
    import threading
    import time

    from feedpub.delivery.base import RateLimiter

    start = time.monotonic()
    limiter = RateLimiter(20.0)
    stamps: list[float] = []

    def go() -> None:
        for _ in range(3):
            limiter.wait()
            stamps.append(time.monotonic())

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # The k-th send (across both threads) waits for its slot, 1/20 s after the one before.
    # A thread that wakes late only delays its own stamp, so compare with the slots, not
    # with the neighbouring stamps.
    assert all(stamp >= start + k * 0.05 - 0.001 for k, stamp in enumerate(stamps)), (
        [round(stamp - start, 3) for stamp in stamps])
    assert len(stamps) == 6
    RateLimiter(0).wait()  # unlimited: returns at once


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="@"),
                max_size=300)


@settings(max_examples=200, deadline=None)
@example(pieces=["\r", "\n0"], values=dict.fromkeys(FIELDS, ""), escape=False)  # CR | marker | LF
@given(pieces=st.lists(_TEXT, min_size=1, max_size=5),
       values=st.fixed_dictionaries({k: _TEXT for k in FIELDS}), escape=st.booleans())
def test_encoded_body_decodes_to_the_filled_in_text(pieces: list[str], values: dict[str, str],
                                                    escape: bool) -> None:
    import binascii

    body = "".join(p + (f"@@fp:{FIELDS[i % len(FIELDS)]}@@" if i < len(pieces) - 1 else "")
                   for i, p in enumerate(pieces))
    part = EncodedBody(body, escape=escape)
    encoded = part.fill(values)
    assert b"\n" not in encoded.replace(b"\r\n", b"") and b"\r" not in encoded.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    decoded = binascii.a2b_qp(encoded).decode("utf-8")
    expected = Personalizer(body, escape=escape).fill(values)
    normalize = lambda t: t.replace("\r\n", "\n").replace("\r", "\n")  # noqa: E731
    assert normalize(decoded).rstrip("\n") == normalize(expected).rstrip("\n")


_WORDS = st.sampled_from(["Night", "Market", "to", "the", "Quay", "Harbour", "News:", "3",
                          "new,", "🌙", "café", "crème", "夜市が港に戻ってきました", "مرحبا",
                          "Ünïcödé", "a" * 40, "-", "(ferry)", '"quoted"', "x=?y?="])


@settings(max_examples=300, deadline=None)
@example(words=["My", "feedpub", "site:", "1", "new,", "Night", "Market", "Returns", "to", "the",
                "Quay", "🌙"])  # folded right before the encoded-word
@given(words=st.lists(_WORDS, min_size=1, max_size=30))
def test_folded_headers_read_back_as_written(words: list[str]) -> None:
    """A subject or display name, folded and encoded, reads back as the text: no space
    doubled or lost at a fold. Read as RFC 2047 says (a space between two encoded-words is
    ignored: `decode_header`), and the subject also by the email package's parser, which
    reads unstructured headers so (in a display name it keeps that space)."""
    import email
    import email.policy
    from email.header import decode_header, make_header
    from email.utils import parseaddr

    from feedpub.mail.message import _fold, _fold_address

    text = " ".join(words)
    subject = _fold("Subject", text)
    address = _fold_address("From", text, "letters@example.org")
    for raw, longest in ((subject, 78), (address, 998)):  # a quoted name is not folded
        assert raw.endswith(b"\r\n") and b" \r\n" not in raw and b"\t\r\n" not in raw
        assert all(len(line) <= longest for line in raw.split(b"\r\n"))
    value = subject.decode("ascii")[len("Subject:"):].replace("\r\n", "")
    assert str(make_header(decode_header(value.strip()))) == text
    parsed = email.message_from_bytes(subject + b"\r\n", policy=email.policy.default)
    assert str(parsed["Subject"]).lstrip() == text  # folded right after "Subject:", at times
    name, found = parseaddr(address.decode("ascii")[len("From:"):].replace("\r\n", ""))
    assert str(make_header(decode_header(name))) == text
    assert found == "letters@example.org"


@pytest.mark.parametrize(("stage", "code", "reply", "bounce"), [
    ("RCPT", 550, "5.1.1 no such user", True),
    ("DATA", 550, "5.1.1 <a@example.com>: user unknown", True),
    ("RCPT", 553, "5.1.3 bad destination mailbox address syntax", True),
    ("RCPT", 550, "5.2.1 mailbox disabled", True),
    ("DATA", 552, "5.2.2 mailbox full", True),
    ("RCPT", 550, "User unknown", True),  # no enhanced code: the bare RCPT answer decides
    ("RCPT", 551, "User not local", True),
    ("RCPT", 553, "mailbox name not allowed", True),
    ("RCPT", 550, "5.7.1 client host blocked", False),  # about our sending IP
    ("RCPT", 554, "5.7.1 relay access denied", False),
    ("RCPT", 552, "5.2.3 message too large", False),
    ("RCPT", 550, "5.1.8 sender address rejected: domain not found", False),  # our sender
    ("RCPT", 554, "transaction failed", False),
    ("RCPT", 552, "message size exceeds limit", False),
    ("DATA", 550, "content rejected", False),
    ("DATA", 554, "5.7.1 spam", False),
    ("RCPT", 450, "4.2.2 mailbox full", False),  # temporary: never a bounce
])
def test_only_replies_about_the_address_are_hard_bounces(stage: str, code: int, reply: str,
                                                         bounce: bool) -> None:
    assert is_recipient_failure(stage, code, reply) is bounce


_TRICKY = [
    ("Zoë Ångström-Łukasiewicz 日本語の名前", "zoe@example.com"),
    ("Doe, John \"JD\" (admin) <root>", "john.doe@example.com"),
    ("A very long display name that goes on and on beyond one folded header line",
     "a.rather.long.local.part.for.testing.folding.limits@subdomain.mail.example.org"),
    (None, "x" * 60 + "@" + "long-domain-label-" * 3 + "example.com"),
]


def _reference(cfg, digest, to: Recipient, *, issue_id: int) -> EmailMessage:
    """The same message built the slow way: an EmailMessage object graph, per recipient."""
    from email.headerregistry import Address

    from feedpub.mail.message import list_id, sender_address
    from feedpub.mail.personalize import Personalizer, fill_issue, subscriber_values

    values = subscriber_values(to.name, to.unsubscribe_url, to.preferences_url)
    msg = EmailMessage()
    msg["From"] = sender_address(cfg)
    msg["To"] = Address(display_name=to.name or "", addr_spec=to.email)
    msg["Subject"] = digest.subject
    msg["List-Id"] = list_id(cfg, digest.cadence)
    msg["Message-ID"] = f"<feedpub.{issue_id}.{to.subscriber_id}.{int(NOW.timestamp())}@" \
                        f"{cfg.site.domain}>"
    msg["List-Unsubscribe"] = (f"<{to.unsubscribe_url}>, "
                               f"<mailto:{cfg.digest.from_address}?subject=unsubscribe>")
    msg.set_content(Personalizer(fill_issue(digest.text, issue_id), escape=False).fill(values))
    msg.add_alternative(Personalizer(fill_issue(digest.html, issue_id), escape=True)
                        .fill(values), subtype="html")
    return msg


@pytest.mark.parametrize(("name", "address"), _TRICKY)
def test_spliced_message_equals_the_reference_part_by_part(make_site, name: str | None,
                                                           address: str) -> None:
    """The byte template filled per recipient says what an email.message graph built for
    that recipient says: every header (decoded) and every part (decoded)."""
    import email
    import email.header
    import email.policy

    from feedpub.delivery.sender import recipient_for
    from feedpub.delivery.wire import dot_stuff
    from feedpub.mail.message import MessageTemplate

    cfg = make_site()
    digest = render_digest(cfg, "weekly", [article(1), article(2, title="Ünïcödé ☃ title")],
                           NOW)
    to = recipient_for(cfg, 42, address, name)
    data = MessageTemplate(cfg, digest, issue_id=7, date=NOW).render(to)
    assert b"\n" not in data.replace(b"\r\n", b"") and data.split(b"\r\n\r\n")[0].isascii()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert dot_stuff(data).replace(b"\r\n..", b"\r\n.") == data  # nothing lost to stuffing
    ours = email.message_from_bytes(data, policy=email.policy.default)
    ref = _reference(cfg, digest, to, issue_id=7)
    ref = email.message_from_bytes(ref.as_bytes(policy=email.policy.SMTP),
                                   policy=email.policy.default)
    for header in ("From", "Subject", "List-Id", "Message-ID"):
        assert str(ours[header]) == str(ref[header]), header
    [mine], [theirs] = ours["To"].addresses, ref["To"].addresses
    assert (mine.display_name, mine.addr_spec) == (theirs.display_name, theirs.addr_spec)
    raw_to = data.split(b"\r\nTo:", 1)[1].split(b"\r\nMessage-ID", 1)[0].decode("ascii")
    # RFC 2047 decoding (whitespace between adjacent encoded-words is dropped; the email
    # package's header parser keeps it, for our bytes and the reference's alike)
    shown = str(email.header.make_header(email.header.decode_header(raw_to)))
    assert shown.replace("\r\n ", " ").startswith(
        f"{' '.join(name.split())}" if name and not name.isascii() else "")
    assert address.split("@")[0] in shown
    assert " ".join(str(ours["List-Unsubscribe"]).split()) == str(ref["List-Unsubscribe"])
    assert ours["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for kind in ("plain", "html"):
        a, b = ours.get_body((kind,)), ref.get_body((kind,))
        assert a is not None and b is not None
        assert a.get_content_type() == b.get_content_type()
        text = [p.get_content().replace("\r\n", "\n").rstrip("\n") for p in (a, b)]
        assert text[0] == text[1], kind
    assert to.unsubscribe_url in ours.get_body(("plain",)).get_content()
    if name:
        assert f"Hello {' '.join(name.split())}," in ours.get_body(("plain",)).get_content()


@pytest.mark.parametrize("pipelining", [True, False])
def test_replies_are_classified_with_and_without_pipelining(make_site,
                                                            pipelining: bool) -> None:
    """Each recipient's reply is told apart whether MAIL, RCPT and DATA travel together
    (the server advertises PIPELINING) or one at a time."""
    with SmtpServer() as server:
        server.handler.pipelining = pipelining
        server.handler.rcpt_replies["user1@example.com"] = ["550 5.1.1 no such user"]
        server.handler.rcpt_replies["user2@example.com"] = ["451 4.3.0 try later"]
        server.handler.data_replies["user3@example.com"] = ["554 5.7.1 content rejected"]
        cfg = make_site(extra=server.config().replace("retry_first = 0.05",
                                                      'retry_first = "1h"'))
        with open_store(cfg) as store:
            add_subscribers(store, 6)
        with open_mailer(cfg) as mailer:
            mailer.send_raw("a@example.com", "user0@example.com", b"Subject: x\r\n\r\n.x\r\n")
            assert mailer._pipelining is pipelining  # type: ignore[attr-defined]
        report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
        assert (report.sent, report.failed, report.deferred, report.bounced) == (3, 2, 1, 0)
        copies = server.handler.copies()
        assert copies == {"user0@example.com": 2, "user4@example.com": 1,
                          "user5@example.com": 1}
        assert server.handler.received[0].data == b"Subject: x\r\n\r\n.x\r\n"  # unstuffed
        rows = {r.email: r for r in _rows(cfg, report.issue_id)}
        assert "550 5.1.1" in rows["user1@example.com"].reply
        assert rows["user2@example.com"].status == "pending"
        assert "451 4.3.0" in rows["user2@example.com"].reply
        assert "554 5.7.1" in rows["user3@example.com"].reply
        assert rows["user3@example.com"].status == "failed"


def _rows(cfg, issue_id: int | None) -> list:
    import sqlalchemy as sa

    from feedpub.store import schema

    with open_store(cfg) as store, store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.outbox).where(
            schema.outbox.c.issue_id == issue_id)))


def test_link_tokens_are_the_bytes_itsdangerous_makes(monkeypatch) -> None:
    """Links are signed without itsdangerous' per-call work, to the same tokens."""
    import time

    from feedpub.mail import tokens

    monkeypatch.setattr(time, "time", lambda: 1_765_000_000.5)
    import hashlib
    import random
    import secrets

    rng = random.Random(5)
    payloads: list[list[object]] = [
        [7, "abcdef012345"], [2**40, "0123456789ab", "n" * 80], [3, "a" * 60],
        [1, "\u00e9t\u00e9 \U0001F600"], [12, "0123456789ab", "n" * 200], [2**70, "ab"]]
    for n in range(300):  # as mailed: an id, an address digest, a confirm nonce now and then
        payload: list[object] = [rng.randrange(1, 10**rng.randrange(1, 12)),
                                 hashlib.sha256(str(n).encode()).hexdigest()[:12]]
        if n % 3 == 0:
            payload.append(secrets.token_urlsafe(rng.choice([8, 16, 32])))
        payloads.append(payload)
    for purpose in tokens.PURPOSES:
        for payload in payloads:
            slow = tokens._signing("site-secret", purpose).dumps(payload)
            assert tokens._fast("site-secret", purpose).dumps(payload, 1_765_000_000) == slow
