"""The two article formats: plain text (primary) and Markdown with YAML front matter.

Both readers are pure: text in, `Article` out, `ArticleError` (file, line, fix) on bad input.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache

import lxml.html
import nh3
import yaml
from dateutil import parser as dateparser
from markdown_it import MarkdownIt

from .articles import Article, slug_for
from .config import SiteConfig
from .errors import ArticleError

HEADER_FIX = "start the file with a line such as 'date 2024-03-05 Title of the entry'"
_HEADER = re.compile(r"^\s*date(?:\s+(\S+))?(?:\s+(.*?))?\s*$", re.IGNORECASE)
_FIELD = re.compile(r"^\s*(by|tags|draft)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_YES_NO = {"yes": True, "true": True, "no": False, "false": False}
_SENTENCE_END = tuple(".!?:;…,\"'”’»)]")
SUBHEADING_MAX = 80
SUMMARY_MAX = 280
_ELLIPSIS = " …"
# Dates feeds can carry: RFC 3339 and RFC 822 need four-digit years, a time zone offset in
# whole minutes and a UTC time that still has a four-digit year (hence the margins).
YEAR_MIN, YEAR_MAX = 1900, 9998


_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-?")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"\d{4}")


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


def _at_publish_time(day: date, site: SiteConfig) -> datetime:
    return datetime.combine(day, site.publish_time, tzinfo=site.tz)


def _iso_date(value: str, source: str, line: int) -> date:
    if not _ISO_DAY.fullmatch(value):
        raise ArticleError(source, f"'{value}' is not a date in the form YYYY-MM-DD", line=line,
                           fix="write the date as e.g. 2024-03-05")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ArticleError(source, f"{value} is not a real calendar date ({exc})", line=line,
                           fix="correct the day or month") from exc


def _in_range(moment: datetime, value: str, source: str, line: int) -> datetime:
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


def _header_when(value: str, source: str, line: int, site: SiteConfig) -> datetime:
    """`YYYY-MM-DD` (placed at the site's publish time) or `YYYY-MM-DDTHH:MM[:SS][+HH:MM]`."""
    if "T" not in value:
        return _in_range(_at_publish_time(_iso_date(value, source, line), site), value,
                         source, line)
    _iso_date(value.split("T", 1)[0], source, line)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ArticleError(source, f"'{value}' is not a valid date and time", line=line,
                           fix="write e.g. 2024-03-05T14:30 or 2024-03-05T14:30+01:00") from exc
    return _in_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=site.tz), value,
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


def parse_plain(text: str, source: str, site: SiteConfig) -> Article:
    """The plain-text format: `date YYYY-MM-DD Title`, optional By:/Tags:/Draft:/date lines,
    body."""
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
            tags = _split_tags(field.group(2))
        elif field and name == "draft" and draft is None:
            draft = _yes_no(field.group(2), source, number)
        elif byline is None and (parsed := _byline_date(block[0])) is not None:
            byline = parsed
        else:
            break
        body_start += 1

    parts_html: list[str] = []
    first_paragraph = ""
    for _, block in blocks[body_start:]:
        joined = block[0] if len(block) == 1 else " ".join(block)
        # html.escape(quote=False), inlined: this loop runs for every paragraph of the site.
        escaped = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        # A short line standing alone without sentence-ending punctuation is a subheading.
        if len(block) == 1 and len(joined) <= SUBHEADING_MAX and not joined.endswith(
                _SENTENCE_END):
            parts_html.append(f"<h2>{escaped}</h2>")
        else:
            parts_html.append(f"<p>{escaped}</p>")
            first_paragraph = first_paragraph or joined
    slug = slug_for(source)
    return Article(
        id=entry_id(site, day, slug),
        slug=slug,
        title=title,
        published=published,
        html="\n".join(parts_html),
        source=source,
        author=author,
        tags=tags,
        summary=summarize(first_paragraph),
        byline_date=byline,
        draft=bool(draft),
        format="text",
        all_day="T" not in raw_date,
    )


def _yes_no(value: str, source: str, line: int) -> bool:
    answer = _YES_NO.get(value.lower())
    if answer is None:
        raise ArticleError(source, f"'Draft: {value}' must be yes or no", line=line,
                           fix="write 'Draft: yes', or delete the line to publish the entry")
    return answer


