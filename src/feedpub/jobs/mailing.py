"""Newsletter jobs: plan an issue, send it (resuming any unfinished one), preview, report.

Chains the stages: articles -> digest (rendered once) -> outbox rows -> sender -> mailer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..articles.model import Article
from ..config import Config
from ..delivery.registry import open_mailer
from ..delivery.sender import IssueSender, recipient_for
from ..errors import DigestError
from ..fsutil import atomic_write
from ..mail.digest import period, render_digest, select_articles
from ..mail.message import MessageTemplate, Recipient
from ..mail.model import Digest
from ..mail.personalize import subscriber_values
from ..store import Store, Subscriber, open_store
from ..store.outbox import Issue, IssueCounts, Outbox
from .sendlock import SendBusyError, send_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendReport:
    """What `send_digest` did."""

    cadence: str
    issue_id: int | None  # None: no issue (nothing new, or no subscriber to receive it)
    resumed: bool  # an unfinished issue was continued
    articles: int  # with issue_id None: new articles that no subscriber would receive
    total: int  # rows in the issue
    sent: int  # sent by this run
    failed: int  # given up by this run
    retried: int
    bounced: int
    pending: int  # still to send (stopped, or deferred rows not yet due)
    stopped: bool

    @property
    def summary(self) -> str:
        if self.issue_id is None and self.articles:
            return (f"{self.cadence} digest: {self.articles} new article(s), but no subscriber "
                    "would receive them; nothing sent or recorded")
        if self.issue_id is None:
            return f"{self.cadence} digest: nothing new since the last issue; nothing sent"
        verb = "resumed" if self.resumed else "sent"
        text = (f"{self.cadence} issue #{self.issue_id} {verb}: {self.articles} article(s), "
                f"{self.sent} sent, {self.failed} failed, {self.pending} pending "
                f"of {self.total} subscriber(s)")
        if self.bounced:
            text += f"; {self.bounced} subscriber(s) marked bounced"
        if self.stopped:
            text += " (stopped; the next run resumes)"
        return text


def _articles(cfg: Config, now: datetime) -> list[Article]:
    from .publish import published_articles

    return published_articles(cfg, now)


def _check_cadence(cadence: str) -> None:
    period(cadence)  # raises DigestError for an unknown cadence


def _selection(cfg: Config, outbox: Outbox, cadence: str, now: datetime,
               articles: Sequence[Article]) -> tuple[datetime, list[Article]]:
    """Articles for the next issue: published since the previous one, never sent before."""
    last = outbox.last_issue(cadence)
    since = last.created if last is not None else now - period(cadence)
    chosen = select_articles(articles, since=since, now=now,
                             already_sent=outbox.sent_article_ids(cadence),
                             limit=cfg.digest.max_articles)
    return since, chosen


def _variant_renderer(cfg: Config, cadence: str, chosen: Sequence[Article],
                      now: datetime) -> Callable[[tuple[str, ...]], Digest | None]:
    def render(tags: tuple[str, ...]) -> Digest | None:
        wanted = set(tags)
        subset = [a for a in chosen if not wanted or wanted & {t.lower() for t in a.tags}]
        return render_digest(cfg, cadence, subset, now) if subset else None

    return render


def _plan(cfg: Config, store: Store, cadence: str, now: datetime,
          articles: Sequence[Article]) -> tuple[Issue | None, int]:
    """The new issue (or None) and how many new articles there were."""
    _check_cadence(cadence)
    outbox = Outbox(store)
    since, chosen = _selection(cfg, outbox, cadence, now, articles)
    if not chosen:
        log.info("%s digest: no new article since %s; nothing to send", cadence,
                 since.isoformat())
        return None, 0
    issue = outbox.create_issue(
        cadence, now=now, since=since, article_ids=[a.id for a in chosen],
        default_cadence=cfg.digest.default_cadence,
        variant_for=_variant_renderer(cfg, cadence, chosen, now))
    if issue is None:
        log.info("%s digest: %d new article(s) but no active subscriber would receive them; "
                 "nothing sent or recorded (they go out once someone would)", cadence,
                 len(chosen))
        return None, len(chosen)
    log.info("%s issue #%d planned: %d article(s), %d subscriber(s)", cadence, issue.id,
             len(chosen), issue.total)
    return issue, len(chosen)


def plan_issue(cfg: Config, store: Store, cadence: str, *, now: datetime,
               articles: Sequence[Article]) -> Issue | None:
    """Create the next issue and all its outbox rows in one transaction.

    None when nothing is new or no subscriber would receive it; then nothing is recorded.
    """
    return _plan(cfg, store, cadence, now, articles)[0]


def send_digest(cfg: Config, cadence: str, *, now: datetime | None = None,
                stop: threading.Event | None = None,
                progress: Callable[[int, int], None] | None = None,
                articles: Sequence[Article] | None = None) -> SendReport:
    """Send the next issue of `cadence`, or finish the unfinished one first.

    `stop` set: finish the messages in flight, record them and return (the next call
    resumes). `articles` (newest first) defaults to the site's published articles.
    Only one process sends a cadence at a time: SendBusyError (naming the other pid) if
    another one is at it.
    """
    _check_cadence(cadence)
    with send_lock(cfg, cadence):
        return _send_locked(cfg, cadence, now=now, stop=stop, progress=progress,
                            articles=articles)


def _send_locked(cfg: Config, cadence: str, *, now: datetime | None,
                 stop: threading.Event | None, progress: Callable[[int, int], None] | None,
                 articles: Sequence[Article] | None) -> SendReport:
    when = now or datetime.now(UTC)
    with open_store(cfg) as store:
        outbox = Outbox(store)
        issue = outbox.pending_issue(cadence)
        resumed = issue is not None
        if issue is None:
            pool = list(articles) if articles is not None else _articles(cfg, when)
            issue, new = _plan(cfg, store, cadence, when, pool)
            if issue is None:
                report = SendReport(cadence, None, False, new, 0, 0, 0, 0, 0, 0, False)
                log.info(report.summary)
                return report
        tally = IssueSender(cfg, outbox, issue, stop=stop, progress=progress).run()
        outbox.finish_issue(issue.id)
        counts = outbox.counts([issue.id])[0]
    report = SendReport(
        cadence=cadence, issue_id=issue.id, resumed=resumed, articles=len(issue.article_ids),
        total=issue.total, sent=tally.sent, failed=tally.failed, retried=tally.retried,
        bounced=tally.bounced, pending=counts.pending,
        stopped=bool(stop is not None and stop.is_set() and counts.pending))
    log.info(report.summary)
    return report


@dataclass(frozen=True)
class Preview:
    """The next message of a cadence, as it would be sent."""

    cadence: str
    subject: str
    recipient: str
    data: bytes  # the exact message bytes
    html: str
    issue_id: int | None  # the unfinished issue it comes from, or None for a new one
    recipients: int  # how many subscribers the issue goes (or would go) to
    articles: int


def _named_subscriber(store: Store, email: str) -> Subscriber:
    found = store.get_subscriber(email)
    if found is None:
        raise DigestError(f"no subscriber {email!r} (see `feedpub subscribers list`)")
    return found


def preview_cadence(cfg: Config, cadence: str | None, email: str | None) -> str:
    """The cadence to preview: the one given, else the subscriber's own, else the default."""
    if cadence is not None or email is None:
        return cadence or cfg.digest.default_cadence
    with open_store(cfg) as store:
        return _named_subscriber(store, email).cadence or cfg.digest.default_cadence


