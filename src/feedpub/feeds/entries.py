"""Values the feed writers share: one feed document (`FeedDoc`) and one entry (`FeedItem`).

Pure functions only. `prepare_item` turns an Article into what every format prints (absolute
links, XML-safe text); `article_digest` and `doc_key` fingerprint the inputs of a file so a
rebuild can tell unchanged files without rendering them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import overload
from urllib.parse import quote, urljoin

from lxml import etree

from ..articles.model import Article, has_forbidden, strip_forbidden
from .media import Enclosure, FeedMedia, item_media

# Bump when the rendered bytes change for the same input (new element, other layout).
FORMAT_VERSION = "feedpub-feeds-6"

RSS = "rss"
ATOM = "atom"
JSON = "json"

# Updated date of a feed without entries: fixed, so an empty feed is deterministic too (and
# after 1990, which feed validators take as the earliest plausible date).
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)

# Attributes lxml.html treats as links. A body where each of them holds an http(s) URL (and
# with no style attribute or element, which may hold CSS url()) has nothing to resolve and is
# not re-parsed: the cheap, common case.
_LINK_ATTRS = frozenset({
    "action", "archive", "background", "cite", "classid", "codebase", "data", "href",
    "longdesc", "profile", "src", "usemap", "dynsrc", "lowsrc", "formaction", "xlink:href",
    "content", "value",
})
_NAME_BEFORE = re.compile(r"([A-Za-z:-]+)\s*$")
_ABSOLUTE = ("http://", "https://")


def may_have_relative_link(html: str) -> bool:
    """False only when no link in `html` can be relative (errs towards True)."""
    if "<style" in html or "<STYLE" in html:  # CSS url() and @import inside
        return True
    pos = html.find("=")
    while pos != -1:
        name = _NAME_BEFORE.search(html, max(0, pos - 24), pos)
        attribute = name.group(1).lower() if name else ""
        if attribute == "style":  # CSS url() inside
            return True
        if attribute in _LINK_ATTRS:
            value = html[pos + 1:pos + 24].lstrip().lstrip("\"'").lower()
            if not value.startswith(_ABSOLUTE):
                return True
        pos = html.find("=", pos + 1)
    return False


def xml_text(value: str) -> str:
    """`value` without the characters feeds must not carry (`articles.FORBIDDEN_CHARS`: what
    XML 1.0 forbids or discourages). The article parser removes them already; feeds strip them
    again so that no input can make a feed unparsable or flagged."""
    return strip_forbidden(value)


def absolute_links(html: str, base_url: str, page_url: str) -> str:
    """Make every link in an HTML fragment absolute.

    Paths resolve against the site's `base_url` (articles are written with site-relative links);
    a bare `#fragment` resolves against the article's own page. Feed readers show the HTML away
    from the site, where a relative link would break.
    """
    if not may_have_relative_link(html):
        return html

    def resolve(link: str) -> str:
        if link.startswith("#"):
            return page_url + link
        return urljoin(base_url, link)

    import lxml.html  # here: most bodies have no relative link, and it costs 10 ms to import

    try:
        wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html  # nothing parseable to rewrite; keep the body as it is
    wrapper.rewrite_links(resolve, resolve_base_href=False)
    out = lxml.html.tostring(wrapper, encoding="unicode")
    return out[len("<div>"):-len("</div>")]


def feed_time(moment: datetime) -> datetime:
    """`moment` as feeds write it: whole seconds (RSS dates cannot show fractions, so no format
    shows them) and an offset in whole minutes (RFC 3339 and RFC 822 have no seconds in
    offsets; an old local mean time such as +00:53:28 is written in UTC instead)."""
    moment = moment.replace(microsecond=0)
    offset = moment.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        return moment.astimezone(UTC)
    return moment


@dataclass(frozen=True)
class FeedItem:
    """One entry as every feed format prints it: absolute URLs, XML-safe text.

    The last three fields are worked out once per entry (`prepare_item`), though the RSS,
    Atom and JSON pages of an archive all use them.
    """

    id: str
    url: str
    title: str
    html_utf8: bytes  # the body, its links absolute, UTF-8 (`html` gives it as text)
    summary: str
    author: str
    tags: tuple[str, ...]
    published: datetime
    modified: datetime
    html_xml: bytes  # the body as XML element content, UTF-8 (`xml_content`)
    published_iso: str
    modified_iso: str
    image: str = ""  # absolute URL of the entry's picture
    enclosures: tuple[Enclosure, ...] = ()

    @property
    def html(self) -> str:
        """The body as text, decoded on each use."""
        return self.html_utf8.decode("utf-8", "surrogatepass")

    @property
    def blank(self) -> bool:
        """No body (`not html.strip()`): a title-only entry."""
        return blank_utf8(self.html_utf8)


def blank_utf8(data: bytes) -> bool:
    """`not text.strip()` of the text whose UTF-8 form is `data`; a body that starts with a
    tag, as nearly all do, is told at its first byte."""
    if not data:
        return True
    if data[0] < 0x80 and not chr(data[0]).isspace():
        return False
    return data.decode("utf-8", "surrogatepass").isspace()


def xml_content(html: bytes) -> bytes:
    """HTML (its UTF-8) as the content of an XML element: one CDATA section, which
    needs no escaping (a "]]>" inside is split over two sections). With a carriage return,
    which a parser would read as a line feed inside CDATA, the text is escaped instead
    (`escape_text`). A plain-text reader's body (`Article.plain_body`) holds neither, and
    `prepare_item` wraps its UTF-8 form as it is.

    Bytes, encoded once for every document that shows the entry: the XML writers join their
    entries as bytes, so a body is never copied into a str as wide as the widest character
    of the whole feed (four bytes a character once one entry holds an emoji) and encoded
    again with all of it."""
    if b"\r" in html:
        return escape_text(html.decode("utf-8", "surrogatepass")).encode("utf-8")
    return b"".join((b"<![CDATA[", html.replace(b"]]>", b"]]]]><![CDATA[>"), b"]]>"))


def escape_text(text: str) -> str:
    """Text content escaped for XML as lxml writes it. Most texts (ids, titles, URLs, names)
    need nothing: telling so takes four scans, not four calls that each copy nothing."""
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("\r", "&#13;"))
    return text


def clean_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """The article's tags, XML-safe, blank ones and repeats dropped, order kept."""
    return _clean_tags(tuple(tags))


