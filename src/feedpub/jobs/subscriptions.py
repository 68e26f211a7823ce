"""The double opt-in subscription flow: request -> confirmation email -> confirm; unsubscribe;
preferences. Every state change is driven by a signed link token (`feedpub.mail.tokens`).

A subscribe request answers the same way whatever the address's state: new and pending
addresses get a confirmation link, active ones a note with their preferences link, so the
response never reveals who is subscribed. One address (whatever its case or `+tag`) gets at
most CONFIRM_MAILS_PER_DAY such mails a day, counted in the store so restarts do not reset it.

Names are data: they reach a header only through the email package's structured address
header, which encodes them; a name it cannot encode is left out of the header.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

from ..config import Config
from ..delivery.registry import open_mailer
from ..errors import DeliveryError
from ..logfmt import log_event
from ..mail.tokens import LinkClaim, TokenError, describe_age, link, read_token
from ..site.pages import text_environment
from ..store import Store, Subscriber, normalize_email, normalize_tags

log = logging.getLogger("feedpub.subscriptions")

CONFIRM_MAILS_PER_DAY = 3  # confirmation or notice mails per address, whoever asks
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class SubscribeResult:
    """What a subscribe request did (for logs and metrics, never shown to the visitor)."""

    subscriber: Subscriber
    created: bool
    kind: str  # "confirm" (link sent), "notice" (already active), "limited" (nothing sent)


def _sender(cfg: Config) -> str:
    return formataddr((cfg.digest.from_name or cfg.site.title, cfg.digest.from_address))


def build_message(cfg: Config, to: Subscriber, subject: str, body: str) -> EmailMessage:
    """A plain-text transactional message from the newsletter address (pure)."""
    message = EmailMessage()
    message["From"] = _sender(cfg)
    message["To"] = _recipient(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=cfg.site.domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def _recipient(to: Subscriber) -> Address:
    """The To address: the name encoded by the email package, or left out if it cannot be."""
    username, _, domain = to.email.rpartition("@")
    if to.name:
        try:
            named = Address(display_name=to.name, username=username, domain=domain)
            str(named)  # the header is formatted (and may refuse the name) here
            return named
        except (ValueError, TypeError, IndexError):
            log_event(log, "name_left_out", level=logging.WARNING, subscriber=to.id)
    return Address(username=username, domain=domain)


def confirmation_message(cfg: Config, subscriber: Subscriber) -> EmailMessage:
    """The double opt-in email with the signed confirm link (bound to the pending nonce)."""
    seconds = cfg.web.confirm_max_age_seconds
    body = text_environment(cfg).get_template("confirm_email.txt.j2").render(
        site=cfg.site, name=subscriber.name,
        confirm_url=link(cfg, "confirm", subscriber.id, subscriber.email,
                         subscriber.confirm_nonce),
        cadence=subscriber.cadence or cfg.digest.default_cadence,
        days=max(1, seconds // 86400), valid_for=describe_age(seconds))
    return build_message(cfg, subscriber, f"Confirm your subscription to {cfg.site.title}", body)


def notice_message(cfg: Config, subscriber: Subscriber) -> EmailMessage:
    """Sent instead of a confirmation when the address is already subscribed."""
    body = text_environment(cfg).get_template("already_subscribed_email.txt.j2").render(
        site=cfg.site, name=subscriber.name,
        preferences_url=link(cfg, "preferences", subscriber.id, subscriber.email),
        unsubscribe_url=link(cfg, "unsubscribe", subscriber.id, subscriber.email))
    return build_message(cfg, subscriber, f"You are subscribed to {cfg.site.title}", body)


def send_message(cfg: Config, message: EmailMessage) -> str:
    """Hand one message to the configured delivery backend."""
    with open_mailer(cfg) as mailer:
        return str(mailer.send(message))


def request_subscription(cfg: Config, store: Store, email: str, name: str | None = None,
                         cadence: str | None = None,
                         now: datetime | None = None) -> SubscribeResult:
    """Record (or re-use) the address as pending and mail the right link.

    Raises SubscriberError for an invalid address and DeliveryError when the mail cannot go
    (the pending row stays: asking again sends the link). Any other failure removes a row
    this request created, so a failed sign-up leaves nothing behind.
    """
    address = normalize_email(email)
    when = now or datetime.now(UTC)
    subscriber, created = store.add_subscriber(address, name, status="pending", cadence=cadence)
    try:
        if store.confirm_mails_since(address, when - _DAY) >= CONFIRM_MAILS_PER_DAY:
            log_event(log, "subscribe_address_limited", level=logging.WARNING,
                      subscriber=subscriber.id)
            return SubscribeResult(subscriber, created, "limited")
        if subscriber.status == "active":
            kind, message = "notice", notice_message(cfg, subscriber)
        else:
            if subscriber.status != "pending":  # unsubscribed or bounced: opt in again
                subscriber = store.set_status(subscriber.id, "pending")
            if not created and cadence is not None and subscriber.cadence != cadence:
                subscriber = store.update_preferences(subscriber.id, cadence=cadence,
                                                      tags=subscriber.tags)
            kind, message = "confirm", confirmation_message(cfg, subscriber)
        store.record_confirm_mail(address, when, keep=2 * _DAY)  # decide, record, send
        send_message(cfg, message)
    except DeliveryError:
        raise
    except Exception:
        if created:
            store.delete_subscriber(subscriber.id)
        raise
    log_event(log, "subscribe_request", subscriber=subscriber.id, mail=kind, new=created)
    return SubscribeResult(subscriber, created, kind)


def subscriber_for(cfg: Config, store: Store, purpose: str, token: str) -> Subscriber:
    """The subscriber a valid link token names; TokenError if it is bad or names no one.

    The token must match the subscriber's current address, so a link made for an erased
    subscriber never acts on whoever got the same id later.
    """
    return _claimed(cfg, store, purpose, token)[0]


def _claimed(cfg: Config, store: Store, purpose: str,
             token: str) -> tuple[Subscriber, LinkClaim]:
    claim = read_token(cfg, purpose, token)
    subscriber = store.get_subscriber_by_id(claim.subscriber_id)
    if subscriber is None:
        raise TokenError(f"this {purpose} link refers to a subscription that no longer exists; "
                         "subscribe again")
    if not claim.names(subscriber.email, subscriber.created):
        raise TokenError(f"this {purpose} link is not valid: the subscription it was made for "
                         "no longer exists; subscribe again")
    return subscriber, claim


def confirmable(cfg: Config, store: Store, token: str) -> Subscriber:
    """The subscriber a confirm link may still act on (nothing is changed); TokenError if
    the link was used already, belongs to an earlier sign-up, or the subscription was
    cancelled. An active subscriber is returned as is: confirming again changes nothing."""
    subscriber, claim = _claimed(cfg, store, "confirm", token)
    if subscriber.status == "active":
        return subscriber
    if subscriber.status != "pending":
        raise TokenError("this subscription was cancelled after the link was sent; "
                         "subscribe again to get a new link")
    if subscriber.confirm_nonce is not None and claim.nonce != subscriber.confirm_nonce:
        raise TokenError("this confirm link is from an earlier sign-up; use the link in the "
                         "newest confirmation email")
    return subscriber


def confirm_subscription(cfg: Config, store: Store, token: str) -> Subscriber:
    """Activate a pending subscription (the link then stops working for any later sign-up).
    Confirming an active one changes nothing."""
    subscriber = confirmable(cfg, store, token)
    if subscriber.status == "pending":
        subscriber = store.set_status(subscriber.id, "active")
        log_event(log, "subscribe_confirmed", subscriber=subscriber.id)
    return subscriber


def unsubscribe(cfg: Config, store: Store, token: str) -> Subscriber:
    """Stop all mail to the subscriber at once. Unsubscribing twice is harmless."""
    subscriber = subscriber_for(cfg, store, "unsubscribe", token)
    if subscriber.status != "unsubscribed":
        subscriber = store.set_status(subscriber.id, "unsubscribed")
        log_event(log, "unsubscribed", subscriber=subscriber.id)
    return subscriber


def update_preferences(cfg: Config, store: Store, token: str, *, cadence: str | None,
                       tags: Sequence[str]) -> Subscriber:
    """Save cadence and topic filter for the subscriber a preferences token names."""
    subscriber = subscriber_for(cfg, store, "preferences", token)
    updated = store.update_preferences(subscriber.id, cadence=cadence, tags=normalize_tags(tags))
    log_event(log, "preferences_saved", subscriber=updated.id, cadence=updated.cadence,
              tags=",".join(updated.tags))
    return updated


def known_tags(cfg: Config) -> list[str]:
    """Every tag of the published articles (lower-cased, sorted), for the preferences form."""
    try:
        from .publish import published_articles
    except ImportError:  # pragma: no cover - the build stage is always installed
        return []
    tags: set[str] = set()
    for article in published_articles(cfg):
        tags.update(t.lower() for t in article.tags)
    return sorted(tags)


def describe(subscriber: Subscriber, cfg: Config) -> dict[str, Any]:
    """Template context describing a subscriber's settings."""
    return {"email": subscriber.email, "name": subscriber.name,
            "cadence": subscriber.cadence or cfg.digest.default_cadence,
            "tags": subscriber.tags}
