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
    "the", "council", "library", "bridge", "station", "market", "river", "school", "hospital",
    "museum", "park", "budget", "plan", "street", "tram", "bus", "line", "evening", "morning",
    "weekend", "season", "report", "residents", "visitors", "teachers", "nurses", "drivers",
    "volunteers", "officials", "engineers", "artists", "opened", "closed", "extended",
    "announced", "approved", "delayed", "repaired", "renamed", "expanded", "reviewed", "measured",
    "counted", "published", "welcomed", "questioned", "supported", "rejected", "new", "old",
    "larger", "smaller", "quieter", "busier", "local", "regional", "national", "public",
    "private", "early", "late", "first", "last", "several", "many", "few", "most", "every",
    "each", "some", "other", "hours", "rooms", "seats", "tickets", "plans", "rules", "fees",
    "grants", "routes", "services", "lessons", "north", "south", "east", "west", "central",
    "harbour", "hill", "valley", "square", "garden", "avenue", "because", "while", "after",
    "before", "during", "since", "although", "unless", "until", "whether", "said", "told",
    "wrote", "asked", "noted", "added", "explained", "confirmed", "suggested", "expected",
)
ACCENTED = (
    "café", "naïve", "façade", "Zürich", "São Paulo", "Kraków", "smörgåsbord", "déjà vu",
    "Ångström", "jalapeño", "München", "Malmö", "Dvořák", "Œuvre", "Straße",
)
EXOTIC = ("東京", "Αθήνα", "Москва", "القاهرة", "서울", "★", "→", "€", "½", "R&D")
# Most real sites carry some text beyond Latin-1: emoji, quoted names and phrases in other
# scripts, full-width punctuation. Most articles of the corpus get some (see `_flavour`).
EMOJI = ("🎉", "🚋", "📚", "🌧️", "👍", "❤️", "🏥", "🚲", "☕", "🇪🇺", "👩‍🏫", "😀")
PHRASES = (
    "東京都の新しい図書館が開館しました（入場無料）", "北京市公共交通改革方案",
    "서울시 한강 공원 개장 행사", "한국어 안내문을 배포했다",
    "افتتاح المكتبة العامة الجديدة في القاهرة", "قال رئيس البلدية إن المشروع سيكتمل",
    "Здание вокзала откроется весной", "Η νέα γέφυρα της Αθήνας",
    "Łódź i Kraków: nowe linie tramwajowe", "Ökonomie & Straßenbahn in Köln",
)
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


def _sentence(rng: random.Random, flavour: float) -> str:
    """One sentence; `flavour` is how often the article quotes emoji or another script."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    roll = rng.random()
    if roll < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(ACCENTED))
    elif roll < 0.20:
        words.insert(rng.randrange(len(words)), rng.choice(EXOTIC))
    roll = rng.random()
    if roll < flavour:
        words.insert(rng.randrange(len(words)), rng.choice(EMOJI))
    elif roll < 2 * flavour:
        words.insert(rng.randrange(len(words)), f"“{rng.choice(PHRASES)}”")
    if rng.random() < 0.1:
        at = rng.randrange(1, len(words))
        words[at] = f"“{words[at]}”"
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(PUNCT)


def _paragraph(rng: random.Random, flavour: float) -> str:
    return " ".join(_sentence(rng, flavour) for _ in range(rng.randint(2, 6)))


def _title(rng: random.Random, flavour: float) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 7))]
    if rng.random() < 0.2:
        words.append(rng.choice(ACCENTED))
    title = " ".join(w[0].upper() + w[1:] for w in words)
    return f"{title} {rng.choice(EMOJI)}" if rng.random() < flavour else title


def _flavour(rng: random.Random) -> float:
    """Per sentence, the chance of an emoji (and again of a phrase in another script): none
    in one article of five, up to one sentence in ten in the others."""
    return 0.0 if rng.random() < 0.2 else rng.uniform(0.03, 0.1)


def _slugify(title: str) -> str:
    keep = "".join(c if c.isascii() and c.isalnum() else "-" for c in title.lower())
    return "-".join(part for part in keep.split("-") if part)


def _article(rng: random.Random, used: set[str]) -> SyntheticArticle:
    day = _EPOCH + timedelta(days=rng.randrange(_DAYS))
    flavour = _flavour(rng)
    title = _title(rng, flavour)
    slug = _slugify(title)[:60].strip("-") or "article"
    base, n = slug, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    target = rng.randint(2048, 6144)
    blocks: list[tuple[str, str]] = []
    size = 0
    while size < target:
        para = _paragraph(rng, flavour)
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
    # Category: the default theme needs one on every article, and Pelican only assigns
    # DEFAULT_CATEGORY when it also writes category pages (switched off for the benchmark).
    head = [f"Title: {article.title}", f"Date: {article.day.isoformat()} {time_of_day}",
            f"Slug: {article.slug}", "Category: News"]
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


def beyond_latin1(article: SyntheticArticle) -> bool:
    """True if the article holds a character past U+00FF (emoji, CJK, Arabic, ...)."""
    text = article.title + "".join(text for _, text in article.blocks)
    return any(ord(c) > 0xFF for c in text)
