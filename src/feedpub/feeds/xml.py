"""RSS 2.0 and Atom 1.0 writers: one feed document and its entries in, bytes out.

The only module that uses feedgen. Entries are written as text by this module and spliced
into the head feedgen writes, which keeps a 50-entry archive page cheap.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.version import version_str as feedgen_version
from lxml import etree

from ..errors import FeedError
from .entries import ATOM, RSS, FeedDoc, FeedItem, escape_text
from .media import (
    ITUNES_NS,
    MEDIA_NS,
    FeedMedia,
    atom_enclosure_xml,
    image_xml,
    itunes_channel_xml,
    itunes_item_xml,
    rss_enclosure_xml,
)
from .plan import FEED_CONTENT_TYPES

WRITER = f"feedgen {feedgen_version}, lxml {etree.__version__}"  # shapes the bytes

ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
GENERATOR = "feedpub"

# RSS elements holding plain text. The RSS Best Practices Profile asks for "&" and "<" in plain
# text to be written as hexadecimal character references (the W3C validator warns otherwise).
_RSS_PLAIN = re.compile(rb"<(title|description|category|dc:creator|managingEditor)>([^<]*)</\1>")

# feedgen formats RSS dates through locale.setlocale(), which is process-wide: two renders in
# different threads could otherwise switch the locale under each other. Every feedgen render
# holds this lock. (Entry dates are formatted by `_rfc822`, which needs no locale.)
_FEEDGEN_LOCK = threading.Lock()


_ENTRIES_MARK = "feedpub-entries"  # a comment where the entries go; text cannot fake it
_ITUNES_MARK = "feedpub-itunes"  # where a podcast's channel tags go
# The prefixes RSS entries are written with, as the feed head must declare them.
_RSS_PREFIXES = tuple(f'xmlns:{prefix}="{uri}"'.encode() for prefix, uri in
                      (("content", CONTENT_NS), ("atom", ATOM_NS), ("dc", DC_NS)))


class _Additions(BaseExtension):
    """Everything feedpub adds to a feedgen document: RFC 5005 `fh:archive`, in RSS the
    atom:links feedgen keeps only for rel="self" (hub, archive links), and the place of the
    entries, a comment that `_splice` replaces.

    feedgen writes the feed head. The entries are written as text by `_atom_entry` and
    `_rss_item`, in the layout lxml's pretty printer gives (but for bodies, which are CDATA
    sections): feedgen's per-entry objects, and even lxml elements, cost several times more
    than the XML itself, and archive pages put every article of the site through this code.
    """

    def __init__(self) -> None:
        self.fmt = ATOM
        self.links: tuple[tuple[str, str], ...] = ()
        self.archived = False
        self.media_ns = False  # an entry carries Media RSS elements
        self.itunes = ""  # channel-level iTunes tags (podcast feeds)

    def extend_ns(self) -> dict[str, str]:
        namespaces = {"dc": DC_NS} if self.fmt == RSS else {}
        if self.archived:
            namespaces["fh"] = HISTORY_NS
        if self.media_ns:
            namespaces["media"] = MEDIA_NS
        if self.itunes:
            namespaces["itunes"] = ITUNES_NS
        return namespaces

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.archived:
            etree.SubElement(feed, f"{{{HISTORY_NS}}}archive")
        feed.append(etree.Comment(_ENTRIES_MARK))
        return feed

    def extend_rss(self, feed: etree._Element) -> etree._Element:
        channel = feed[0]
        for rel, href in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel)
        if self.archived:
            etree.SubElement(channel, f"{{{HISTORY_NS}}}archive")
        if self.itunes:
            channel.append(etree.Comment(_ITUNES_MARK))
        channel.append(etree.Comment(_ENTRIES_MARK))
        return feed


def _splice(document: bytes, depth: int, entries: list[bytes]) -> bytes:
    """`document` with its entries mark (at `depth` levels of indentation) replaced."""
    head, tail = document.split(b"  " * depth + b"<!--" + _ENTRIES_MARK.encode() + b"-->\n")
    return b"".join([head, *entries, tail])


def _attr(text: str) -> str:
    """An attribute value escaped as lxml writes it (between double quotes)."""
    return (escape_text(text).replace('"', "&quot;").replace("\n", "&#10;")
            .replace("\t", "&#9;"))


def _plain(text: str) -> str:
    """Plain text in RSS: "&" and "<" as hexadecimal references (RSS Best Practices)."""
    if not _needs_escape(text):
        return text
    return (text.replace("&", "&#x26;").replace("<", "&#x3C;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def _needs_escape(text: str) -> bool:
    """Whether `text` holds a character that text content escapes (`escape_text`, `_plain`,
    also through html.escape first): most titles, names and summaries hold none, and four
    scans are cheaper than the calls to replace that would copy nothing."""
    return "&" in text or "<" in text or ">" in text or "\r" in text


def _summary_html(summary: str) -> str:
    """A plain-text summary as HTML (html.escape), the way both XML formats start from."""
    return html.escape(summary, quote=False) if _needs_escape(summary) else summary


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MINUTE = timedelta(minutes=1)


def _rfc822(moment: datetime) -> str:
    """`email.utils.format_datetime(moment)`, character for character, formatted here: that
    one goes through timetuple() and strftime("%z") and took about a third of the time of
    writing an RSS item. Feed dates have offsets in whole minutes (`feed_time`); any other
    moment is left to email.utils."""
    offset = moment.utcoffset()
    if offset is None or offset % _MINUTE:
        from email.utils import format_datetime  # here: it imports the socket module

        return format_datetime(moment)
    minutes = offset // _MINUTE
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return (f"{_WEEKDAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} "
            f"{moment.year:04d} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} "
            f"{sign}{hours:02d}{minutes:02d}")


def _atom_entry(item: FeedItem, out: list[bytes]) -> None:
    """Append `item`'s entry to `out`, encoded: the text around the body in one piece
    before it and one after, the body (`FeedItem.html_xml`, encoded once per item) as it
    is. One bytes join for the whole feed then copies each body once."""
    text = ["  <entry>\n    <id>", escape_text(item.id), "</id>\n    <title>",
            escape_text(item.title), "</title>\n    <updated>", item.modified_iso,
            "</updated>\n    <author>\n      <name>", escape_text(item.author),
            "</name>\n    </author>\n"]
    if not item.blank:  # a title-only entry has no content; its alternate link suffices
        text.append('    <content type="html">')
        out += ["".join(text).encode("utf-8"), item.html_xml]
        text = ["</content>\n"]
    text += ['    <link href="', _attr(item.url), '" rel="alternate" type="text/html"/>\n']
    if item.enclosures:
        text.append(atom_enclosure_xml(item.enclosures, "    "))
    if item.summary:
        # Plain text escaped as HTML: literal "<b>" or "&amp;" in a summary reads as the text it
        # is, where type="text" would make validators report HTML in a text construct.
        text += ['    <summary type="html">', escape_text(_summary_html(item.summary)),
                 "</summary>\n"]
    for tag in item.tags:
        text += ['    <category term="', _attr(tag), '"/>\n']
    text += ["    <published>", item.published_iso, "</published>\n"]
    if item.image:
        text.append(image_xml(item.image, "    "))
    text.append("  </entry>\n")
    out.append("".join(text).encode("utf-8"))


def _rss_item(item: FeedItem, podcast: FeedMedia | None, out: list[bytes]) -> None:
    """Append `item`'s RSS item to `out`, encoded (see `_atom_entry`)."""
    text = ["    <item>\n      <title>", _plain(item.title), "</title>\n      <link>",
            escape_text(item.url), "</link>\n"]
    has_body = not item.blank  # empty elements are left out, never written blank
    if item.summary:
        # <description> is HTML in RSS: the plain-text summary is escaped once for it.
        text += ["      <description>", _plain(_summary_html(item.summary)),
                 "</description>\n"]
        if has_body:
            text.append("      <content:encoded>")
            out += ["".join(text).encode("utf-8"), item.html_xml]
            text = ["</content:encoded>\n"]
    elif has_body:
        text += ["      <description>", _plain(item.html), "</description>\n"]
    text += ['      <guid isPermaLink="false">', escape_text(item.id), "</guid>\n"]
    for tag in item.tags:
        text += ["      <category>", _plain(tag), "</category>\n"]
    text += ["      <pubDate>", _rfc822(item.published), "</pubDate>\n",
             "      <atom:updated>", item.modified_iso, "</atom:updated>\n",
             # RSS <author> must be an e-mail address; dc:creator takes a name.
             "      <dc:creator>", _plain(item.author), "</dc:creator>\n"]
    if item.enclosures:
        text.append(rss_enclosure_xml(item.enclosures, "      "))
    if item.image:
        text.append(image_xml(item.image, "      "))
    if podcast is not None:
        text.append(itunes_item_xml(podcast, item.enclosures, item.image, "      "))
    text.append("    </item>\n")
    out.append("".join(text).encode("utf-8"))


