"""An entry's media: its image and its attachments (enclosures), as the readers find them.

Pure: front-matter values in, `Attachment` records out, `ArticleError` naming the file, the
line and the fix on bad input. Lengths of files that lie under the site are filled in later,
by the build, which may read files.
"""

from __future__ import annotations

import mimetypes
import re

from ..errors import ArticleError
from .model import Attachment

ATTACHMENT_KEYS = ("url", "type", "length", "duration")
ATTACHMENT_FIX = ("write e.g. 'attachments: [{url: media/episode-1.mp3, type: audio/mpeg, "
                  "length: 12345678}]' (length may be left out for a file under the site)")
_DURATION = re.compile(r"\d+|(\d+:)?[0-5]?\d:[0-5]\d")
_FIRST_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*(?:\"([^\"]+)\"|'([^']+)')", re.IGNORECASE)


def first_image(html: str) -> str:
    """The `src` of the first `<img>` of a body, or ""."""
    if "<img" not in html and "<IMG" not in html:
        return ""
    match = _FIRST_IMAGE.search(html)
    return (match.group(1) or match.group(2) or "") if match else ""


def check_image(value: str, source: str, line: int) -> str:
    """An image URL or site path: one token, no spaces."""
    value = value.strip()
    if value and (any(c.isspace() for c in value) or value.startswith("javascript:")):
        raise ArticleError(source, f"'image: {value}' is not a URL or a path", line=line,
                           fix="write e.g. 'image: media/photo.jpg' or an https:// URL")
    return value


def parse_attachments(value: object, source: str, line: int) -> tuple[Attachment, ...]:
    """The front matter's `attachments:`: a list of {url, type, length, duration} tables
    (type guessed from the file name when left out)."""
    if value in ("", None):
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ArticleError(source, "'attachments' must be a list of tables", line=line,
                           fix=ATTACHMENT_FIX)
    found = []
    for number, item in enumerate(value, start=1):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            raise ArticleError(source, f"attachment {number} must be a table", line=line,
                               fix=ATTACHMENT_FIX)
        unknown = sorted(set(item) - set(ATTACHMENT_KEYS))
        if unknown:
            raise ArticleError(source, f"attachment {number} has unknown key '{unknown[0]}'",
                               line=line, fix=f"use only: {', '.join(ATTACHMENT_KEYS)}")
        url = str(item.get("url", "")).strip()
        if not url or any(c.isspace() for c in url):
            raise ArticleError(source, f"attachment {number} has no valid 'url'", line=line,
                               fix=ATTACHMENT_FIX)
        kind = str(item.get("type", "")).strip() or (mimetypes.guess_type(url)[0] or "")
        if "/" not in kind:
            raise ArticleError(source, f"attachment {number} ({url}) has no media type",
                               line=line, fix="add e.g. 'type: audio/mpeg'")
        raw_length = str(item.get("length", "")).strip()
        if raw_length and not raw_length.isdigit():
            raise ArticleError(source, f"attachment {number}: 'length: {raw_length}' is not a "
                               "number of bytes", line=line, fix="write e.g. 'length: 12345678'")
        duration = str(item.get("duration", "")).strip()
        if duration and not _DURATION.fullmatch(duration):
            raise ArticleError(source, f"attachment {number}: 'duration: {duration}' is not "
                               "a duration", line=line,
                               fix="write seconds or HH:MM:SS, e.g. 'duration: 00:42:10'")
        found.append(Attachment(url, kind, int(raw_length) if raw_length else None, duration))
    return tuple(found)
