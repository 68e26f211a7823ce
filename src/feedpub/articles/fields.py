"""What both article formats share: entry ids, summaries, dates, tags.

Pure functions; errors are `ArticleError` naming the file, line and fix.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, date, datetime, timedelta

from ..config import SiteConfig
from ..errors import ArticleError

SUMMARY_MAX = 280
_ELLIPSIS = " …"
# Dates feeds can carry: RFC 3339 and RFC 822 need four-digit years, a time zone offset in
# whole minutes and a UTC time that still has a four-digit year (hence the margins).
YEAR_MIN, YEAR_MAX = 1900, 9998

_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-?")
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def entry_id(site: SiteConfig, day: date, slug: str) -> str:
    """RFC 4151 tag URI: stable across edits of title and body."""
    name = _DATE_PREFIX.sub("", slug) or slug
    return f"tag:{site.domain},{day.isoformat()}:{name}"


def summarize(text: str) -> str:
    """First paragraph of plain text, cut at a word boundary to at most SUMMARY_MAX chars."""
    first = next((p for p in text.split("\n\n") if p.strip()), "")
    first = " ".join(first.split())
    if len(first) <= SUMMARY_MAX:
        return first
    cut = first.rfind(" ", 0, SUMMARY_MAX - len(_ELLIPSIS) + 1)
    if cut <= 0:  # one very long word: let textwrap break it
        return textwrap.shorten(first, SUMMARY_MAX, placeholder=_ELLIPSIS)
    return first[:cut] + _ELLIPSIS


def at_publish_time(day: date, site: SiteConfig) -> datetime:
    return datetime.combine(day, site.publish_time, tzinfo=site.tz)


def iso_date(value: str, source: str, line: int) -> date:
    if not ISO_DAY.fullmatch(value):
        raise ArticleError(source, f"'{value}' is not a date in the form YYYY-MM-DD", line=line,
                           fix="write the date as e.g. 2024-03-05")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ArticleError(source, f"{value} is not a real calendar date ({exc})", line=line,
                           fix="correct the day or month") from exc


def in_feed_range(moment: datetime, value: str, source: str, line: int) -> datetime:
    """`moment` if feeds can show it; an error naming the accepted years otherwise.

    An offset in seconds (local mean time, which zone data gives for old dates) is
    turned into UTC: the same instant, in a form RFC 3339 and RFC 822 accept.
    """
    if not YEAR_MIN <= moment.year <= YEAR_MAX:
        raise ArticleError(source, f"the date {value} is out of range: dates from {YEAR_MIN} "
                           f"to {YEAR_MAX} are accepted", line=line,
                           fix="correct the year")
    offset = moment.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        return moment.astimezone(UTC)
    return moment


OFFSET_MAX = timedelta(hours=14)  # RFC 3339 / xsd:dateTime: offsets from -14:00 to +14:00


def written_offset(moment: datetime, value: str, source: str, line: int) -> datetime:
    """`moment`, whose offset the author wrote, if feeds can carry that offset: within
    ±14:00 and in whole minutes. Otherwise an error naming the file and line."""
    offset = moment.utcoffset()
    if offset is None:
        return moment
    if abs(offset) > OFFSET_MAX or offset.total_seconds() % 60:
        raise ArticleError(source, f"the time zone offset in '{value}' is out of range: "
                           "offsets from -14:00 to +14:00 in whole minutes are accepted",
                           line=line, fix="write e.g. 2024-03-05T14:30+01:00")
    return moment


def split_tags(value: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in value.split(","):
        tag = " ".join(tag.split())
        if tag and tag.casefold() not in {t.casefold() for t in seen}:
            seen[tag] = None
    return tuple(seen)
