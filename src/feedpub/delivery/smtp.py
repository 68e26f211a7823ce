"""The SMTP delivery backend: one session, TLS verified by default, reconnect as needed.

The session opens lazily on the first message (so a mailer can be created cheaply), is
renewed after `per_connection` messages and after the server drops it, and is closed when
the `with` block ends. Every message is one MAIL/RCPT/DATA transaction so each reply can be
recorded against its outbox row.

When the server offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go out in one
write and their three replies are read together: two round trips per message instead of
four. Each reply is still classified on its own, so a refused recipient or sender is told
apart exactly as without pipelining; a server that does not offer it gets one command at a
time.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from ..config import Config, secret
from ..errors import DeliveryError
from ..mail.addresses import ascii_address
from .base import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    envelope,
    is_recipient_failure,
    message_bytes,
)
from .wire import END, Stuffer, send_all

PASSWORD_ENV = "FEEDPUB_SMTP_PASSWORD"


def tls_context(cfg: Config) -> ssl.SSLContext:
    """Certificates verified against the system store plus `ca_file`, unless verify = false."""
    smtp = cfg.delivery.smtp
    try:
        context = ssl.create_default_context()
        if smtp.ca_file:
            context.load_verify_locations(cafile=str(cfg.path(Path(smtp.ca_file))))
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailure(
            f"delivery.smtp.ca_file = {smtp.ca_file!r} cannot be loaded: {exc} "
            "(give a PEM file of CA certificates)"
        ) from exc
    if not smtp.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpMailer:
    """An SMTP client session configured by `[delivery.smtp]`."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.settings = cfg.delivery.smtp
        self.where = f"{self.settings.host}:{self.settings.port}"
        self.password = secret(PASSWORD_ENV)
        self._client: smtplib.SMTP | None = None
        self._count = 0
        self._stuffer = Stuffer()  # dot-stuffs the fragments every copy shares once
        self._open = False  # a transaction is under way: its last reply is not read yet
        self._announced: tuple[str, str] | None = None  # next envelope, commands sent

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- session ----------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        hostname = self.cfg.site.domain
        client: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(s.host, s.port, local_hostname=hostname,
                                          timeout=s.timeout, context=tls_context(self.cfg))
            else:
                client = smtplib.SMTP(s.host, s.port, local_hostname=hostname,
                                      timeout=s.timeout)
                if s.security == "starttls":
                    client.ehlo()
                    client.starttls(context=tls_context(self.cfg))
            client.ehlo()
            # A message ends with a separate short write (the final "."): without this the
            # kernel may hold it back until the body is acknowledged (Nagle's algorithm).
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.username:
                if self.password is None:
                    raise ConnectionFailure(
                        f"SMTP server {self.where}: user {s.username!r} is configured but "
                        f"{PASSWORD_ENV} is not set (export the password in {PASSWORD_ENV})")
                _login(client, s.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            _abort(client)
            raise ConnectionFailure(
                f"SMTP server {self.where} refused the login of {s.username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)} "
                f"(check delivery.smtp.username and {PASSWORD_ENV})") from exc
        except smtplib.SMTPNotSupportedError as exc:
            _abort(client)
            raise ConnectionFailure(
                f"SMTP server {self.where} does not support {exc} "
                "(check delivery.smtp.security: 'starttls', 'tls' or 'none')") from exc
        except ssl.SSLError as exc:
            _abort(client)
            raise ConnectionFailure(
                f"TLS with SMTP server {self.where} failed: {exc} (check delivery.smtp.security"
                ", and ca_file for a private CA)") from exc
        except (OSError, smtplib.SMTPException) as exc:
            _abort(client)
            raise ConnectionFailure(
                f"cannot connect to SMTP server {self.where}: {exc} "
                "(check delivery.smtp.host, port and security, and that the server is up)"
            ) from exc
        except BaseException:
            _abort(client)
            raise
        self._count = 0
        return client

    def _session(self) -> smtplib.SMTP:
        if self._client is not None and self._count >= self._limit:
            self.close()
        if self._client is None:
            self._client = self._connect()
        return self._client

    @property
    def _limit(self) -> int:
        return max(1, self.settings.per_connection)

    def close(self) -> None:
        """End the session politely (QUIT), or just drop it if the server is gone or a
        transaction is still open (QUIT would be read as message text; a message whose
        final "." never came is not delivered)."""
        if self._open:
            self._drop()
            return
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._open, self._announced = False, None
        _abort(client)

    # -- sending ----------------------------------------------------------------------------

    def send(self, message: EmailMessage) -> str:
        sender, recipients = envelope(message)
        data = message_bytes(message)
        return "; ".join(self.send_raw(sender, rcpt, data) for rcpt in recipients)

    def send_raw(self, sender: str, recipient: str, data: bytes | Sequence[bytes],
                 before_end: Callable[[], None] | None = None,
                 then: tuple[str, str] | None = None) -> str:
        if self._open and self._announced != (sender, recipient):
            # A transaction is still open: one announced for another message, or one left
            # mid-DATA by a failure (of `before_end`, say). It must not complete, and our
            # commands would be read as its text: the connection goes.
            self._drop()
        client = self._session()
        self._count += 1
        try:
            if self._pipelining:
                code, reply, ended = self._pipelined(client, sender, recipient, data,
                                                     before_end, then)
            else:
                self._open = True
                code, reply = client.mail(ascii_address(sender))
                if code != 250:
                    self._open = False
                    self._fail(code, reply, f"MAIL FROM:<{sender}>", sender_side=True)
                code, reply = client.rcpt(ascii_address(recipient))
                if code not in (250, 251):
                    self._open = False
                    self._fail(code, reply, f"RCPT TO:<{recipient}>", stage="RCPT")
                code, reply, ended = _data(client, self._stuffer, data, before_end)
                self._open = False
            if code != 250:
                # After the final "." the transaction is over: nothing to reset (and the
                # next message's commands may already be on their way).
                self._fail(code, reply, "DATA", stage="DATA", reset=not ended)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TemporaryFailure(
                f"connection to {self.where} lost while sending to {recipient}: {exc}") from exc
        return f"{code} {_text(reply)}"

    def _pipelined(self, client: smtplib.SMTP, sender: str, recipient: str,
                   data: bytes | Sequence[bytes], before_end: Callable[[], None] | None,
                   then: tuple[str, str] | None) -> tuple[int, bytes, bool]:
        """MAIL, RCPT and DATA in one write (RFC 2920), unless they went out already with
        the previous message's end; every reply is read before any is acted on, so the
        session stays in step whatever the server answered. With `then`, the next
        message's commands go out with this one's final "." (RFC 2920 lets message
        content start a group), saving a round trip a message."""
        if self._announced is None:
            self._open = True
            client.send(_commands(sender, recipient))
        self._announced = None
        mail, rcpt, start = client.getreply(), client.getreply(), client.getreply()
        addressed = mail[0] == 250 and rcpt[0] in (250, 251)
        if start[0] == 354 and not addressed:
            client.send(b".\r\n")  # the server took DATA regardless: end it empty
            client.getreply()
        self._open = start[0] == 354 and addressed  # only then does the message follow
        if mail[0] != 250:
            self._fail(mail[0], mail[1], f"MAIL FROM:<{sender}>", sender_side=True)
        if rcpt[0] not in (250, 251):
            self._fail(rcpt[0], rcpt[1], f"RCPT TO:<{recipient}>", stage="RCPT")
        if start[0] != 354:
            return start[0], start[1], False
        following = then if then is not None and self._count < self._limit else None
        code, reply = _body(client, self._stuffer, data, before_end,
                            _commands(*following) if following else b"")
        self._announced = following
        self._open = following is not None
        return code, reply, True

    @property
    def _pipelining(self) -> bool:
        return self._client is not None and self._client.has_extn("pipelining")

    def _fail(self, code: int, reply: bytes | str, command: str, *,
              sender_side: bool = False, stage: str = "", reset: bool = True) -> None:
        text = f"{self.where} answered {code} {_text(reply)} to {command}"
        if code == 421 or code < 200:
            self._drop()  # 421: the server is closing the session
        elif reset:
            self._reset()
        if 400 <= code < 500 or code == 421 or code < 200:
            raise TemporaryFailure(text, code)
        if sender_side:
            raise ConnectionFailure(text + " (check digest.from_address and the server's "
                                           "sender policy)")
        if 500 <= code < 600:
            raise PermanentFailure(text, code,
                                   bounce=is_recipient_failure(stage, code, _text(reply)))
        raise DeliveryError(text)

    def _reset(self) -> None:
        if self._client is None:
            return
        try:
            self._client.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


def _commands(sender: str, recipient: str) -> bytes:
    return (b"MAIL FROM:<" + ascii_address(sender).encode("ascii") + b">\r\nRCPT TO:<"
            + ascii_address(recipient).encode("ascii") + b">\r\nDATA\r\n")


def _data(client: smtplib.SMTP, stuffer: Stuffer, data: bytes | Sequence[bytes],
          before_end: Callable[[], None] | None) -> tuple[int, bytes, bool]:
    """DATA, with a hook run just before the final "." that lets the server accept it;
    the last item says whether the reply is to the final "." (False: to DATA).

    The body streams to the server first; the sender uses the hook to wait until the
    previous window's group record is committed, so at most one window of accepted messages
    per session is ever unrecorded, while the recording overlaps this message's transfer.
    """
    code, reply = client.docmd("DATA")
    if code != 354:
        return code, reply, False
    return (*_body(client, stuffer, data, before_end), True)


def _body(client: smtplib.SMTP, stuffer: Stuffer, data: bytes | Sequence[bytes],
          before_end: Callable[[], None] | None, following: bytes = b""
          ) -> tuple[int, bytes]:
    """The message after a 354: dot-stuffed, then (after `before_end`) the final "." and
    `following` (the next message's commands, or nothing). With nothing to wait for, it
    all goes out in one write."""
    if client.sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    stream = stuffer.stuffed(data)
    if before_end is None:
        send_all(client.sock, [*stream, END, following])
    else:
        send_all(client.sock, stream)
        before_end()
        client.sock.sendall(END + following)
    return client.getreply()


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH with the strongest advertised mechanism, once (no retry with weaker ones)."""
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("AUTH (the server offers no login)")
    advertised = client.esmtp_features["auth"].upper().split()
    for mechanism in ("CRAM-MD5", "PLAIN", "LOGIN"):
        if mechanism in advertised:
            break
    else:
        raise smtplib.SMTPNotSupportedError(f"any of our AUTH mechanisms (it offers "
                                            f"{' '.join(advertised)})")
    client.user, client.password = username, password
    method = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
    client.auth(mechanism, method)


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())


def _abort(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    with contextlib.suppress(OSError):
        client.close()