def _generator(doc: FeedDoc, mime: str, items: Sequence[FeedItem] = ()) -> FeedGenerator:
    """A FeedGenerator with the feed-level fields both XML formats share."""
    gen = FeedGenerator()
    gen.register_extension("feedpub", _Additions, None)
    gen.feedpub.fmt = doc.fmt
    gen.feedpub.links = doc.links
    gen.feedpub.archived = doc.archived
    gen.feedpub.media_ns = any(item.image for item in items)
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


def render_atom(doc: FeedDoc, items: Sequence[FeedItem]) -> bytes:
    gen = _generator(doc, FEED_CONTENT_TYPES[".atom"], items)
    if doc.media is not None and doc.media.icon:
        gen.icon(doc.media.icon)
    if doc.media is not None and doc.media.logo:
        gen.logo(doc.media.logo)
    author = {"name": doc.author, "email": doc.email} if doc.email else {"name": doc.author}
    gen.author(author)
    for rel, href in doc.links:
        gen.link(href=href, rel=rel)
    gen.link(href=doc.home_url, rel="alternate", type="text/html")
    with _FEEDGEN_LOCK:
        head = bytes(gen.atom_str(pretty=True))
    pieces: list[bytes] = []
    for item in items:
        _atom_entry(item, pieces)
    return _splice(head, 1, pieces)