def _check_receives(cfg: Config, sub: Subscriber, cadence: str) -> None:
    """DigestError unless `sub` is on the list of `cadence` (active, that cadence)."""
    own = sub.cadence or cfg.digest.default_cadence
    if sub.status != "active":
        raise DigestError(f"{sub.email} receives no {cadence} issue: the subscriber is "
                          f"{sub.status}; nothing written")
    if own != cadence:
        raise DigestError(f"{sub.email} receives the {own} digest, not the {cadence} one "
                          f"(leave out --cadence to preview their next message)")


def _sample_recipient(cfg: Config, store: Store, cadence: str) -> Subscriber | None:
    for sub in store.iter_subscribers("active"):
        if (sub.cadence or cfg.digest.default_cadence) == cadence:
            return sub
    return None


def _count_recipients(cfg: Config, store: Store, cadence: str,
                      render: Callable[[tuple[str, ...]], Digest | None]) -> int:
    matches: dict[tuple[str, ...], bool] = {}
    total = 0
    for sub in store.iter_subscribers("active"):
        if (sub.cadence or cfg.digest.default_cadence) != cadence:
            continue
        if sub.tags not in matches:
            matches[sub.tags] = render(sub.tags) is not None
        total += matches[sub.tags]
    return total


def preview_digest(cfg: Config, cadence: str | None = None, *, email: str | None = None,
                   now: datetime | None = None, to: str | None = None,
                   articles: Sequence[Article] | None = None) -> Preview | None:
    """Build the next message without sending or recording anything (None: nothing new).

    `email` picks the subscriber whose exact next message is built, in their own cadence
    unless `cadence` is given; DigestError says why when that subscriber receives nothing
    next (tag filter matches no new article, other cadence, not active, nothing left in the
    unfinished issue). `to` addresses a copy elsewhere (test send).
    """
    which = preview_cadence(cfg, cadence, email)
    _check_cadence(which)
    when = now or datetime.now(UTC)
    with open_store(cfg) as store:
        outbox = Outbox(store)
        if email is not None:
            sub: Subscriber | None = _named_subscriber(store, email)
            assert sub is not None
            _check_receives(cfg, sub, which)
        else:
            sub = _sample_recipient(cfg, store, which)
        issue = outbox.pending_issue(which)
        if issue is not None:
            if email is not None and sub is not None:
                variant_id = outbox.pending_variant(issue.id, sub.id)
                if variant_id is None:
                    raise DigestError(
                        f"{sub.email} has no message left in the unfinished {which} issue "
                        f"#{issue.id} (already sent, or not a recipient of it); their next "
                        "message comes with the issue after it")
            else:
                variant_id = outbox.next_variant(issue.id, sub.id if sub else None)
            if variant_id is None:
                return None
            digest, date, issue_id, count = (outbox.variant(variant_id), issue.created,
                                             issue.id, issue.total)
        else:
            pool = list(articles) if articles is not None else _articles(cfg, when)
            _, chosen = _selection(cfg, outbox, which, when, pool)
            if not chosen:
                return None
            render = _variant_renderer(cfg, which, chosen, when)
            narrow = render(sub.tags) if sub is not None and sub.tags and to is None else None
            if email is not None and narrow is None and sub is not None and sub.tags:
                raise DigestError(
                    f"{sub.email} receives nothing in the next {which} issue: none of its "
                    f"{len(chosen)} new article(s) carries one of their tags "
                    f"({', '.join(sub.tags)}); nothing written")
            full = render(())
            assert full is not None
            digest, date, issue_id = narrow or full, when, None
            count = _count_recipients(cfg, store, which, render)
    if to is not None:  # a test copy: its links must not act on a real subscriber
        sid, address, name = 0, to, None
    elif sub is not None:
        sid, address, name = sub.id, sub.email, sub.name
    else:
        sid, address, name = 0, "reader@example.com", "Reader"
    recipient: Recipient = recipient_for(cfg, sid, address, name)
    template = MessageTemplate(cfg, digest, issue_id=issue_id or 0, date=date)
    data = template.render(recipient)
    html = template.html.text(subscriber_values(name, recipient.unsubscribe_url,
                                                recipient.preferences_url))
    return Preview(cadence=which, subject=digest.subject, recipient=recipient.email, data=data,
                   html=html, issue_id=issue_id, recipients=count,
                   articles=len(digest.article_ids))


