"""The operator's subscriber tools: add with a confirmation, resend it, edit, reactivate, and
read a subscriber's history. Every change is logged with who made it and when."""

from __future__ import annotations

import getpass
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Config
from ..errors import SubscriberError
from ..logfmt import log_event
from ..store import Store, Subscriber
from ..store.history import HistoryLine, record_event, subscriber_history
from .subscriptions import confirmation_message, send_message

log = logging.getLogger("feedpub.subscribers")

# Statuses a mail provider set: reactivating one needs --force (the address said no or bounced).
NEEDS_FORCE = frozenset(("bounced", "complained"))


def operator() -> str:
    """Who runs the command, for the log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _get(store: Store, email: str) -> Subscriber:
    sub = store.get_subscriber(email)
    if sub is None:
        raise SubscriberError(f"no subscriber {email!r} (see `feedpub subscribers list`)")
    return sub


def send_confirmation(cfg: Config, store: Store, email: str) -> Subscriber:
    """Mail (again) the confirmation link to a pending subscriber."""
    sub = _get(store, email)
    if sub.status != "pending":
        raise SubscriberError(
            f"{sub.email} is {sub.status}, not pending: only a pending address gets a "
            "confirmation link (to ask again, `feedpub subscribers set "
            f"{sub.email} --status pending` first)")
    reply = send_message(cfg, confirmation_message(cfg, sub))
    who = operator()
    record_event(store, sub.id, "confirmation_sent", reply, who)
    log_event(log, "confirmation_sent", subscriber=sub.id, by=who)
    return sub


@dataclass(frozen=True)
class Change:
    """What `subscribers set` changes; None leaves a field as it is."""

    cadence: str | None = None
    tags: Sequence[str] | None = None
    name: str | None = None
    status: str | None = None


def edit_subscriber(store: Store, email: str, change: Change, *, force: bool = False
                    ) -> tuple[Subscriber, list[str]]:
    """Apply `change`; return the record and what changed (logged with who and when)."""
    sub = _get(store, email)
    done: list[str] = []
    if change.status is not None and change.status != sub.status:
        if sub.status in NEEDS_FORCE and not force:
            raise SubscriberError(
                f"{sub.email} is {sub.status}: its mail provider refused or reported our "
                "mail, so reactivating it may hurt delivery to everyone; add --force if the "
                "subscriber asked for it")
        sub = store.set_status(sub.id, change.status)
        done.append(f"status {change.status}")
    if change.cadence is not None or change.tags is not None:
        cadence = sub.cadence if change.cadence is None else change.cadence
        tags = sub.tags if change.tags is None else tuple(change.tags)
        sub = store.update_preferences(sub.id, cadence=cadence, tags=tags)
        if change.cadence is not None:
            done.append(f"cadence {cadence}")
        if change.tags is not None:
            done.append(f"tags {','.join(sub.tags) or '(all)'}")
    if change.name is not None:
        sub = store.rename_subscriber(sub.id, change.name)
        done.append(f"name {sub.name or '(none)'}")
    if done:
        who = operator()
        detail = "; ".join(done) + (" (--force)" if force else "")
        record_event(store, sub.id, "edited", detail, who)
        log_event(log, "subscriber_edited", subscriber=sub.id, by=who, change=detail)
    return sub, done


def history(store: Store, email: str) -> tuple[Subscriber, list[HistoryLine]]:
    sub = _get(store, email)
    return sub, subscriber_history(store, sub)