def render_rss(doc: FeedDoc, items: Sequence[FeedItem]) -> bytes:
    gen = _generator(doc, FEED_CONTENT_TYPES[".xml"], items)
    media = doc.media
    podcast = media if media is not None and media.podcast else None
    if podcast is not None:
        gen.feedpub.itunes = itunes_channel_xml(podcast, "    ")
    if media is not None and media.logo:
        gen.image(url=media.logo, title=doc.title, link=doc.home_url)
    if doc.email:
        gen.managingEditor(f"{doc.email} ({doc.author})")
    gen.link(href=doc.home_url, rel="alternate")  # the last link is RSS <link>
    with _FEEDGEN_LOCK:
        head = bytes(gen.rss_str(pretty=True))
    root = head[:head.index(b">", head.index(b"<rss"))]
    if not all(declaration in root for declaration in _RSS_PREFIXES):
        raise FeedError(f"feedgen {feedgen_version} declares other namespace prefixes than "
                        "content:, atom: and dc:, which feed entries are written with; "
                        "install the feedgen version this feedpub release names")
    head = _RSS_PLAIN.sub(_hex_references, head)
    if podcast is not None:
        mark = b"    <!--" + _ITUNES_MARK.encode() + b"-->\n"
        head = head.replace(mark, gen.feedpub.itunes.encode("utf-8"))
    pieces: list[bytes] = []
    for item in items:
        _rss_item(item, podcast, pieces)
    return _splice(head, 2, pieces)


def _hex_references(match: re.Match[bytes]) -> bytes:
    text = match.group(2).replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
    return b"<%s>%s</%s>" % (match.group(1), text, match.group(1))