def write_preview(cfg: Config, cadence: str | None, out_dir: Path, *, email: str | None = None,
                  now: datetime | None = None) -> tuple[Preview, list[Path]] | None:
    """`feedpub digest preview`: write <cadence>-next.eml and .html into `out_dir`."""
    preview = preview_digest(cfg, cadence, email=email, now=now)
    if preview is None:
        return None
    eml = out_dir / f"{preview.cadence}-next.eml"
    page = out_dir / f"{preview.cadence}-next.html"
    atomic_write(eml, preview.data, fsync=False)
    atomic_write(page, preview.html.encode("utf-8"), fsync=False)
    return preview, [eml, page]


def send_test_message(cfg: Config, cadence: str, address: str, *,
              now: datetime | None = None) -> tuple[Preview, str] | None:
    """Send the next message to `address` only; nothing is recorded as sent."""
    from ..store import normalize_email

    target = normalize_email(address)
    preview = preview_digest(cfg, cadence, now=now, to=target)
    if preview is None:
        return None
    from ..delivery.envelope import Envelope

    data = Envelope(cfg).seal(preview.data)  # signed like the real copies
    with open_mailer(cfg) as mailer:
        reply = mailer.send_raw(cfg.digest.from_address, target, data)
    return preview, reply


def digest_status(cfg: Config, limit: int = 20) -> list[IssueCounts]:
    """Per issue, newest first: pending, sent and failed messages."""
    with open_store(cfg) as store:
        return Outbox(store).counts(limit=limit)


__all__ = ["Preview", "SendBusyError", "SendReport", "digest_status", "plan_issue",
           "preview_cadence", "preview_digest", "send_digest", "send_test_message",
           "write_preview"]
