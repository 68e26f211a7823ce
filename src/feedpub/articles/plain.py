"""The plain-text article format, the primary one. What both formats share (ids, summaries,
dates) is in `fields`; the Markdown reader is `markdown`, imported only when a site has
Markdown articles (its libraries take longer to import than a small site takes to build).

Both readers are pure: text in, `Article` out, `ArticleError` (file, line, fix) on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

from ..config import SiteConfig
from ..errors import ArticleError
from .fields import (
    at_publish_time,
    entry_id,
    in_feed_range,
    iso_date,
    split_tags,
    summarize,
    written_offset,
)
from .media import check_image
from .model import Article, slug_for

HEADER_FIX = "start the file with a line such as 'date 2024-03-05 Title of the entry'"
_HEADER = re.compile(r"^\s*date(?:\s+(\S+))?(?:\s+(.*?))?\s*$", re.IGNORECASE)
_FIELD = re.compile(r"^\s*(by|tags|draft|image)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_YES_NO = {"yes": True, "true": True, "no": False, "false": False}
_SENTENCE_END = tuple(".!?:;…,\"'”’»)]")
SUBHEADING_MAX = 80
_YEAR = re.compile(r"\d{4}")


def _header_when(value: str, source: str, line: int, site: SiteConfig) -> datetime:
    """`YYYY-MM-DD` (placed at the site's publish time) or `YYYY-MM-DDTHH:MM[:SS][+HH:MM]`."""
    if "T" not in value:
        return in_feed_range(at_publish_time(iso_date(value, source, line), site), value,
                         source, line)
    iso_date(value.split("T", 1)[0], source, line)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ArticleError(source, f"'{value}' is not a valid date and time", line=line,
                           fix="write e.g. 2024-03-05T14:30 or 2024-03-05T14:30+01:00") from exc
    if parsed.tzinfo is not None:
        parsed = written_offset(parsed, value, source, line)
    return in_feed_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=site.tz), value,
                     source, line)


_MONTHS = {name: number for number, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec")), start=1) for name in names}
_MONTH_FIRST = re.compile(r"([a-z]+)\.? (\d{1,2}),? (\d{4})")
_DAY_FIRST = re.compile(r"(\d{1,2}) ([a-z]+)\.?,? (\d{4})")
_NUMERIC = re.compile(r"(\d{4})([/.-])(\d{1,2})\2(\d{1,2})")


def _common_date(text: str) -> date | None:
    """The everyday English forms, without dateutil's cost; None if not one of them."""
    folded = " ".join(text.lower().split())
    try:
        if match := _MONTH_FIRST.fullmatch(folded):
            month = _MONTHS.get(match.group(1))
            return date(int(match.group(3)), month, int(match.group(2))) if month else None
        if match := _DAY_FIRST.fullmatch(folded):
            month = _MONTHS.get(match.group(2))
            return date(int(match.group(3)), month, int(match.group(1))) if month else None
        if match := _NUMERIC.fullmatch(folded):
            return date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
    except ValueError:
        return None
    return None


def _byline_date(line: str) -> date | None:
    """A human-readable date line ("March 4, 2024", "4 March 2024", "2024/03/04"), else None."""
    stripped = line.strip()
    if len(stripped) > 40 or not _YEAR.search(stripped):
        return None
    if (common := _common_date(stripped)) is not None:
        return common
    from dateutil import parser as dateparser  # only for the less common forms

    try:
        parsed = dateparser.parse(stripped, fuzzy=False)
    except (ValueError, OverflowError):
        return None
    return parsed.date()


def _paragraphs(lines: list[str], start: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) for each blank-line separated block from index `start`."""
    block: list[str] = []
    first = 0
    for index in range(start, len(lines)):
        line = lines[index].strip()
        if line:
            if not block:
                first = index + 1
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def parse_plain(text: str, source: str, site: SiteConfig, *, checked: bool = False) -> Article:
    """The plain-text format: `date YYYY-MM-DD Title`, optional By:/Tags:/Draft:/date lines,
    body. `checked`: `text` is free of FORBIDDEN_CHARS and carriage returns (parse_article
    makes it so), which the Article then records as `plain_body`."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ArticleError(source, "the file is empty", line=1, fix=HEADER_FIX)
    match = _HEADER.match(lines[first])
    if not match:
        raise ArticleError(source, f"the first line has no 'date' header: {lines[first][:60]!r}",
                           line=first + 1, fix=HEADER_FIX)
    raw_date, title = match.group(1), (match.group(2) or "").strip()
    if not raw_date:
        raise ArticleError(source, "the 'date' header has no date", line=first + 1,
                           fix=HEADER_FIX)
    published = _header_when(raw_date, source, first + 1, site)
    day = date.fromisoformat(raw_date.split("T", 1)[0])  # as written: the id never moves
    if not title:
        raise ArticleError(source, "the 'date' header has no title after the date",
                           line=first + 1, fix="put the title after the date on the first line")

    author: str | None = None
    tags: tuple[str, ...] = ()
    draft: bool | None = None
    byline: date | None = None
    image = ""
    blocks = list(_paragraphs(lines, first + 1))
    body_start = 0
    for number, block in blocks:
        if len(block) != 1:
            break
        field = _FIELD.match(block[0])
        name = field.group(1).lower() if field else ""
        if field and name == "by" and author is None:
            author = field.group(2) or None
        elif field and name == "tags" and not tags:
            tags = split_tags(field.group(2))
        elif field and name == "draft" and draft is None:
            draft = _yes_no(field.group(2), source, number)
        elif field and name == "image" and not image:
            image = check_image(field.group(2), source, number)
        elif byline is None and (parsed := _byline_date(block[0])) is not None:
            byline = parsed
        else:
            break
        body_start += 1

    # html.escape(quote=False), inlined, and only in a text that needs it (the header's may
    # be the one that does): this loop runs for every paragraph of the site.
    escape = "&" in text or "<" in text or ">" in text
    parts: list[str] = []  # each element's tags and text, joined once
    first_paragraph = ""
    for _, block in blocks[body_start:]:
        joined = block[0] if len(block) == 1 else " ".join(block)
        escaped = (joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   if escape else joined)
        # A short line standing alone without sentence-ending punctuation is a subheading.
        if len(block) == 1 and len(joined) <= SUBHEADING_MAX and not joined.endswith(
                _SENTENCE_END):
            parts += ("<h2>", escaped, "</h2>\n")
        else:
            parts += ("<p>", escaped, "</p>\n")
            first_paragraph = first_paragraph or joined
    if parts:
        parts[-1] = parts[-1][:-1]  # no line break after the last element
    slug = slug_for(source)
    return Article(
        id=entry_id(site, day, slug),
        slug=slug,
        title=title,
        published=published,
        html_utf8="".join(parts).encode("utf-8"),
        source=source,
        author=author,
        tags=tags,
        summary=summarize(first_paragraph),
        byline_date=byline,
        draft=bool(draft),
        format="text",
        all_day="T" not in raw_date,
        plain_body=checked,
        image=image,
    )


def _yes_no(value: str, source: str, line: int) -> bool:
    answer = _YES_NO.get(value.lower())
    if answer is None:
        raise ArticleError(source, f"'Draft: {value}' must be yes or no", line=line,
                           fix="write 'Draft: yes', or delete the line to publish the entry")
    return answer
