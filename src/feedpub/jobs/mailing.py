"""Newsletter jobs: plan an issue, send it (and the due rows of unfinished ones), preview,
report.

Chains the stages: articles -> digest (rendered once) -> outbox rows -> sender -> mailer.
A new period's issue is planned even while an older one still has rows to send: both drain.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..articles.model import Article
from ..config import Config
from ..delivery.registry import open_mailer
from ..delivery.sender import IssueSender, recipient_for
from ..delivery.window import Tally
from ..errors import DigestError
from ..fsutil import atomic_write
from ..mail.digest import period, render_digest, select_articles
from ..mail.message import MessageTemplate, Recipient
from ..mail.model import Digest
from ..mail.personalize import subscriber_values
from ..store import Store, Subscriber, open_store
from ..store.claims import SharedRate, claiming
from ..store.leader import is_shared
from ..store.outbox import AlreadyPlanned, Issue, IssueCounts, Outbox
from ..store.queue import DeliveryQueue
from .archive import publish_archive, record_public_issue
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
    pending: int  # still to send (stopped before them, or deferred)
    stopped: bool
    deferred: int = 0  # of `pending`: waiting for their next attempt after a temporary failure
    next_attempt: datetime | None = None  # when the first deferred row is due
    earlier: tuple[SendReport, ...] = ()  # older unfinished issues this run sent rows of

    @property
    def summary(self) -> str:
        return "\n".join([*(r.summary for r in self.earlier), self._line])

    @property
    def _line(self) -> str:
        if self.issue_id is None and self.articles:
            return (f"{self.cadence} digest: {self.articles} new article(s), but no subscriber "
                    "would receive them; nothing sent or recorded")
        if self.issue_id is None:
            return f"{self.cadence} digest: nothing new since the last issue; nothing sent"
        verb = "resumed" if self.resumed else "sent"
        text = (f"{self.cadence} issue #{self.issue_id} {verb}: {self.articles} article(s), "
                f"{self.sent} sent, {self.failed} failed, {self.pending} pending "
                f"of {self.total} subscriber(s)")
        if self.deferred and self.next_attempt is not None:
            text += (f"; {self.deferred} deferred, next attempt "
                     f"{self.next_attempt:%Y-%m-%d %H:%M:%S} UTC")
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
    try:
        issue = outbox.create_issue(
            cadence, now=now, since=since, article_ids=[a.id for a in chosen],
            default_cadence=cfg.digest.default_cadence,
            variant_for=_variant_renderer(cfg, cadence, chosen, now))
    except AlreadyPlanned as exc:
        log.warning("%s digest: %s", cadence, exc)
        return None, 0
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
    """Plan the next issue of `cadence` (if anything is new), then send the due rows of
    every unfinished issue of the cadence, oldest first, the new one last.

    Deferred rows not yet due stay for a later run. `stop` set: finish the messages in
    flight, record them and return (the next call resumes). `articles` (newest first)
    defaults to the site's published articles. Only one process sends a cadence at a time:
    SendBusyError (naming the other pid) if another one is at it.
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
        earlier = outbox.unfinished_issues(cadence)
        pool = list(articles) if articles is not None else _articles(cfg, when)
        issue, new = _plan(cfg, store, cadence, when, pool)
        if issue is not None:  # its public page is recorded before its first message goes out
            record_public_issue(cfg, store, issue, pool)
        resumed: list[SendReport] = []
        for old in earlier:
            if stop is not None and stop.is_set():
                break
            resumed.append(drain_issue(cfg, store, old, stop=stop, progress=progress,
                                       resumed=True))
        if issue is None:
            if not resumed:
                report = SendReport(cadence, None, False, new, 0, 0, 0, 0, 0, 0, False)
                log.info(report.summary)
                return report
            return dataclasses.replace(resumed[-1], earlier=tuple(resumed[:-1]))
        if stop is not None and stop.is_set():
            fresh = _report(cadence, outbox, DeliveryQueue(store), issue, None, False, stop)
        else:
            fresh = drain_issue(cfg, store, issue, stop=stop, progress=progress, resumed=False)
    return dataclasses.replace(fresh, earlier=tuple(resumed))


def drain_issue(cfg: Config, store: Store, issue: Issue, *, stop: threading.Event | None,
                progress: Callable[[int, int], None] | None, resumed: bool) -> SendReport:
    """Send the due rows of one issue (the caller holds its cadence's send lock); mark the
    issue done once no row is left. DeliveryError when the server cannot be used."""
    outbox = Outbox(store)
    if is_shared(cfg.database_url):  # workers may share the queue: claim rows, share the rate
        lease = timedelta(seconds=float(cfg.cluster.lease_seconds))
        with claiming(store, lease) as claims:
            tally = IssueSender(cfg, outbox, issue, stop=stop, progress=progress,
                                claim=claims.source(issue.id, lease, cfg.cluster.claim_batch),
                                owner=claims.owner, limiter=SharedRate.of(cfg, store)).run()
    else:
        tally = IssueSender(cfg, outbox, issue, stop=stop, progress=progress).run()
    outbox.finish_issue(issue.id)
    if tally.sent:
        publish_archive(cfg, store)
    report = _report(issue.cadence, outbox, DeliveryQueue(store), issue, tally, resumed, stop)
    log.info(report.summary)
    return report


def _report(cadence: str, outbox: Outbox, queue: DeliveryQueue, issue: Issue,
            tally: Tally | None, resumed: bool, stop: threading.Event | None) -> SendReport:
    counts = outbox.counts([issue.id])[0]
    first = queue.next_deferred([issue.id]).get(issue.id) if counts.deferred else None
    tally = tally or Tally()
    return SendReport(
        cadence=cadence, issue_id=issue.id, resumed=resumed, articles=len(issue.article_ids),
        total=issue.total, sent=tally.sent, failed=tally.failed, retried=tally.retried,
        bounced=tally.bounced, pending=counts.unfinished,
        stopped=bool(stop is not None and stop.is_set() and counts.unfinished),
        deferred=counts.deferred, next_attempt=first.next_attempt if first else None)


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
    """Per issue, newest first: pending, deferred (with the next attempt and the reply that
    deferred it), sent and failed messages."""
    with open_store(cfg) as store:
        counts = Outbox(store).counts(limit=limit)
        waiting = DeliveryQueue(store).next_deferred([c.issue_id for c in counts if c.deferred])
    return [dataclasses.replace(c, next_attempt=waiting[c.issue_id].next_attempt,
                                last_reply=waiting[c.issue_id].reply)
            if c.issue_id in waiting else c for c in counts]


__all__ = ["Preview", "SendBusyError", "SendReport", "digest_status", "drain_issue", "plan_issue",
           "preview_cadence", "preview_digest", "send_digest", "send_test_message",
           "write_preview"]
