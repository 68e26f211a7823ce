"""Which feed files exist, which entries each holds and how they link (RFC 5005 archives).

Pure: articles and config in, `FeedDoc` values out. Scheme, with A = `feeds.archive_size` and
n articles: the oldest A entries form `archive/1`, the next A `archive/2` and so on; the F =
n // A full pages are archive documents (`fh:archive`) whose entries and links never change
as newer articles arrive. Page F + 1 is the open page: it holds the remaining n - F*A newest
entries (possibly none), is not marked as archived and links back to page F. A full page k
links `next-archive` to page k + 1, which always exists, so page k never needs a new link.
The subscription feeds (`feed.xml`, `atom.xml`, `feed.json`) hold the newest `feeds.size`
entries and link `prev-archive` (JSON Feed: `next_url`) to the open page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import attrgetter

from ..articles.model import Article
from ..articles.scan import canonical_spellings
from ..config import Config
from ..errors import FeedError
from .entries import ATOM, EMPTY_FEED_DATE, JSON, RSS, FeedDoc, clean_tags, feed_time, xml_text
from .media import feed_media

# The media type of each feed file, by suffix (the server answers with these).
FEED_CONTENT_TYPES: dict[str, str] = {
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
}
SUBSCRIPTION_PATHS = {RSS: "feed.xml", ATOM: "atom.xml", JSON: "feed.json"}
SUFFIXES = {RSS: ".xml", ATOM: ".atom", JSON: ".json"}
ARCHIVE_DIR = "archive"
TAG_DIR = "tags"
_MAX_SLUG = 60

# Letters NFKD does not split into ASCII base + accent.
_TRANSLITERATE = str.maketrans({
    "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "đ": "d",
    "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th", "ð": "d", "Ð": "d", "ı": "i",
})


def _ascii_slug(tag: str) -> str:
    text = unicodedata.normalize("NFKD", tag.translate(_TRANSLITERATE))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:_MAX_SLUG].rstrip("-")


def _short_hash(tag: str) -> str:
    """First 8 hex digits of the SHA-256 of the tag's case-folded form, so the hash (and the
    file name) stays when the site's spelling of the tag changes case ("Ελλάδα" -> "ελλάδα")."""
    return hashlib.sha256(tag.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:8]


def tag_slugs(tags: Iterable[str]) -> dict[str, str]:
    """Map each tag to the file name stem of its feeds, `tags/<slug>.xml|.atom`.

    The slug is the tag transliterated to lower-case ASCII ("Café Crème" -> "cafe-creme").
    A tag with no ASCII letter or digit left ("日本語") gets "tag-<hash>", and tags whose slugs
    collide ("C++" and "C#") all get "<slug>-<hash>", the hash being the first 8 hex digits of
    the sha256 of the case-folded tag: stable, and distinct tags never share a file. Spellings
    that differ only in case ("Food", "food") are one tag and share one slug, whichever
    spelling the site uses. The build passes one spelling per tag (see
    `articles.scan.canonical_tags`), but this is public API that may get several, so it merges
    them.
    """
    unique = sorted(set(tags))
    spelling: dict[str, str] = {}
    for tag in unique:
        spelling.setdefault(tag.casefold(), tag)
    distinct = sorted(set(spelling.values()))
    base = {tag: _ascii_slug(tag) for tag in distinct}
    counts = Counter(base.values())
    slugs = {}
    for tag in distinct:
        slug = base[tag]
        if not slug:
            slug = f"tag-{_short_hash(tag)}"
        elif counts[slug] > 1:
            slug = f"{slug}-{_short_hash(tag)}"
        slugs[tag] = slug
    taken = Counter(slugs.values())
    clash = sorted(tag for tag, slug in slugs.items() if taken[slug] > 1)
    if clash:
        raise FeedError(f"tags {clash!r} map to the same feed file name; rename one of them")
    return {tag: slugs[spelling[tag.casefold()]] for tag in unique}


def archive_path(number: int, fmt: str) -> str:
    """Path (relative to public/) of archive page `number` in format `fmt`."""
    return f"{ARCHIVE_DIR}/{number}{SUFFIXES[fmt]}"


def _updated(modified: Sequence[datetime], entries: Sequence[int]) -> datetime:
    """A feed's date is the latest change among its own entries, never the build time."""
    if not entries:
        return EMPTY_FEED_DATE
    return feed_time(max(map(modified.__getitem__, entries)))


def redated(doc: FeedDoc, articles: Sequence[Article]) -> FeedDoc:
    """`doc` dated anew from its entries in `articles` (one of them changed its `updated`),
    as `plan_docs` would date it: the same entries, only `updated` may differ."""
    # Replaced even when equal: one instant written with another offset is another text.
    return dataclasses.replace(doc, updated=_updated(
        [articles[i].modified for i in doc.entries], range(len(doc.entries))))


