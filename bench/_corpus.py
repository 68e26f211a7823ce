"""Deterministic synthetic article corpus for the build benchmark.

`make_corpus(n, seed)` returns the same articles for the same arguments; `to_text` renders
one in feedpub's plain-text format and `to_pelican_markdown` in Pelican's Markdown with
metadata headers, so both generators get the same titles, dates, tags and bodies.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

TAGS = (
    "city", "libraries", "transport", "schools", "health", "culture", "sport",
    "weather", "business", "science", "housing", "environment",
)
AUTHORS = (
    "Jane Doe", "Ravi Patel", "Zoë Müller", "Łukasz Nowak", "Amélie Dubois",
    "Kenji Sato", "María José Ortega", "Oluwaseun Adeyemi",
)
WORDS = (
    "t", "h", "e", "c", "o", "u", "n", "c", "i", "l", "l", "i", "b", "r", "a", "r", "y", "b", "r",
    "i", "d", "g", "e", "s", "t", "a", "t", "i", "o", "n", "m", "a", "r", "k", "e", "t", "r", "i",
    "v", "e", "r", "s", "c", "h", "o", "o", "l", "h", "o", "s", "p", "i", "t", "a", "l", "m", "u",
    "s", "e", "u", "m", "p", "a", "r", "k", "c", "o", "u", "n", "c", "i", "l", "b", "u", "d", "g",
    "e", "t", "p", "l", "a", "n", "s", "t", "r", "e", "e", "t", "t", "r", "a", "m", "b", "u", "s",
    "l", "i", "n", "e", "e", "v", "e", "n", "i", "n", "g", "m", "o", "r", "n", "i", "n", "g", "w",
    "e", "e", "k", "e", "n", "d", "s", "e", "a", "s", "o", "n", "r", "e", "p", "o", "r", "t", "r",
    "e", "s", "i", "d", "e", "n", "t", "s", "v", "i", "s", "i", "t", "o", "r", "s", "t", "e", "a",
    "c", "h", "e", "r", "s", "n", "u", "r", "s", "e", "s", "d", "r", "i", "v", "e", "r", "s", "v",
    "o", "l", "u", "n", "t", "e", "e", "r", "s", "o", "f", "f", "i", "c", "i", "a", "l", "s", "e",
    "n", "g", "i", "n", "e", "e", "r", "s", "a", "r", "t", "i", "s", "t", "s", "o", "p", "e", "n",
    "e", "d", "c", "l", "o", "s", "e", "d", "e", "x", "t", "e", "n", "d", "e", "d", "a", "n", "n",
    "o", "u", "n", "c", "e", "d", "a", "p", "p", "r", "o", "v", "e", "d", "d", "e", "l", "a", "y",
    "e", "d", "r", "e", "p", "a", "i", "r", "e", "d", "r", "e", "n", "a", "m", "e", "d", "e", "x",
    "p", "a", "n", "d", "e", "d", "r", "e", "v", "i", "e", "w", "e", "d", "m", "e", "a", "s", "u",
    "r", "e", "d", "c", "o", "u", "n", "t", "e", "d", "p", "u", "b", "l", "i", "s", "h", "e", "d",
    "w", "e", "l", "c", "o", "m", "e", "d", "q", "u", "e", "s", "t", "i", "o", "n", "e", "d", "s",
    "u", "p", "p", "o", "r", "t", "e", "d", "r", "e", "j", "e", "c", "t", "e", "d", "n", "e", "w",
    "o", "l", "d", "l", "a", "r", "g", "e", "r", "s", "m", "a", "l", "l", "e", "r", "q", "u", "i",
    "e", "t", "e", "r", "b", "u", "s", "i", "e", "r", "l", "o", "c", "a", "l", "r", "e", "g", "i",
    "o", "n", "a", "l", "n", "a", "t", "i", "o", "n", "a", "l", "p", "u", "b", "l", "i", "c", "p",
    "r", "i", "v", "a", "t", "e", "e", "a", "r", "l", "y", "l", "a", "t", "e", "f", "i", "r", "s",
    "t", "l", "a", "s", "t", "s", "e", "v", "e", "r", "a", "l", "m", "a", "n", "y", "f", "e", "w",
    "m", "o", "s", "t", "e", "v", "e", "r", "y", "e", "a", "c", "h", "s", "o", "m", "e", "o", "t",
    "h", "e", "r", "h", "o", "u", "r", "s", "r", "o", "o", "m", "s", "s", "e", "a", "t", "s", "t",
    "i", "c", "k", "e", "t", "s", "p", "l", "a", "n", "s", "r", "u", "l", "e", "s", "f", "e", "e",
    "s", "g", "r", "a", "n", "t", "s", "r", "o", "u", "t", "e", "s", "s", "e", "r", "v", "i", "c",
    "e", "s", "l", "e", "s", "s", "o", "n", "s", "n", "o", "r", "t", "h", "s", "o", "u", "t", "h",
    "e", "a", "s", "t", "w", "e", "s", "t", "c", "e", "n", "t", "r", "a", "l", "h", "a", "r", "b",
    "o", "u", "r", "h", "i", "l", "l", "v", "a", "l", "l", "e", "y", "s", "q", "u", "a", "r", "e",
    "g", "a", "r", "d", "e", "n", "a", "v", "e", "n", "u", "e", "b", "e", "c", "a", "u", "s", "e",
    "w", "h", "i", "l", "e", "a", "f", "t", "e", "r", "b", "e", "f", "o", "r", "e", "d", "u", "r",
    "i", "n", "g", "s", "i", "n", "c", "e", "a", "l", "t", "h", "o", "u", "g", "h", "u", "n", "l",
    "e", "s", "s", "u", "n", "t", "i", "l", "w", "h", "e", "t", "h", "e", "r", "s", "a", "i", "d",
    "t", "o", "l", "d", "w", "r", "o", "t", "e", "a", "s", "k", "e", "d", "n", "o", "t", "e", "d",
    "a", "d", "d", "e", "d", "e", "x", "p", "l", "a", "i", "n", "e", "d", "c", "o", "n", "f", "i",
    "r", "m", "e", "d", "s", "u", "g", "g", "e", "s", "t", "e", "d", "e", "x", "p", "e", "c", "t",
    "e", "d",
)
ACCENTED = (
    "café", "naïve", "façade", "Zürich", "São Paulo", "Kraków", "smörgåsbord", "déjà vu",
    "Ångström", "jalapeño", "München", "Malmö", "Dvořák", "Œuvre", "Straße",
)
EXOTIC = ("東京", "Αθήνα", "Москва", "القاهرة", "서울", "★", "→", "€", "½", "R&D")
HEADINGS = (
    "What Changes", "Opening Hours", "Background", "What Residents Said", "Next Steps",
    "Costs and Funding", "Timeline", "Reactions", "How to Take Part", "Further Details",
    "The Numbers", "A Look Back", "Café Culture", "Straßenbahn Plans",
)
PUNCT = (".", ".", ".", ".", "!", "?")
_EPOCH = date(2012, 1, 1)
_DAYS = (date(2025, 12, 31) - _EPOCH).days
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)


@dataclass(frozen=True)
class SyntheticArticle:
    """One generated article: metadata and body blocks ("h", text) or ("p", text)."""

    day: date
    slug: str
    title: str
    author: str | None
    tags: tuple[str, ...]
    byline: bool
    blocks: tuple[tuple[str, str], ...]

    @property
    def filename(self) -> str:
        return f"{self.day.isoformat()}-{self.slug}"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    roll = rng.random()
    if roll < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(ACCENTED))
    elif roll < 0.20:
        words.insert(rng.randrange(len(words)), rng.choice(EXOTIC))
    if rng.random() < 0.1:
        at = rng.randrange(1, len(words))
        words[at] = f"“{words[at]}”"
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(PUNCT)


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 6)))


def _title(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
    if rng.random() < 0.2:
        words.append(rng.choice(ACCENTED))
    return " ".join(w[0].upper() + w[1:] for w in words)


def _slugify(title: str) -> str:
    keep = "".join(c if c.isascii() and c.isalnum() else "-" for c in title.lower())
    return "-".join(part for part in keep.split("-") if part)


def _article(rng: random.Random, used: set[str]) -> SyntheticArticle:
    day = _EPOCH + timedelta(days=rng.randrange(_DAYS))
    title = _title(rng)
    slug = _slugify(title)[:60].strip("-") or "article"
    base, n = slug, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    target = rng.randint(2048, 6144)
    blocks: list[tuple[str, str]] = []
    size = 0
    while size < target:
        para = _paragraph(rng)
        grown = size + len(para.encode("utf-8")) + 2
        if blocks and grown > 6144:
            break
        if blocks and blocks[-1][0] == "p" and rng.random() < 0.18:
            blocks.append(("h", rng.choice(HEADINGS)))
        blocks.append(("p", para))
        size = grown
    return SyntheticArticle(
        day=day,
        slug=slug,
        title=title,
        author=rng.choice(AUTHORS) if rng.random() < 0.85 else None,
        tags=tuple(sorted(rng.sample(TAGS, rng.randint(0, 3)))),
        byline=rng.random() < 0.7,
        blocks=tuple(blocks),
    )


def make_corpus(n: int, seed: int = 20240305) -> list[SyntheticArticle]:
    """Generate `n` articles; the same (n, seed) always gives the same corpus."""
    rng = random.Random(seed)
    used: set[str] = set()
    return [_article(rng, used) for _ in range(n)]


def human_date(day: date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def to_text(article: SyntheticArticle) -> str:
    """feedpub's plain-text format: `date` line, By:, Tags:, byline date, body."""
    parts = [f"date {article.day.isoformat()} {article.title}"]
    if article.author:
        parts.append(f"By: {article.author}")
    if article.tags:
        parts.append(f"Tags: {', '.join(article.tags)}")
    if article.byline:
        parts.append(human_date(article.day))
    parts.extend(text for _, text in article.blocks)
    return "\n\n".join(parts) + "\n"


def to_pelican_markdown(article: SyntheticArticle, time_of_day: str = "09:00") -> str:
    """Pelican Markdown: metadata headers, then the same body with `## ` subheadings."""
    head = [f"Title: {article.title}", f"Date: {article.day.isoformat()} {time_of_day}",
            f"Slug: {article.slug}"]
    if article.author:
        head.append(f"Author: {article.author}")
    if article.tags:
        head.append(f"Tags: {', '.join(article.tags)}")
    body = [f"## {text}" if kind == "h" else text for kind, text in article.blocks]
    return "\n".join(head) + "\n\n" + "\n\n".join(body) + "\n"


def write_corpus(articles: Iterable[SyntheticArticle], text_dir: Path | None,
                 markdown_dir: Path | None) -> int:
    """Write the corpus in one or both formats; returns the bytes of plain text written."""
    total = 0
    for folder in (text_dir, markdown_dir):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    for article in articles:
        if text_dir is not None:
            data = to_text(article).encode("utf-8")
            (text_dir / f"{article.filename}.txt").write_bytes(data)
            total += len(data)
        if markdown_dir is not None:
            md = to_pelican_markdown(article).encode("utf-8")
            (markdown_dir / f"{article.filename}.md").write_bytes(md)
    return total
