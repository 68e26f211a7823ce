"""The feed builder: RSS 2.0, Atom 1.0 and JSON Feed 1.1 files, per-tag feeds, RFC 5005 archives.

`plan_feeds` is pure and cheap: it lists every feed file with a key (a digest of all its
inputs) and a `render()` that makes the bytes on demand, so a rebuild renders only what
changed. This is the only module that uses feedgen; `feeds_plan` decides which files exist
and how they link, `feeds_model` holds the shared values, `jsonfeed` writes JSON Feed.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from email.utils import format_datetime
from functools import partial
from typing import Protocol

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.version import version_str as feedgen_version
from lxml import etree

from .articles import Article, unify_tags
from .config import Config
from .errors import FeedError
from .feeds_model import ATOM, JSON, RSS, FeedDoc, FeedItem, article_digest, doc_key, prepare_item
from .feeds_plan import plan_docs, tag_slugs
from .jsonfeed import render_json
from .outputs import OutputFile

__all__ = ["FEED_CONTENT_TYPES", "plan_feeds", "tag_slugs"]

FEED_CONTENT_TYPES: dict[str, str] = {
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
}

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
GENERATOR = "feedpub"
# Library versions that shape the bytes: part of every key, so an upgrade rewrites the feeds.
_WRITER = f"feedgen {feedgen_version}, lxml {etree.__version__}"

# RSS elements holding plain text. The RSS Best Practices Profile asks for "&" and "<" in plain
# text to be written as hexadecimal character references (the W3C validator warns otherwise).
_RSS_PLAIN = re.compile(rb"<(title|description|category|dc:creator|managingEditor)>([^<]*)</\1>")

# feedgen formats RSS dates through locale.setlocale(), which is process-wide: two renders in
# different threads could otherwise switch the locale under each other. Every feedgen render
# holds this lock. (Entry dates are formatted by email.utils, which needs no locale.)
_FEEDGEN_LOCK = threading.Lock()


class _Additions(BaseExtension):
    """Everything feedpub adds to a feedgen document: the entries, RFC 5005 `fh:archive` and,
    in RSS, the atom:links feedgen keeps only for rel="self" (hub, archive links).

    feedgen writes the feed head; the entries are written here with lxml, in one pass per
    document, because feedgen's per-entry objects cost several times more than the XML
    itself and archive pages put every article of the site through this code.
    """

    def __init__(self) -> None:
        self.fmt = ATOM
        self.links: tuple[tuple[str, str], ...] = ()
        self.archived = False
        self.items: Sequence[FeedItem] = ()

    def extend_ns(self) -> dict[str, str]:
        namespaces = {"dc": DC_NS} if self.fmt == RSS else {}
        if self.archived:
            namespaces["fh"] = HISTORY_NS
        return namespaces

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.archived:
            etree.SubElement(feed, f"{{{HISTORY_NS}}}archive")
        for item in self.items:
            _atom_entry(feed, item)
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        for rel, href in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel)
        if self.archived:
            etree.SubElement(channel, f"{{{HISTORY_NS}}}archive")
        for item in self.items:
            _rss_item(channel, item)
        return feed


def _text(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, tag, **attrs)
    element.text = text
    return element


def _atom_entry(feed: etree._Element, item: FeedItem) -> None:
    # Unqualified names, as feedgen writes them: the root's default namespace is Atom's.
    entry = etree.SubElement(feed, "entry")
    _text(entry, "id", item.id)
    _text(entry, "title", item.title)
    _text(entry, "updated", item.modified.isoformat())
    _text(etree.SubElement(entry, "author"), "name", item.author)
    if item.html.strip():  # a title-only entry has no content; its alternate link suffices
        _text(entry, "content", item.html, type="html")
    etree.SubElement(entry, "link", href=item.url, rel="alternate", type="text/html")
    if item.summary:
        # Plain text escaped as HTML: literal "<b>" or "&amp;" in a summary reads as the text it
        # is, where type="text" would make validators report HTML in a text construct.
        _text(entry, "summary", html.escape(item.summary, quote=False), type="html")
    for tag in item.tags:
        etree.SubElement(entry, "category", term=tag)
    _text(entry, "published", item.published.isoformat())


def _rss_item(channel: etree._Element, item: FeedItem) -> None:
    entry = etree.SubElement(channel, "item")
    _text(entry, "title", item.title)
    _text(entry, "link", item.url)
    has_body = bool(item.html.strip())  # empty elements are left out, never written blank
    if item.summary:
        # <description> is HTML in RSS: the plain-text summary is escaped once for it.
        _text(entry, "description", html.escape(item.summary, quote=False))
        if has_body:
            _text(entry, f"{{{CONTENT_NS}}}encoded", item.html)
    elif has_body:
        _text(entry, "description", item.html)
    _text(entry, "guid", item.id, isPermaLink="false")
    for tag in item.tags:
        _text(entry, "category", tag)
    _text(entry, "pubDate", format_datetime(item.published))
    _text(entry, f"{{{ATOM_NS}}}updated", item.modified.isoformat())  # RSS has no own element
    _text(entry, f"{{{DC_NS}}}creator", item.author)  # RSS <author> must be an e-mail address


def _generator(doc: FeedDoc, items: Sequence[FeedItem], mime: str) -> FeedGenerator:
    """A FeedGenerator with the feed-level fields both XML formats share."""
    gen = FeedGenerator()
    gen.register_extension("feedpub", _Additions, None)
    gen.feedpub.fmt = doc.fmt
    gen.feedpub.links = doc.links
    gen.feedpub.archived = doc.archived
    gen.feedpub.items = items
    gen.id(doc.feed_id)
    gen.title(doc.title)
    gen.subtitle(doc.description)
    gen.description(doc.description)
    if doc.language:
        gen.language(doc.language)
    gen.updated(doc.updated)  # the newest change among the entries, never the build time
    gen.generator(GENERATOR)
    gen.link(href=doc.self_url, rel="self", type=mime)
    return gen


def _render_atom(doc: FeedDoc, items: Sequence[FeedItem]) -> bytes:
    gen = _generator(doc, items, FEED_CONTENT_TYPES[".atom"])
    author = {"name": doc.author, "email": doc.email} if doc.email else {"name": doc.author}
    gen.author(author)
    for rel, href in doc.links:
        gen.link(href=href, rel=rel)
    gen.link(href=doc.home_url, rel="alternate", type="text/html")
    with _FEEDGEN_LOCK:
        return bytes(gen.atom_str(pretty=True))


def _render_rss(doc: FeedDoc, items: Sequence[FeedItem]) -> bytes:
    gen = _generator(doc, items, FEED_CONTENT_TYPES[".xml"])
    if doc.email:
        gen.managingEditor(f"{doc.email} ({doc.author})")
    gen.link(href=doc.home_url, rel="alternate")  # the last link is RSS <link>
    with _FEEDGEN_LOCK:
        data = bytes(gen.rss_str(pretty=True))
    return _RSS_PLAIN.sub(_hex_references, data)


def _hex_references(match: re.Match[bytes]) -> bytes:
    text = match.group(2).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
    return b"<%s>%s</%s>" % (match.group(1), text, match.group(1))


class _Writer(Protocol):
    def __call__(self, doc: FeedDoc, items: Sequence[FeedItem], /) -> bytes: ...


_WRITERS: dict[str, _Writer] = {RSS: _render_rss, ATOM: _render_atom, JSON: render_json}


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


def _check_articles(articles: Sequence[Article]) -> None:
    """Refuse what no feed can show: a shared entry id, a date without a time zone."""
    seen: dict[str, str] = {}
    for article in articles:
        for name, moment in (("date", article.published), ("updated", article.updated)):
            if moment is not None and moment.utcoffset() is None:
                raise FeedError(f"{article.source}: the {name} {moment.isoformat()} has no time "
                                "zone (give it an offset, or set [site] timezone)")
        other = seen.setdefault(article.id, article.source)
        if other != article.source:
            raise FeedError(f"{article.source}: id {article.id!r} is already used by {other}; "
                            "entry ids must be unique (give one of them its own id)")


def plan_feeds(articles: Sequence[Article], cfg: Config) -> list[OutputFile]:
    """Every feed file under public/, each with its content key and a lazy renderer.

    `articles` are the published ones, newest first (published desc, slug asc). Pure and cheap:
    keys come from digests of the inputs, nothing is rendered until `render()` is called.
    Rendering is thread-safe (feedgen's locale switch is serialized by a module lock).
    """
    _check_articles(articles)
    articles = unify_tags(articles)  # tags differing only in case are one tag
    digests = [article_digest(article) for article in articles]
    items = _Items(articles, cfg)
    return [OutputFile(doc.path, doc_key(doc, digests, _WRITER), partial(_render, doc, items))
            for doc in plan_docs(articles, cfg)]
