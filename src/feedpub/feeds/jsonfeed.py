"""JSON Feed 1.1 writer (https://jsonfeed.org/version/1.1).

Archive pages are chained with `next_url`, which JSON Feed defines as the page of older items:
the subscription feed points to the newest archive page, each page to the one before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from .entries import FeedDoc, FeedItem
from .media import Enclosure

VERSION_URL = "https://jsonfeed.org/version/1.1"
LIBRARY = f"orjson {orjson.__version__}"  # shapes the bytes: part of the feed keys


# Bytes that JSON writes escaped: the C0 controls, the quotation mark and the backslash.
_SPECIAL = bytes([*range(0x20), 0x22, 0x5C])
_NOT_SPECIAL = bytes(b for b in range(256) if b not in _SPECIAL)
_REPLACED = frozenset(b'"\\\n\t')  # escaped here by replacing them; any other: by orjson


def json_text(data: bytes) -> bytes:
    """`orjson.dumps(text)` of the text whose UTF-8 form is `data`, for an article body:
    the quotation marks, backslashes, line feeds and tabs it holds are escaped in the bytes
    as they are (orjson escapes nothing else such a text holds: no other control, no
    character beyond ASCII), which spares decoding the body to encode it again. A text with
    any other control character is left to orjson. The feeds' texts hold no lone surrogate
    (the readers and `xml_text` remove them), which orjson would refuse and this would not."""
    special = data.translate(None, _NOT_SPECIAL)
    if not special:
        return b"".join((b'"', data, b'"'))
    if not _REPLACED.issuperset(special):
        return orjson.dumps(data.decode("utf-8", "surrogatepass"))
    if b"\\" in special:
        data = data.replace(b"\\", b"\\\\")
    if b'"' in special:
        data = data.replace(b'"', b'\\"')
    if b"\n" in special:
        data = data.replace(b"\n", b"\\n")
    if b"\t" in special:
        data = data.replace(b"\t", b"\\t")
    return b"".join((b'"', data, b'"'))


def _item(item: FeedItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "content_html": orjson.Fragment(json_text(item.html_utf8)),
    }
    if item.summary:
        data["summary"] = item.summary
    if item.image:
        data["image"] = item.image
    data["date_published"] = item.published_iso
    data["date_modified"] = item.modified_iso
    data["authors"] = [{"name": item.author}]
    if item.tags:
        data["tags"] = list(item.tags)
    if item.enclosures:
        data["attachments"] = [_attachment(e) for e in item.enclosures]
    return data


def _attachment(enclosure: Enclosure) -> dict[str, Any]:
    data: dict[str, Any] = {"url": enclosure.url, "mime_type": enclosure.type,
                            "size_in_bytes": enclosure.length}
    if enclosure.seconds:
        data["duration_in_seconds"] = enclosure.seconds
    return data


def render_json(doc: FeedDoc, items: Sequence[FeedItem]) -> bytes:
    """The JSON Feed document for `doc` (UTF-8, keys in a fixed order, so byte-stable)."""
    data: dict[str, Any] = {
        "version": VERSION_URL,
        "title": doc.title,
        "home_page_url": doc.home_url,
        # An archive page names the subscription feed: that is the feed a reader follows.
        "feed_url": doc.link("current") or doc.self_url,
        "description": doc.description,
    }
    if doc.media is not None and doc.media.logo:
        data["icon"] = doc.media.logo
    if doc.media is not None and (doc.media.icon or doc.media.logo):
        data["favicon"] = doc.media.icon or doc.media.logo
    if doc.language:
        data["language"] = doc.language
    data["authors"] = [{"name": doc.author}]
    hub = doc.link("hub")
    if hub:
        data["hubs"] = [{"type": "WebSub", "url": hub}]
    older = doc.link("prev-archive")
    if older:
        data["next_url"] = older
    data["items"] = [_item(item) for item in items]
    # orjson: compact UTF-8, keys in insertion order, only the escapes JSON requires; about
    # fifteen times faster than the json module on article bodies.
    return orjson.dumps(data) + b"\n"
