"""Article records and the article store reader.

`parse_article(text, source, site)` is pure; `load_articles(dir, site)` is the only reader of
articles/. Text is cleaned of XML-illegal characters here, at the boundary, so no later stage
has to care.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Article:
    """One published entry. Every datetime is timezone-aware."""

    id: str  # stable tag: URI (or front-matter id); never changes when title/body are edited
    slug: str  # from the file name; unique in the store; used in URLs
    title: str
    published: datetime  # header / front-matter date; orders entries
    html: str  # sanitized HTML body; links may be relative to site.base_url
    text: str  # readable plain-text body (for email text parts and summaries)
    source: str  # file path relative to the articles folder
    updated: datetime | None = None  # only when the author says so
    author: str | None = None
    tags: tuple[str, ...] = ()
    summary: str = ""  # plain text
    byline_date: date | None = None
    draft: bool = False
    format: str = "text"  # "text" or "markdown"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def modified(self) -> datetime:
        """The date readers see as last change: `updated` if the author set it."""
        return self.updated or self.published

    @property
    def url_path(self) -> str:
        """Path of the article's own page, relative to the site's base URL."""
        return f"posts/{self.slug}.html"
