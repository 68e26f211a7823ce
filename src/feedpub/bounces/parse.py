"""One mail in, one `Report` out: what kind of report it is, whom it names and why. Pure.

A report names a subscriber by the VERP token of the address it was sent back to (checked by
the `verp` function the caller passes) and, failing that, by the addresses it reports.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from ..mail.verp import VerpClaim

KINDS = ("hard", "soft", "complaint", "unsubscribe", "unrecognised")
VerpReader = Callable[[str], VerpClaim | None]

# Where the address a mail was delivered to is kept (the VERP return path of a bounce).
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_SMTP_REPLY = re.compile(r"\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b")
_UNSUBSCRIBE = re.compile(r"^\s*(?:re:\s*)?unsubscribe\b", re.IGNORECASE)


@dataclass(frozen=True)
class Report:
    """What one mail says. `addresses` are the recipients it reports (for an unsubscribe
    mail, its sender); `claim` is the genuine VERP token it came back with, if any."""

    kind: str  # one of KINDS
    addresses: tuple[str, ...] = ()
    claim: VerpClaim | None = None
    reason: str = ""


def _message(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _claim(headers: Iterable[str | None], verp: VerpReader) -> VerpClaim | None:
    for value in headers:
        if not value:
            continue
        for _, address in getaddresses([str(value)]):
            claim = verp(address)
            if claim is not None:
                return claim
    return None


def _delivered_to(msg: Message) -> list[str | None]:
    return [v for name in _DELIVERED_TO for v in (msg.get_all(name) or [])]


def _parts(msg: Message, content_type: str) -> list[Message]:
    return [part for part in msg.walk() if part.get_content_type() == content_type]


def _fields(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    if isinstance(payload, str):  # feedback reports often arrive as one text block
        return [email.message_from_string(payload.lstrip(), policy=email.policy.compat32)]
    return []


def _original_headers(msg: Message) -> Message | None:
    for kind in ("message/rfc822", "text/rfc822-headers"):
        for part in _parts(msg, kind):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return email.message_from_string(payload.lstrip(), policy=email.policy.compat32)
    return None


def _dsn_reason(msg: Message) -> str:
    for part in _parts(msg, "message/delivery-status"):
        for group in _fields(part):
            status, code = group.get("Status"), group.get("Diagnostic-Code")
            if status or code:
                return _one_line(" ".join(str(x) for x in (status, code) if x))
    for part in msg.walk():  # a non-standard bounce: the server's reply, else the first lines
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                lines = [ln for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
                replies = [ln for ln in lines if _SMTP_REPLY.search(ln)]
                return _one_line(" ".join(replies[:2] or lines[:4]))
    return _one_line(str(msg.get("Subject", "")))


def _complaint(msg: Message, verp: VerpReader) -> Report:
    addresses: list[str] = []
    agent = feedback = ""
    for part in _parts(msg, "message/feedback-report"):
        for group in _fields(part):
            feedback = feedback or str(group.get("Feedback-Type", ""))
            agent = agent or str(group.get("User-Agent", "") or group.get("Reporting-MTA", ""))
            addresses += [a for _, a in getaddresses(
                [str(v) for v in group.get_all("Original-Rcpt-To") or []]) if a]
    original = _original_headers(msg)
    claim = None
    if original is not None:
        addresses += [a for _, a in getaddresses(
            [str(v) for v in original.get_all("To") or []]) if a]
        claim = _claim([original.get("Return-Path")], verp)
    claim = claim or _claim(_delivered_to(msg), verp)
    reason = _one_line(f"complaint ({feedback or 'abuse'}) via {agent or 'a feedback loop'}")
    return Report("complaint", tuple(dict.fromkeys(a.lower() for a in addresses)), claim, reason)


def _is_feedback_report(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and str(msg.get_param("report-type", "")).lower() == "feedback-report")


def _unsubscribe(msg: Message, mailto: str) -> Report | None:
    """An RFC 2369 unsubscribe mail to the List-Unsubscribe mailto: address, or None."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto != "no" or not mailto:
        return None
    recipients = [a.lower() for _, a in getaddresses(
        [str(v) for name in ("To", "Cc", "Delivered-To", "X-Original-To")
         for v in msg.get_all(name) or []])]
    if mailto.lower() not in recipients:
        return None
    subject = str(msg.get("Subject", ""))
    body = ""
    if not msg.is_multipart():
        payload = msg.get_payload(decode=True)
        body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not (_UNSUBSCRIBE.match(subject) or _UNSUBSCRIBE.match(body)):
        return None
    sender = parseaddr(str(msg.get("From", "")))[1]
    if "@" not in sender:
        return None
    return Report("unsubscribe", (sender.lower(),), None,
                  _one_line(f"unsubscribe mail from {sender}"))


def parse_report(data: bytes, *, verp: VerpReader, mailto: str) -> Report:
    """Read one mail. `verp` checks a return-path address, `mailto` is the address of the
    List-Unsubscribe mailto: link. Never raises on bad input: that is 'unrecognised'."""
    try:
        msg = _message(data)
    except Exception as exc:  # noqa: BLE001 - whatever the mail is, it is only unrecognised
        return Report("unrecognised", reason=f"unreadable mail: {exc}")
    if _is_feedback_report(msg):
        return _complaint(msg, verp)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector choking on odd mail: not a bounce we know
        temporary, permanent = frozenset(), frozenset()
    claim = _claim(_delivered_to(msg), verp)
    if permanent or temporary:
        kind = "hard" if permanent else "soft"
        found = permanent or temporary
        addresses = sorted(a.decode("utf-8", "replace").lower() if isinstance(a, bytes)
                           else str(a).lower() for a in found)
        return Report(kind, tuple(addresses), claim, _dsn_reason(msg))
    unsubscribe = _unsubscribe(msg, mailto)
    if unsubscribe is not None:
        return unsubscribe
    return Report("unrecognised", claim=claim,
                  reason=_one_line(f"not a report: {msg.get('Subject', '(no subject)')}"))
