"""The newsletter's public archive as files (pure): `newsletter/<n>.html` per sent issue (the
issue's mail with every personal part left out, as recorded when it was sent),
`newsletter/index.html`, and a feed of issues (`newsletter/feed.xml`, `.atom`, `.json`).

Takes `IssuePage` values; it never reads the database (the publishing job does).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from ..config import Config
from ..feeds.entries import (
    ATOM,
    EMPTY_FEED_DATE,
    JSON,
    RSS,
    FeedDoc,
    FeedItem,
    feed_time,
    xml_content,
    xml_text,
)
from ..feeds.jsonfeed import render_json
from ..feeds.xml import render_atom, render_rss
from ..outputs import OutputFile
from .pages import FeedLink, key_of, page_environment, render_page, template_digest

FOLDER = "newsletter"
FEEDS = ((RSS, "feed.xml", "application/rss+xml"), (ATOM, "feed.atom", "application/atom+xml"),
         (JSON, "feed.json", "application/feed+json"))


@dataclass(frozen=True)
class IssuePage:
    """One sent issue as the archive shows it."""

    number: int
    cadence: str
    created: datetime
    subject: str
    html: str  # the whole page, as rendered from the digest template
    articles: tuple[tuple[str, str], ...]  # (title, url)

    @property
    def path(self) -> str:
        return f"{FOLDER}/{self.number}.html"


def _item(cfg: Config, issue: IssuePage) -> FeedItem:
    url = cfg.site.base_url + issue.path
    body = "<ul>" + "".join(f'<li><a href="{html.escape(u)}">{html.escape(t)}</a></li>'
                            for t, u in issue.articles) + "</ul>"
    body_utf8 = xml_text(body).encode("utf-8")
    when = feed_time(issue.created.astimezone(cfg.site.tz))
    return FeedItem(id=f"tag:{cfg.site.domain},{when.date().isoformat()}:newsletter-{issue.number}",
                    url=url, title=xml_text(issue.subject), html_utf8=body_utf8,
                    summary="",
                    author=xml_text(cfg.site.author).strip() or xml_text(cfg.site.title),
                    tags=(), published=when, modified=when, html_xml=xml_content(body_utf8),
                    published_iso=when.isoformat(), modified_iso=when.isoformat())


def plan_newsletter(issues: Sequence[IssuePage], cfg: Config) -> list[OutputFile]:
    """The archive's files for `issues` (oldest first)."""
    env = page_environment(cfg)
    outputs = [OutputFile(issue.path, hashlib.sha256(issue.html.encode("utf-8")).hexdigest(),
                          partial(issue.html.encode, "utf-8")) for issue in issues]
    newest = list(reversed(issues))
    base, title = cfg.site.base_url, xml_text(cfg.site.title)
    links = [FeedLink(f"{base}{FOLDER}/{name}", mime, f"{title}: newsletter")
             for _, name, mime in FEEDS]
    templates = template_digest(env, ("base.html.j2", "newsletter_index.html.j2"))
    listing = tuple((i.number, i.subject, i.created.isoformat()) for i in newest)
    outputs.append(OutputFile(
        f"{FOLDER}/index.html", key_of(templates, repr(cfg.site), listing),
        lambda: render_page(env, "newsletter_index.html.j2", cfg, root="../", feeds=links,
                            issues=newest).encode("utf-8")))
    items = [_item(cfg, issue) for issue in newest[:cfg.feeds.size]]
    updated = max((item.modified for item in items), default=EMPTY_FEED_DATE)
    writers = {RSS: render_rss, ATOM: render_atom, JSON: render_json}
    for fmt, name, _ in FEEDS:
        path = f"{FOLDER}/{name}"
        doc = FeedDoc(fmt=fmt, path=path, title=f"{title}: newsletter",
                      feed_id=f"tag:{cfg.site.domain},2000:newsletter", self_url=base + path,
                      home_url=f"{base}{FOLDER}/index.html",
                      description=xml_text(cfg.site.description).strip() or title,
                      language=xml_text(cfg.site.language),
                      author=xml_text(cfg.site.author).strip() or title,
                      email=xml_text(cfg.site.email), updated=updated, links=(), archived=False,
                      entries=tuple(range(len(items))))
        key = hashlib.sha256(repr((doc, [(i.id, i.title, i.html) for i in items])).encode()
                             ).hexdigest()
        outputs.append(OutputFile(path, key, partial(writers[fmt], doc, items)))
    return outputs
