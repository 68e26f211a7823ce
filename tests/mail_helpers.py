"""Helpers for the newsletter tests: articles built directly, subscribers in bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedpub.articles.model import Article
from feedpub.store import Store

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def article(n: int, *, hours_ago: float = 1, title: str | None = None,
            tags: tuple[str, ...] = (), html: str | None = None,
            now: datetime = NOW, updated: datetime | None = None) -> Article:
    """Article number `n`, published `hours_ago` before `now`; its id depends on n only."""
    title = title or f"Article number {n}"
    return Article(
        id=f"tag:news.example.org,2026:post-{n}", slug=f"post-{n}", title=title,
        published=now - timedelta(hours=hours_ago),
        html_utf8=(html or f'<p>Body of <a href="/posts/post-{n}.html">article {n}</a>.</p>'
                   f'<p><img src="images/{n}.png" alt=""></p>').encode("utf-8"),
        source=f"post-{n}.md", updated=updated, author="Ann Author", tags=tags,
        summary=f"Summary of article {n}.",
    )


def add_subscribers(store: Store, count: int, *, domain: str = "example.com",
                    start: int = 0, **kwargs: object) -> list[int]:
    ids = []
    for i in range(start, start + count):
        sub, _ = store.add_subscriber(f"user{i}@{domain}", f"User {i}", **kwargs)  # type: ignore[arg-type]
        ids.append(sub.id)
    return ids
