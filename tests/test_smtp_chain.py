"""The next message's commands sent with a message's final "." (RFC 2920), against a real
aiosmtpd server: one write a message, every reply still told apart, and nothing announced but
not sent is ever delivered."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from feedpub.delivery.registry import open_mailer
from feedpub.delivery.smtp import SmtpMailer
from feedpub.jobs.mailing import send_digest
from feedpub.store import open_store, schema
from mail_helpers import NOW, add_subscribers, article
from smtp_server import SmtpServer

SENDER = "letters@news.example.org"
MESSAGE = (b"Subject: chained\r\n\r\n", b".a line that starts with a dot\r\n", b"end\r\n")


class CountingSocket:
    """The session's socket, counting the writes made on it."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.writes = 0

    def sendall(self, data: bytes) -> None:
        self.writes += 1
        self.sock.sendall(data)

    def sendmsg(self, buffers: list[Any]) -> int:
        self.writes += 1
        return int(self.sock.sendmsg(buffers))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _statuses(cfg, issue_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    o = schema.outbox.c
    with open_store(cfg) as store, store.engine.connect() as conn:
        return {row.email: row.status for row in conn.execute(
            sa.select(o.email, o.status).where(o.issue_id == issue_id))}


def test_each_message_after_the_first_takes_one_write(make_site) -> None:
    """With the next envelope given, a message is one write (its body, its end and the next
    message's commands); every copy arrives once, intact, in order."""
    recipients = [f"user{n}@example.com" for n in range(10)]
    with SmtpServer() as server:
        cfg = make_site(extra=server.config())
        with open_mailer(cfg) as mailer:
            assert isinstance(mailer, SmtpMailer)
            mailer.send_raw(SENDER, recipients[0], MESSAGE, None, (SENDER, recipients[1]))
            assert mailer._client is not None
            counting = CountingSocket(mailer._client.sock)
            mailer._client.sock = counting  # type: ignore[assignment]
            for n, rcpt in enumerate(recipients[1:], start=1):
                following = (SENDER, recipients[n + 1]) if n + 1 < len(recipients) else None
                assert mailer.send_raw(SENDER, rcpt, MESSAGE, None, following).startswith("250")
            assert counting.writes == len(recipients) - 1  # two a message without chaining
        received = server.handler.received
        assert [item.rcpt_tos for item in received] == [[r] for r in recipients]
        assert {item.data for item in received} == {b"".join(MESSAGE)}
        assert server.handler.sessions == 1


def test_a_refusal_in_the_chain_touches_only_its_message(make_site) -> None:
    """A refused recipient, a refused message at its final "." and a deferral, each in the
    middle of a chain: each is recorded for its own row, and the message after it (whose
    commands were already on their way) is delivered normally."""
    with SmtpServer() as server:
        server.handler.rcpt_replies["user2@example.com"] = ["550 5.1.1 no such user"]
        server.handler.data_replies["user4@example.com"] = ["554 5.7.1 content rejected"]
        server.handler.data_replies["user6@example.com"] = ["451 4.3.0 try later"]
        cfg = make_site(extra=server.config().replace("retry_first = 0.05",
                                                      'retry_first = "1h"'))
        with open_store(cfg) as store:
            add_subscribers(store, 9)
        report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
        assert (report.sent, report.failed, report.deferred) == (6, 2, 1)
        assert server.handler.copies() == {
            f"user{n}@example.com": 1 for n in range(9) if n not in (2, 4, 6)}
        statuses = _statuses(cfg, report.issue_id)
        assert statuses["user2@example.com"] == statuses["user4@example.com"] == "failed"
        assert statuses["user6@example.com"] == "pending"
        assert server.handler.sessions == 1  # the session stayed in step throughout


def test_a_dropped_session_mid_chain_loses_and_repeats_nothing(make_site) -> None:
    """The server closes the session instead of answering a message's final ".": that
    message is deferred, the announced one is sent on a new session, and no one gets a
    copy twice."""
    with SmtpServer() as server:
        server.handler.drop_at = {3}
        cfg = make_site(extra=server.config())
        with open_store(cfg) as store:
            add_subscribers(store, 7)
        report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
        assert report.sent + report.deferred == 7 and report.failed == 0
        copies = server.handler.copies()
        assert set(copies.values()) == {1} and len(copies) == report.sent
        assert report.deferred <= 1
        assert server.handler.sessions == 2


def test_an_announced_message_not_sent_is_never_delivered(make_site) -> None:
    """The commands of the next message went out, but the caller sends another one, or
    closes the session: the announced transaction is dropped with its connection (ending it
    with "." would deliver an empty message), and closing does not wait on the server."""
    with SmtpServer() as server:
        cfg = make_site(extra=server.config())
        with open_mailer(cfg) as mailer:
            mailer.send_raw(SENDER, "first@example.com", MESSAGE, None,
                            (SENDER, "announced@example.com"))
            mailer.send_raw(SENDER, "other@example.com", MESSAGE, None,
                            (SENDER, "announced-too@example.com"))
            started = time.monotonic()
        assert time.monotonic() - started < 5  # dropped, not a QUIT lost in the DATA
        time.sleep(0.2)
        assert server.handler.copies() == {"first@example.com": 1, "other@example.com": 1}
        assert {item.data for item in server.handler.received} == {b"".join(MESSAGE)}
        assert server.handler.sessions == 2


def test_a_session_renewed_after_per_connection_announces_nothing_across(make_site) -> None:
    """The last message of a session announces nothing: the next one opens a new session
    and every copy arrives once."""
    with SmtpServer() as server:
        cfg = make_site(extra=server.config() + "per_connection = 3\n")
        with open_store(cfg) as store:
            add_subscribers(store, 8)
        report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
        assert report.sent == 8
        assert set(server.handler.copies().values()) == {1}
        assert server.handler.sessions == 3


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_failure_before_the_final_dot_leaves_the_next_message_unharmed(
        make_site, pipelining: bool) -> None:
    """The hook before the final "." fails (the previous record could not be written): that
    message is never completed, and the next one goes out at once on a new session instead
    of being written into the open DATA and waiting out the timeout."""
    def fails() -> None:
        raise RuntimeError("the group record failed")

    with SmtpServer() as server:
        server.handler.pipelining = pipelining
        cfg = make_site(extra=server.config())
        with open_mailer(cfg) as mailer:
            with pytest.raises(RuntimeError):
                mailer.send_raw(SENDER, "left@example.com", MESSAGE, fails, None)
            started = time.monotonic()
            assert mailer.send_raw(SENDER, "next@example.com", MESSAGE).startswith("250")
            assert time.monotonic() - started < 5  # the timeout is 10 s
        time.sleep(0.2)
        assert server.handler.copies() == {"next@example.com": 1}
        assert server.handler.sessions == 2


def test_many_sessions_stay_within_the_store_connection_pool(make_site) -> None:
    """Each session holds one database connection for its status checks; the group records
    take one only while they commit, on at most four threads. Twelve sessions never hold
    more than 12 + 4 (and the sending thread's own), well inside the pool of 40."""
    with SmtpServer() as server:
        cfg = make_site(extra=server.config() + "connections = 12\n")
        with open_store(cfg) as store:
            add_subscribers(store, 240)
        peak, held, lock = [0], [0], threading.Lock()

        def checkout(*_: object) -> None:
            with lock:
                held[0] += 1
                peak[0] = max(peak[0], held[0])

        def checkin(*_: object) -> None:
            with lock:
                held[0] -= 1

        sa.event.listen(sa.pool.Pool, "checkout", checkout)
        sa.event.listen(sa.pool.Pool, "checkin", checkin)
        try:
            report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
        finally:
            sa.event.remove(sa.pool.Pool, "checkout", checkout)
            sa.event.remove(sa.pool.Pool, "checkin", checkin)
        assert report.sent == 240
        assert set(server.handler.copies().values()) == {1}
        assert 12 <= peak[0] <= 12 + 4 + 2, peak[0]