@lru_cache(maxsize=4096)  # sites reuse a few tag lists many times over
def _clean_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = xml_text(tag).strip()
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


_SAFE_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")  # what `quote` leaves as it is


def prepare_item(article: Article, base_url: str, site_author: str) -> FeedItem:
    """What the feeds show of `article`. Costly only when its body has relative links."""
    path = article.url_path
    url = base_url + (path if _SAFE_PATH.fullmatch(path) else
                      quote(path, safe="/%:@!$&'()*+,;=~"))
    title, summary, entry_id = article.title, article.summary, article.id
    author = article.author or ""
    if article.plain_body:
        # The plain-text reader's body: checked, no links, no carriage return, no "]]>";
        # its UTF-8 form goes into every feed as it is.
        body = article.html_utf8
        html_xml = b"".join((b"<![CDATA[", body, b"]]>"))
    else:
        html = article.html
        # The parser has removed what feeds must not carry; text from elsewhere is checked.
        if has_forbidden("".join((title, html, summary, entry_id, author))):
            title, html, summary, entry_id, author = (
                xml_text(title), xml_text(html), xml_text(summary), xml_text(entry_id),
                xml_text(author))
        html = absolute_links(html, base_url, url)
        body = html.encode("utf-8", "surrogatepass")
        html_xml = xml_content(body)
    title = title if title and not title.isspace() else article.slug
    if blank_utf8(body) and (not summary or summary.isspace()):
        summary = title  # a title-only entry: readers and validators want some text
    published, modified = feed_time(article.published), feed_time(article.modified)
    image, enclosures = item_media(article, base_url)
    return FeedItem(
        id=entry_id,
        url=url,
        title=title,
        html_utf8=body,
        summary=summary,
        author=author.strip() or site_author,
        tags=clean_tags(article.tags),
        published=published,
        modified=modified,
        html_xml=html_xml,
        published_iso=published.isoformat(),
        modified_iso=modified.isoformat(),
        image=xml_text(image),
        enclosures=enclosures,
    )


def article_digest(article: Article) -> bytes:
    """sha256 of every Article field a feed entry is made from."""
    body = article.html_utf8
    published = article.published.isoformat()
    modified = published if article.updated is None else article.updated.isoformat()
    parts = (article.id, article.slug, article.title, article.summary,
             article.author or "", published, modified, *article.tags)
    if article.image or article.attachments:
        parts = (*parts, article.image, repr(article.attachments))
    # The lengths first, then the fields, then the body's bytes as they are: unambiguous,
    # and one hash per article.
    lengths = ",".join([str(len(part)) for part in parts])
    digest = hashlib.sha256(f"{len(body)};{lengths}\n{''.join(parts)}".encode(
        "utf-8", "surrogatepass"))
    digest.update(body)
    return digest.digest()


class ArticleDigests(Sequence[bytes]):
    """`article_digest` of each of `articles`, each worked out on first use: a build worker
    computes only those of the files it writes."""

    def __init__(self, articles: Sequence[Article]) -> None:
        self._articles = articles
        self._digests: list[bytes | None] = [None] * len(articles)

    def __len__(self) -> int:
        return len(self._digests)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        digest = self._digests[index]
        if digest is None:
            digest = self._digests[index] = article_digest(self._articles[index])
        return digest


@dataclass(frozen=True)
class FeedDoc:
    """One feed file, except its entries' bodies: everything the writers need to know.

    `entries` index the planned article list (newest first). `links` are (rel, absolute URL)
    pairs beyond self/alternate, in output order: hub, prev-archive, next-archive, current.
    `archived` marks an RFC 5005 archive document that will not change (`fh:archive`).
    """

    fmt: str
    path: str
    title: str
    feed_id: str
    self_url: str
    home_url: str
    description: str
    language: str
    author: str
    email: str
    updated: datetime
    links: tuple[tuple[str, str], ...]
    archived: bool
    entries: tuple[int, ...]
    media: FeedMedia | None = None  # logo, icon, podcast settings

    def link(self, rel: str) -> str | None:
        """The URL of the first link with relation `rel`, if any."""
        return next((href for name, href in self.links if name == rel), None)


def doc_key(doc: FeedDoc, digests: Sequence[bytes], writer: str = "") -> str:
    """sha256 hex of everything that determines the file's bytes: the header, the entries'
    digests, FORMAT_VERSION and `writer` (the versions of the libraries that write it)."""
    head = (FORMAT_VERSION, writer, doc.fmt, doc.path, doc.title, doc.feed_id, doc.self_url,
            doc.home_url, doc.description, doc.language, doc.author, doc.email,
            doc.updated.isoformat(), doc.links, doc.archived, doc.media)
    digest = hashlib.sha256(repr(head).encode("utf-8", "surrogatepass"))
    for index in doc.entries:
        digest.update(digests[index])
    return digest.hexdigest()