def _split_tags(value: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in value.split(","):
        tag = " ".join(tag.split())
        if tag and tag.casefold() not in {t.casefold() for t in seen}:
            seen[tag] = None
    return tuple(seen)


# --- Markdown ------------------------------------------------------------------------------

FRONT_MATTER_KEYS = ("title", "date", "author", "tags", "summary", "id", "updated", "draft")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def sanitize_html(fragment: str) -> str:
    """Strip scripts, event handlers and javascript: URLs (nh3, an allow-list sanitizer)."""
    return str(nh3.clean(fragment))


def _key_line(front: str, key: str) -> int:
    for number, line in enumerate(front.split("\n"), start=2):
        if line.startswith(f"{key}:"):
            return number
    return 1


def _when(value: str, key: str, source: str, line: int, site: SiteConfig) -> datetime:
    """A front-matter date: a date (placed at the site's publish time) or a datetime."""
    value = value.strip()
    if _ISO_DAY.fullmatch(value):
        return _in_range(_at_publish_time(_iso_date(value, source, line), site), value, source,
                         line)
    try:
        parsed = dateparser.isoparse(value)
    except (ValueError, OverflowError) as exc:
        raise ArticleError(
            source, f"'{key}: {value}' is not a date or a datetime ({exc})", line=line,
            fix=f"write e.g. '{key}: 2024-03-05' or '{key}: 2024-03-05T14:30:00+01:00'",
        ) from exc
    return _in_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=site.tz), value, source,
                     line)


def _front_matter(text: str, source: str) -> tuple[dict[str, object], str, str, int]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ArticleError(source, "Markdown articles must start with YAML front matter", line=1,
                           fix="begin the file with '---', 'title: ...', 'date: ...', '---'")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        raise ArticleError(source, "the front matter is not closed", line=1,
                           fix="end the front matter with a line '---'")
    front = "\n".join(lines[1:end])
    try:
        data = yaml.load(front, Loader=yaml.BaseLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise ArticleError(source, f"the front matter is not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}", line=line,
                           fix="check quoting and indentation") from exc
    if not isinstance(data, dict):
        raise ArticleError(source, "the front matter must be 'key: value' lines", line=2,
                           fix="write e.g. 'title: My entry'")
    return data, front, "\n".join(lines[end + 1:]), end + 2


def parse_markdown(text: str, source: str, site: SiteConfig) -> Article:
    """Markdown (CommonMark) with front matter: title, date, author, tags, summary, id,
    updated, draft. Raw HTML is allowed but sanitized."""
    data, front, body, _ = _front_matter(text, source)
    for key in data:
        if key not in FRONT_MATTER_KEYS:
            raise ArticleError(source, f"unknown front-matter key '{key}'",
                               line=_key_line(front, str(key)),
                               fix=f"use one of: {', '.join(FRONT_MATTER_KEYS)}")

    def scalar(key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise ArticleError(source, f"'{key}' must be a single value",
                               line=_key_line(front, key),
                               fix=f"write '{key}: value' on one line")
        return " ".join(value.split())

    title = scalar("title")
    if not title:
        raise ArticleError(source, "the front matter has no 'title'", line=2,
                           fix="add a line 'title: Your title'")
    if not scalar("date"):
        raise ArticleError(source, "the front matter has no 'date'", line=2,
                           fix="add a line 'date: 2024-03-05'")
    published = _when(scalar("date"), "date", source, _key_line(front, "date"), site)
    updated = (_when(scalar("updated"), "updated", source, _key_line(front, "updated"), site)
               if scalar("updated") else None)
    raw_tags = data.get("tags", [])
    if isinstance(raw_tags, list):
        raw_tags = ",".join(t for t in raw_tags if isinstance(t, str))
    if not isinstance(raw_tags, str):
        raise ArticleError(source, "'tags' must be a list or a comma-separated line",
                           line=_key_line(front, "tags"), fix="write 'tags: [a, b]'")
    tags = _split_tags(raw_tags)
    draft_value = scalar("draft").lower()
    if draft_value not in ("", "true", "false", "yes", "no"):
        raise ArticleError(source, f"'draft: {draft_value}' must be true or false",
                           line=_key_line(front, "draft"), fix="write 'draft: true'")
    slug = slug_for(source)
    body_html = sanitize_html(_markdown().render(body))
    summary = scalar("summary") or summarize(_markdown_plain(body_html))
    return Article(
        id=scalar("id") or entry_id(site, published.astimezone(site.tz).date(), slug),
        slug=slug,
        title=title,
        published=published,
        updated=updated,
        html=body_html.strip(),
        source=source,
        author=scalar("author") or None,
        tags=tags,
        summary=summary,
        draft=draft_value in ("true", "yes"),
        format="markdown",
        all_day=bool(_ISO_DAY.fullmatch(scalar("date"))),
    )


def _markdown_plain(fragment: str) -> str:
    """Text of the rendered paragraphs, one per block (for summaries)."""
    if not fragment.strip():
        return ""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return "\n\n".join(p.text_content() for p in root.iter("p"))
