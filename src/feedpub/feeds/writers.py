"""The feed builder: RSS 2.0, Atom 1.0 and JSON Feed 1.1 files, per-tag feeds, RFC 5005 archives.

`plan_feeds` is pure and cheap: it lists every feed file with a key (a digest of all its
inputs) and a `render()` that makes the bytes on demand, so a rebuild renders only what
changed. `plan` decides which files exist and how they link, `entries` holds the shared
values, `xml` writes RSS and Atom (with feedgen), `jsonfeed` writes JSON Feed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import timezone
from functools import partial
from typing import Protocol
from zoneinfo import ZoneInfo

from ..articles.model import Article
from ..articles.scan import unify_tags
from ..config import Config
from ..errors import FeedError
from ..outputs import OutputFile
from .entries import ATOM, JSON, RSS, ArticleDigests, FeedDoc, FeedItem, doc_key, prepare_item
from .jsonfeed import LIBRARY as JSON_LIBRARY
from .jsonfeed import render_json
from .plan import plan_docs
from .xml import WRITER as XML_WRITER
from .xml import render_atom, render_rss

# Library versions that shape the bytes: part of every key, so an upgrade rewrites the feeds.
_WRITER = f"{XML_WRITER}, {JSON_LIBRARY}"


class _Writer(Protocol):
    def __call__(self, doc: FeedDoc, items: Sequence[FeedItem], /) -> bytes: ...


_WRITERS: dict[str, _Writer] = {RSS: render_rss, ATOM: render_atom, JSON: render_json}


class _Items:
    """FeedItems of one plan, prepared on first use and kept while files nearby need them.

    The formats of one page, and neighbouring feeds, show the same entries: a small
    least-recently-used cache prepares each item about once without holding every body of a
    large site in memory.
    """

    def __init__(self, articles: Sequence[Article], cfg: Config) -> None:
        self._articles = articles
        self._base = cfg.site.base_url
        self._author = cfg.site.author.strip() or cfg.site.title
        self._limit = 4 * (cfg.feeds.archive_size + cfg.feeds.size)
        self._done: OrderedDict[int, FeedItem] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, indexes: Sequence[int]) -> list[FeedItem]:
        out = []
        for index in indexes:
            with self._lock:
                item = self._done.get(index)
                if item is not None:
                    self._done.move_to_end(index)
            if item is None:
                item = prepare_item(self._articles[index], self._base, self._author)
                with self._lock:
                    self._done[index] = item
                    if len(self._done) > self._limit:
                        self._done.popitem(last=False)
            out.append(item)
        return out


def _render(doc: FeedDoc, items: _Items) -> bytes:
    return _WRITERS[doc.fmt](doc, items.get(doc.entries))


_ZONES = (ZoneInfo, timezone)


def check_articles(articles: Sequence[Article]) -> None:
    """Refuse what no feed can show: a shared entry id, a date without a time zone."""
    seen: dict[str, str] = {}
    for article in articles:
        for name, moment in (("date", article.published), ("updated", article.updated)):
            # Zones of these types always give an offset: only other ones need asking.
            if moment is not None and (moment.tzinfo is None or (
                    type(moment.tzinfo) not in _ZONES and moment.utcoffset() is None)):
                raise FeedError(f"{article.source}: the {name} {moment.isoformat()} has no time "
                                "zone (give it an offset, or set [site] timezone)")
        other = seen.setdefault(article.id, article.source)
        if other != article.source:
            raise FeedError(f"{article.source}: id {article.id!r} is already used by {other}; "
                            "entry ids must be unique (give one of them its own id)")


class FeedPlan:
    """The feed files of one set of articles: `docs` says what each holds, `output(doc)`
    makes its OutputFile. A long-running build keys only the docs a change reaches."""

    def __init__(self, articles: Sequence[Article], cfg: Config,
                 digests: Sequence[bytes] | None = None, *, unified: bool = False,
                 checked: bool = False, docs: Sequence[FeedDoc] | None = None) -> None:
        if not checked:  # `checked`: the caller checked them (or the articles that changed)
            check_articles(articles)
        if not unified:  # tags differing only in case are one tag
            respelled = unify_tags(articles)
            if any(new is not old for new, old in zip(respelled, articles, strict=True)):
                digests = None  # given for the articles as they were
            articles = respelled
        self.digests = digests if digests is not None else ArticleDigests(articles)
        self.items = _Items(articles, cfg)
        # `docs`: planned already for these articles (the last build's, for an edit that
        # moved nothing: `jobs.edits.replan_edit`).
        self.docs = plan_docs(articles, cfg) if docs is None else list(docs)

    def output(self, doc: FeedDoc) -> OutputFile:
        return OutputFile(doc.path, partial(doc_key, doc, self.digests, _WRITER),
                          partial(_render, doc, self.items), cost=len(doc.entries) + 2,
                          near=min(doc.entries, default=-1))

    def outputs(self) -> list[OutputFile]:
        return [self.output(doc) for doc in self.docs]


def plan_feeds(articles: Sequence[Article], cfg: Config,
               digests: Sequence[bytes] | None = None, *,
               unified: bool = False) -> list[OutputFile]:
    """Every feed file under public/, each with its content key and a lazy renderer.

    `articles` are the published ones, newest first (published desc, slug asc). Pure and cheap:
    keys come from digests of the inputs, nothing is rendered until `render()` is called.
    `digests` may give `article_digest` of each article, when the caller has them already;
    `unified` says the tags of `articles` have their site-wide spelling (`unify_tags`).
    Rendering is thread-safe (feedgen's locale switch is serialized by a module lock).
    """
    return FeedPlan(articles, cfg, digests, unified=unified).outputs()
