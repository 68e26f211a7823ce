"""Previews that need no pending issue: the newest N articles, or a past issue re-rendered
exactly as it was sent; and the reason when there is nothing new to preview."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..config import Config
from ..delivery.sender import recipient_for
from ..errors import DigestError
from ..fsutil import atomic_write
from ..mail.digest import period, render_digest
from ..mail.message import MessageTemplate
from ..mail.model import Digest
from ..mail.personalize import subscriber_values
from ..store import Subscriber, open_store
from ..store.history import issue_variant
from ..store.outbox import Outbox
from .mailing import Preview


def _message(cfg: Config, digest: Digest, *, issue_id: int, date: datetime,
             sub: Subscriber | None, recipients: int) -> Preview:
    sid, address, name = (sub.id, sub.email, sub.name) if sub else (0, "reader@example.com",
                                                                    "Reader")
    recipient = recipient_for(cfg, sid, address, name)
    template = MessageTemplate(cfg, digest, issue_id=issue_id, date=date)
    html = template.html.text(subscriber_values(name, recipient.unsubscribe_url,
                                                recipient.preferences_url))
    return Preview(cadence=digest.cadence, subject=digest.subject, recipient=recipient.email,
                   data=template.render(recipient), html=html, issue_id=issue_id or None,
                   recipients=recipients, articles=len(digest.article_ids))


def preview_latest(cfg: Config, cadence: str, count: int, *,
                   now: datetime | None = None) -> Preview:
    """The newest `count` published articles as an issue, whatever was sent before."""
    from .publish import published_articles

    when = now or datetime.now(UTC)
    period(cadence)
    newest = sorted(published_articles(cfg, when), key=lambda a: a.published,
                    reverse=True)[:count]
    if not newest:
        raise DigestError(f"no published article to preview in {cfg.articles_dir} (write one "
                          "with `feedpub new`, or remove its Draft: line)")
    digest = render_digest(cfg, cadence, newest, when)
    return _message(cfg, digest, issue_id=0, date=when, sub=None, recipients=0)


def preview_issue(cfg: Config, issue_id: int, *, email: str | None = None) -> Preview:
    """Past issue `issue_id` as it was sent (to `email`, or to a reader of the full issue)."""
    with open_store(cfg) as store:
        issue = Outbox(store).get_issue(issue_id)
        if issue is None:
            raise DigestError(f"no issue #{issue_id} (see `feedpub digest status`)")
        sub = store.get_subscriber(email) if email else None
        if email and sub is None:
            raise DigestError(f"no subscriber {email!r} (see `feedpub subscribers list`)")
        variant = issue_variant(store, issue_id, sub.tags if sub else ())
        if variant is None:
            raise DigestError(f"issue #{issue_id} has no message for "
                              f"{sub.email if sub else 'every reader'}")
        digest = Outbox(store).variant(variant)
    return _message(cfg, digest, issue_id=issue.id, date=issue.created, sub=sub,
                    recipients=issue.total)


def nothing_new(cfg: Config, cadence: str, now: datetime | None = None) -> str:
    """What the next issue was compared with, when it has nothing to send."""
    when = now or datetime.now(UTC)
    with open_store(cfg) as store:
        last = Outbox(store).last_issue(cadence)
    if last is None:
        since = (when - period(cadence)).astimezone(cfg.site.tz)
        return (f"{cadence} digest: no issue yet, and nothing published since "
                f"{since.isoformat(timespec='minutes')} (a first issue covers one {cadence} "
                f"period); try `feedpub digest preview --latest 3`")
    created = last.created.astimezone(cfg.site.tz).isoformat(timespec="minutes")
    return (f"{cadence} digest: nothing new since issue #{last.id} of {created}; "
            f"`--issue {last.id}` shows that issue, `--latest 3` the newest articles")


def write_files(preview: Preview, out_dir: Path, stem: str) -> list[Path]:
    eml, page = out_dir / f"{stem}.eml", out_dir / f"{stem}.html"
    atomic_write(eml, preview.data, fsync=False)
    atomic_write(page, preview.html.encode("utf-8"), fsync=False)
    return [eml, page]
