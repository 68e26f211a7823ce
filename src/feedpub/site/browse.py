"""The pages to browse the site by: the paginated home page, one page per tag, the 404 page,
sitemap.xml and robots.txt (pure planning, like `pages`).

Home pages are numbered from the newest: `index.html` holds the newest `[site] per_page`
articles, `page/2.html` the next ones, and so on. Each page's key covers only what it shows
(its own articles, the page count and, on the first page, the topics), so editing one article
re-renders the one page that lists it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

from jinja2 import Environment

from ..articles.model import Article
from ..config import Config
from ..feeds.entries import clean_tags, feed_time
from ..outputs import OutputFile
from .pages import (
    FeedLink,
    FeedLinks,
    TagFeeds,
    key_of,
    key_seed,
    listed_texts,
    render_page,
    site_root,
    template_digest,
    texts_key,
)

if TYPE_CHECKING:
    from hashlib import _Hash


@dataclass(frozen=True)
class Topic:
    """One tag: its page and, when tag feeds are on, its feeds."""

    tag: str
    page: str
    rss: str = ""
    atom: str = ""


@dataclass(frozen=True)
class Pager:
    """Where one home page sits among the others (paths relative to the site's top)."""

    number: int
    count: int
    prev: str  # newer articles
    next: str  # older articles


def home_path(number: int) -> str:
    return "index.html" if number == 1 else f"page/{number}.html"


def topics_of(tags: Sequence[str], slugs: dict[str, str],
              feeds: Sequence[TagFeeds]) -> list[Topic]:
    by_tag = {feed.tag: feed for feed in feeds}
    found = []
    for tag in tags:
        feed = by_tag.get(tag)
        found.append(Topic(tag, f"tags/{slugs[tag]}.html", feed.rss if feed else "",
                           feed.atom if feed else ""))
    return found

# What a home page and a tag page show of each article they list; their keys cover this.
HOME_SHOWS = attrgetter("slug", "title", "published", "tags", "summary")
TAG_SHOWS = attrgetter("slug", "title", "published")


def plan_home(env: Environment, cfg: Config, ordered: Sequence[Article],
              links: Sequence[FeedLink], topics: Sequence[Topic],
              tag_paths: dict[str, str], site_key: str,
              numbers: Iterable[int] | None = None) -> list[OutputFile]:
    """index.html and page/<n>.html: `[site] per_page` articles each, newest first (only
    the pages `numbers`, when given)."""
    size = cfg.site.per_page
    count = max(1, -(-len(ordered) // size))
    templates = template_digest(env, ("base.html.j2", "home.html.j2", "_tags.html.j2"))
    links = FeedLinks(links)  # one list for every page: its HTML is worked out once
    # Every home page links to every feed of the site, tag feeds included.
    seed = key_seed(templates, site_key, links.fingerprint)
    outputs = []
    for number in range(1, count + 1) if numbers is None else numbers:
        shown = ordered[(number - 1) * size:number * size]
        pager = Pager(number, count, home_path(number - 1) if number > 1 else "",
                      home_path(number + 1) if number < count else "")
        root = "" if number == 1 else "../"
        outputs.append(OutputFile(
            home_path(number),
            _home_key(seed, shown, pager, topics if number == 1 else (), tag_paths),
            _home_render(env, cfg, shown, pager, root, links, topics, tag_paths),
            cost=len(shown) + 4, near=(number - 1) * size))
    return outputs


def _home_key(seed: _Hash, shown: Sequence[Article], pager: Pager, topics: Sequence[Topic],
              tag_paths: dict[str, str]) -> Callable[[], str]:
    def key() -> str:  # worked out by the process that needs it
        paths = tuple(sorted({(t, tag_paths.get(t)) for a in shown for t in a.tags}))
        found = seed.copy()
        found.update(repr((pager, tuple(topics), paths)).encode("utf-8"))
        found.update(texts_key(listed_texts(shown, summary=True)))  # HOME_SHOWS
        return found.hexdigest()
    return key


def _home_render(env: Environment, cfg: Config, shown: Sequence[Article], pager: Pager,
                 root: str, links: Sequence[FeedLink], topics: Sequence[Topic],
                 tag_paths: dict[str, str]) -> Callable[[], bytes]:
    def render() -> bytes:
        return render_page(env, "home.html.j2", cfg, root=root, feeds=links, articles=shown,
                           page=pager, topics=topics if pager.number == 1 else (),
                           tag_paths=tag_paths).encode("utf-8")
    return render


def plan_tag_pages(env: Environment, cfg: Config, ordered: Sequence[Article],
                   topics: Sequence[Topic],
                   links_for: Callable[[Sequence[str]], Sequence[FeedLink]],
                   site_key: str) -> list[OutputFile]:
    """tags/<slug>.html: every article carrying the tag, newest first."""
    members: dict[str, list[Article]] = {topic.tag: [] for topic in topics}
    for article in ordered:
        for tag in clean_tags(article.tags):
            listed = members.get(tag)
            if listed is not None:
                listed.append(article)
    seed = key_seed(template_digest(env, ("base.html.j2", "tag.html.j2")), site_key)
    outputs = []
    for topic in topics:
        listed = members[topic.tag]
        links = links_for((topic.tag,))

        def key(topic: Topic = topic, listed: list[Article] = listed) -> str:
            found = seed.copy()
            found.update(repr(topic).encode("utf-8"))
            found.update(texts_key(listed_texts(listed, summary=False)))  # TAG_SHOWS
            return found.hexdigest()

        def render(topic: Topic = topic, listed: list[Article] = listed,
                   links: Sequence[FeedLink] = links) -> bytes:
            return render_page(env, "tag.html.j2", cfg, root="../", feeds=links, topic=topic,
                               articles=listed, canonical=cfg.site.base_url + topic.page
                               ).encode("utf-8")

        outputs.append(OutputFile(topic.page, key, render, cost=len(listed) * 2 // 5 + 4))
    return outputs


def plan_not_found(env: Environment, cfg: Config, links: Sequence[FeedLink],
                   site_key: str) -> OutputFile:
    """404.html, for the web server to show at any depth: its links start from the site's
    path ("/style.css"), never from the page's own folder."""
    templates = template_digest(env, ("base.html.j2", "404.html.j2"))
    return OutputFile("404.html", key_of(templates, site_key, tuple(links)),
                      lambda: render_page(env, "404.html.j2", cfg, root=site_root(cfg),
                                          feeds=links).encode("utf-8"))


def _lastmod(moment: datetime) -> str:
    return feed_time(moment).isoformat()


def plan_sitemap(cfg: Config, ordered: Sequence[Article], homes: Sequence[OutputFile],
                 topics: Sequence[Topic]) -> list[OutputFile]:
    """sitemap.xml (every page, `lastmod` from the articles' `updated`) and robots.txt."""
    base = cfg.site.base_url
    newest: dict[str, datetime] = {}
    for article in ordered:
        for tag in clean_tags(article.tags):
            if tag not in newest or article.modified > newest[tag]:
                newest[tag] = article.modified

    found: list[tuple[str, str]] = []

    def rows() -> list[tuple[str, str]]:  # the key and the file need them: worked out once
        if found:
            return found
        size = cfg.site.per_page
        for number, home in enumerate(homes, start=1):
            shown = ordered[(number - 1) * size:number * size]
            found.append((home.path, _lastmod(max(a.modified for a in shown)) if shown else ""))
        found.extend((a.url_path, _lastmod(a.modified)) for a in ordered)
        found.extend((t.page, _lastmod(newest[t.tag]) if t.tag in newest else "")
                     for t in topics)
        return found

    def key() -> str:
        # One line a page: a path has no space or line break, a date neither.
        found = hashlib.sha256(repr(base).encode("utf-8", "surrogatepass"))
        found.update("\n".join([f"{path} {lastmod}" for path, lastmod in rows()]).encode(
            "utf-8", "surrogatepass"))
        return found.hexdigest()

    def render() -> bytes:
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n'
               '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n']
        for path, lastmod in rows():
            out.append(f"  <url><loc>{_xml_escape(base + path)}</loc>")
            out.append(f"<lastmod>{lastmod}</lastmod></url>\n" if lastmod else "</url>\n")
        out.append("</urlset>\n")
        return "".join(out).encode("utf-8")

    robots = f"User-agent: *\nAllow: /\n\nSitemap: {base}sitemap.xml\n".encode()
    return [OutputFile("sitemap.xml", key, render, cost=len(ordered) // 6 + 4),
            OutputFile("robots.txt", hashlib.sha256(robots).hexdigest(), lambda: robots)]


def _xml_escape(text: str) -> str:
    """`xml.sax.saxutils.escape`, whose module imports urllib.request (about 15 ms)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
