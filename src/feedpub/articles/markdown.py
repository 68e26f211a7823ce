"""The Markdown article format: CommonMark (markdown-it-py) with YAML front matter.

Pure, like the plain-text reader: text in, `Article` out, `ArticleError` on bad input.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import lxml.html
import nh3
import yaml
from dateutil import parser as dateparser
from markdown_it import MarkdownIt

from ..config import SiteConfig
from ..errors import ArticleError
from .fields import (
    ISO_DAY,
    at_publish_time,
    entry_id,
    in_feed_range,
    iso_date,
    split_tags,
    summarize,
    written_offset,
)
from .limits import MAX_DEPTH, check_html_depth, load_front_matter
from .mdwork import WORK_KEY, WorkExceeded, check_block_work, install, work_error
from .media import check_image, first_image, parse_attachments
from .model import Article, slug_for

FRONT_MATTER_KEYS = ("title", "date", "author", "tags", "summary", "id", "updated", "draft",
                     "image", "attachments")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return install(MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]))


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
    if ISO_DAY.fullmatch(value):
        return in_feed_range(at_publish_time(iso_date(value, source, line), site), value, source,
                         line)
    try:
        parsed = dateparser.isoparse(value)
    except (ValueError, OverflowError) as exc:
        raise ArticleError(
            source, f"'{key}: {value}' is not a date or a datetime ({exc})", line=line,
            fix=f"write e.g. '{key}: 2024-03-05' or '{key}: 2024-03-05T14:30:00+01:00'",
        ) from exc
    if parsed.tzinfo is not None:
        parsed = written_offset(parsed, value, source, line)
    return in_feed_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=site.tz), value, source,
                     line)


def _front_matter(text: str, source: str,
                  max_depth: int = MAX_DEPTH) -> tuple[dict[str, object], str, str, int]:
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
        data = load_front_matter(front, source, max_depth) or {}
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


def parse_markdown(text: str, source: str, site: SiteConfig,
                   max_depth: int = MAX_DEPTH) -> Article:
    """Markdown (CommonMark) with front matter: title, date, author, tags, summary, id,
    updated, draft. Raw HTML is allowed but sanitized; nesting deeper than `max_depth` (in
    the front matter or the HTML) is refused, which keeps the work linear in the size."""
    data, front, body, body_line = _front_matter(text, source, max_depth)
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
    tags = split_tags(raw_tags)
    draft_value = scalar("draft").lower()
    if draft_value not in ("", "true", "false", "yes", "no"):
        raise ArticleError(source, f"'draft: {draft_value}' must be true or false",
                           line=_key_line(front, "draft"), fix="write 'draft: true'")
    image = check_image(scalar("image"), source, _key_line(front, "image"))
    attachments = parse_attachments(data.get("attachments"), source,
                                    _key_line(front, "attachments"))
    slug = slug_for(source)
    check_html_depth(body, source, body_line, max_depth)
    try:
        rendered = _markdown().render(body, {WORK_KEY: check_block_work(body, source, body_line)})
    except WorkExceeded as exc:
        raise work_error(source, body_line + exc.line) from None
    body_html = sanitize_html(rendered)
    summary = scalar("summary") or summarize(_markdown_plain(body_html))
    return Article(
        id=scalar("id") or entry_id(site, published.astimezone(site.tz).date(), slug),
        slug=slug,
        title=title,
        published=published,
        updated=updated,
        html_utf8=body_html.strip().encode("utf-8", "surrogatepass"),
        source=source,
        author=scalar("author") or None,
        tags=tags,
        summary=summary,
        draft=draft_value in ("true", "yes"),
        format="markdown",
        all_day=bool(ISO_DAY.fullmatch(scalar("date"))),
        image=image or first_image(body_html),
        attachments=attachments,
    )


def _markdown_plain(fragment: str) -> str:
    """Text of the rendered paragraphs, one per block (for summaries)."""
    if not fragment.strip():
        return ""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return "\n\n".join(p.text_content() for p in root.iter("p"))