class _Planner:
    """Builds the FeedDocs of one site; holds only the inputs of one `plan_docs` call."""

    def __init__(self, articles: Sequence[Article], cfg: Config) -> None:
        site = cfg.site
        if not xml_text(site.title).strip():
            raise FeedError("config.toml: 'site.title' is empty; feeds need a title "
                            "(set title = \"...\" under [site])")
        self.articles = articles
        self.modified = [a.modified for a in articles]
        self.cfg = cfg
        self.base = site.base_url
        self.title = xml_text(site.title)
        self.description = xml_text(site.description).strip() or self.title
        self.hub = cfg.feeds.websub_hub.strip()
        self.media = feed_media(cfg)
        self.language = xml_text(site.language)
        self.author = xml_text(site.author).strip() or self.title
        self.email = xml_text(site.email)

    def doc(self, fmt: str, path: str, title: str, feed_id: str, entries: Sequence[int],
            links: list[tuple[str, str]], archived: bool = False) -> FeedDoc:
        return FeedDoc(
            fmt=fmt, path=path, title=title, feed_id=feed_id, self_url=self.base + path,
            home_url=self.base, description=self.description, language=self.language,
            author=self.author, email=self.email,
            updated=_updated(self.modified, entries), links=tuple(links), archived=archived,
            entries=tuple(entries), media=self.media,
        )

    def chain(self) -> list[FeedDoc]:
        """Subscription feeds and the archive pages behind them."""
        count = len(self.articles)
        size = self.cfg.feeds.archive_size
        full = count // size
        pages = full + 1 if count else 0  # the open page exists (maybe empty) once any does
        feed_id = self.base + SUBSCRIPTION_PATHS[ATOM]
        hub = [("hub", self.hub)] if self.hub else []
        docs = []
        for fmt, path in SUBSCRIPTION_PATHS.items():
            links = list(hub)
            if pages:
                links.append(("prev-archive", self.base + archive_path(pages, fmt)))
            newest = range(min(self.cfg.feeds.size, count))
            docs.append(self.doc(fmt, path, self.title, feed_id, newest, links))
        for number in range(1, pages + 1):
            # Page k holds oldest-first positions [(k-1)*size, k*size), listed newest first.
            entries = range(max(0, count - number * size), count - (number - 1) * size)
            for fmt in SUFFIXES:
                links = []
                if number > 1:
                    links.append(("prev-archive", self.base + archive_path(number - 1, fmt)))
                if number < pages:
                    links.append(("next-archive", self.base + archive_path(number + 1, fmt)))
                links.append(("current", self.base + SUBSCRIPTION_PATHS[fmt]))
                title = f"{self.title} (archive {number})"
                docs.append(self.doc(fmt, archive_path(number, fmt), title, feed_id, entries,
                                     links, archived=number <= full))
        return docs

    def tags(self) -> list[FeedDoc]:
        """RSS and Atom feeds of the newest `feeds.size` entries of each tag."""
        members: dict[str, list[int]] = {}
        limit = self.cfg.feeds.size
        # The build's articles already have one spelling per tag; `plan_feeds` is public and
        # may get articles that were not arranged, so case variants are merged here too.
        # Sites reuse a few tag lists: each is cleaned and spelled once.
        lists = Counter(map(attrgetter("tags"), self.articles))
        cleaned = {tags: clean_tags(tags) for tags in lists}
        counts: Counter[str] = Counter()
        for tags, count in lists.items():
            for tag in cleaned[tags]:
                counts[tag] += count
        spelling = canonical_spellings(counts)
        spelled = {tags: tuple(dict.fromkeys(spelling[t] for t in clean))
                   for tags, clean in cleaned.items() if clean}
        for index, tags in enumerate(map(attrgetter("tags"), self.articles)):
            unique = spelled.get(tags)
            if unique is None:
                continue
            for tag in unique:
                bucket = members.setdefault(tag, [])
                if len(bucket) < limit:
                    bucket.append(index)
        hub = [("hub", self.hub)] if self.hub else []
        docs = []
        for tag, slug in sorted(tag_slugs(members).items(), key=lambda pair: pair[1]):
            for fmt in (RSS, ATOM):
                path = f"{TAG_DIR}/{slug}{SUFFIXES[fmt]}"
                docs.append(self.doc(fmt, path, f"{self.title}: {tag}",
                                     self.base + f"{TAG_DIR}/{slug}{SUFFIXES[ATOM]}",
                                     members[tag], list(hub)))
        return docs


def plan_docs(articles: Sequence[Article], cfg: Config) -> list[FeedDoc]:
    """Every feed file of the site, in a stable order. `articles` are newest first."""
    planner = _Planner(articles, cfg)
    docs = planner.chain()
    if cfg.feeds.tag_feeds:
        docs.extend(planner.tags())
    return docs
