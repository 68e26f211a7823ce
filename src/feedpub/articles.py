"""Article records and the article store reader.

`parse_article(text, source, site)` is pure; `load_articles(dir, site)` is the only reader of
articles/. Text is cleaned of XML-illegal characters here, at the boundary, so no later stage
has to care.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from .config import SiteConfig
from .errors import ArticleError


@dataclass(frozen=True)
class Article:
    """One published entry. Every datetime is timezone-aware."""

    id: str  # stable tag: URI (or front-matter id); never changes when title/body are edited
    slug: str  # from the file name; unique in the store; used in URLs
    title: str
    published: datetime  # header / front-matter date; orders entries
    html: str  # sanitized HTML body; links may be relative to site.base_url
    source: str  # file path relative to the articles folder
    updated: datetime | None = None  # only when the author says so
    author: str | None = None
    tags: tuple[str, ...] = ()
    summary: str = ""  # plain text
    byline_date: date | None = None
    draft: bool = False
    format: str = "text"  # "text" or "markdown"
    all_day: bool = False  # dated without a time of day (placed at site.default_time)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # Set by parse_article for the plain-text format: every text field has been cleaned of
    # FORBIDDEN_CHARS, and the body holds only <p> and <h2> elements of escaped text (no links
    # to resolve, no carriage return, no "]]>"), so later stages may skip those checks.
    plain_body: bool = field(default=False, compare=False)

    @property
    def modified(self) -> datetime:
        """The date readers see as last change: `updated` if the author set it."""
        return self.updated or self.published

    @property
    def url_path(self) -> str:
        """Path of the article's own page, relative to the site's base URL."""
        return f"posts/{self.slug}.html"


# --- reading -----------------------------------------------------------------------------

ARTICLE_SUFFIXES = (".txt", ".md", ".markdown")

# Characters no feed should carry: what XML 1.0 forbids (C0 controls other than tab, newline
# and carriage return, lone surrogates, U+FFFE/U+FFFF), what it discourages (DEL, the C1
# controls U+0080-U+009F, the noncharacters U+FDD0-U+FDEF and U+nFFFE/U+nFFFF of every plane)
# and U+FFFD, the mark of an earlier decoding error. Feed validators flag all of them. They are
# removed here so that no later stage can produce a broken or flagged feed.
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(1, 17)
                         for low in (0xFFFE, 0xFFFF))
FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
                             "\ufdd0-\ufdef\ufffd-\uffff" + _NONCHARACTERS + "]")
# The same set in two parts: the regex engine scans a class of 32 single astral characters
# over ten times slower than one of ranges, and most text has no astral character at all.
_FORBIDDEN_BMP = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
                            "\ufdd0-\ufdef\ufffd-\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Bytes that start the UTF-8 form of every forbidden character: the controls themselves,
# C2 (C1 controls), ED (surrogates, written with "surrogatepass"), EF (U+FDD0-U+FFFF) and
# F0-F4 (astral noncharacters). Text without any of them is clean, and deleting every other
# byte with bytes.translate tells so about ten times faster than any regex.
_LEADS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xC2, 0xED, 0xEF,
                *range(0xF0, 0xF5)])
_NOT_LEADS = bytes(b for b in range(256) if b not in _LEADS)
# C2 also leads U+00A0-U+00BF (no-break space, guillemets, degree sign, fractions), common in
# clean text: when it is the only lead byte, the C1 controls are found in the bytes instead.
_C1_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]")


def has_forbidden(text: str) -> bool:
    """True if `text` holds a character of FORBIDDEN_CHARS (fast for the usual text)."""
    data = text.encode("utf-8", "surrogatepass")
    leads = data.translate(None, _NOT_LEADS)
    if not leads:
        return False
    if not leads.strip(b"\xc2"):
        return _C1_CONTROLS.search(data) is not None
    if _FORBIDDEN_BMP.search(text):
        return True
    return bool(_ASTRAL.search(text)) and bool(FORBIDDEN_CHARS.search(text))


def strip_forbidden(text: str) -> str:
    """`text` without the characters of FORBIDDEN_CHARS."""
    return FORBIDDEN_CHARS.sub("", text) if has_forbidden(text) else text


def clean_text(text: str) -> tuple[str, list[int]]:
    """Remove FORBIDDEN_CHARS; return the text and the 1-based lines they were on."""
    if not has_forbidden(text):
        return text, []
    lines = sorted({text.count("\n", 0, m.start()) + 1 for m in FORBIDDEN_CHARS.finditer(text)})
    return FORBIDDEN_CHARS.sub("", text), lines


def decode_article(data: bytes, source: str) -> str:
    """Decode UTF-8 (with or without BOM); undecodable bytes are an error naming line and offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ArticleError(
            source,
            f"bytes are not valid UTF-8 at byte offset {exc.start} "
            f"({data[exc.start:exc.start + 4]!r})",
            line=line,
            fix="save the file as UTF-8",
        ) from exc
    return text


_NOT_SLUG = re.compile(r"[^\w.-]+", re.ASCII)


def slug_for(source: str) -> str:
    """URL-safe slug from the file's path relative to articles/ (without suffix)."""
    suffix = _suffix(source)
    stem = source[:-len(suffix)] if suffix else source
    slug = _NOT_SLUG.sub("-", stem.replace("/", "-")).strip("-.").lower()
    return slug or "article"


def _suffix(source: str) -> str:
    """`PurePosixPath(source).suffix`, without building a path object."""
    name_start = source.rfind("/") + 1
    dot = source.rfind(".")
    return source[dot:] if name_start < dot < len(source) - 1 else ""


def parse_article(text: str, source: str, site: SiteConfig) -> Article:
    """Parse one article (format chosen by the file suffix). Pure: no file access.

    `source` is the path relative to articles/, used in ids, slugs and error messages.
    Raises ArticleError naming the file, line and fix.
    """
    from .readers import parse_plain

    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    cleaned, bad_lines = clean_text(text)
    warnings = tuple(
        f"{source}:{line}: removed characters that feeds must not contain (control "
        "characters, noncharacters or U+FFFD)"
        for line in bad_lines
    )
    if not cleaned or cleaned.isspace():
        raise ArticleError(source, "the file is empty", line=1,
                           fix="start it with a line such as 'date 2024-03-05 Title'")
    if _suffix(source).lower() in (".md", ".markdown"):
        from .readers_md import parse_markdown

        article = parse_markdown(cleaned, source, site)
    else:
        article = parse_plain(cleaned, source, site, checked=True)
    return replace(article, warnings=warnings + article.warnings) if warnings else article


@dataclass(frozen=True)
class LoadResult:
    """Every article that parsed, newest first, and an error for each file that did not."""

    articles: list[Article]
    errors: list[ArticleError]

    def published(self, now: datetime) -> list[Article]:
        """Articles readers may see at `now`: not drafts, not dated in the future."""
        return [a for a in self.articles if not a.draft and a.published <= now]


def sort_articles(articles: list[Article]) -> list[Article]:
    """Newest first; entries on the same instant in a stable order by slug."""
    articles.sort(key=lambda a: a.slug)
    articles.sort(key=lambda a: a.published, reverse=True)
    return articles


def spread_all_day(articles: Iterable[Article]) -> list[Article]:
    """Give the entries dated on one day without a time distinct times, one second apart.

    They all sit at the site's default time, and feeds need distinct dates (validators warn
    about entries that share one). Of the n such entries of a day, taken in slug order, the
    i-th is placed at the default time + (n - 1 - i) seconds, so the first slug stays the
    newest and the site's order (newest first, then by slug) is unchanged. Only the published
    entries of that same day take part: other days never move an entry, and drafts (which
    readers never see) never move a published one. Future entries do take part, as they
    share the default time with the day's others. Ids are not touched.
    """
    out = list(articles)
    groups: dict[datetime, list[int]] = {}
    for index, article in enumerate(out):
        if article.all_day and not article.draft:
            groups.setdefault(article.published, []).append(index)
    for indexes in groups.values():
        if len(indexes) < 2:
            continue
        indexes.sort(key=lambda i: out[i].slug)
        for position, index in enumerate(indexes):
            shift = timedelta(seconds=len(indexes) - 1 - position)
            if shift:
                out[index] = _moved(out[index], out[index].published + shift)
    return out


def _moved(article: Article, published: datetime) -> Article:
    """`replace(article, published=published)`, without re-running __init__ for every field:
    a dense site moves thousands of entries."""
    moved = object.__new__(Article)
    moved.__dict__.update(article.__dict__, published=published)
    return moved


def canonical_tags(tag_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """Map every spelling of every tag to its site-wide spelling.

    Tags that differ only in case ("Food", "food") are one tag: they share one feed and one
    page. Its spelling is the one most articles use; a tie goes to the spelling that sorts
    first, so the choice never depends on file order.
    """
    counts: Counter[str] = Counter(tag for tags in tag_lists for tag in tags)
    best: dict[str, str] = {}
    for spelling in sorted(counts, key=lambda t: (-counts[t], t)):
        best.setdefault(spelling.casefold(), spelling)
    return {spelling: best[spelling.casefold()] for spelling in counts}


def unify_tags(articles: Sequence[Article]) -> list[Article]:
    """`articles` with every tag in its site-wide spelling (see `canonical_tags`)."""
    spelling = canonical_tags(a.tags for a in articles)
    respelled = {tag for tag, best in spelling.items() if tag != best}
    out = []
    for article in articles:
        tags = article.tags
        # Most tag lists are unchanged (no other spelling, no repeat): seen without a rebuild.
        if (len(tags) > 1 and len(set(tags)) != len(tags)) or not respelled.isdisjoint(tags):
            tags = tuple(dict.fromkeys(spelling[t] for t in tags))
        out.append(article if tags == article.tags else replace(article, tags=tags))
    return out


def arrange_articles(articles: Iterable[Article]) -> list[Article]:
    """The site's articles as every later stage sees them: all-day entries of one day spread
    over distinct seconds, tags in one spelling per tag, newest first."""
    return sort_articles(unify_tags(spread_all_day(articles)))


def article_stats(folder: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of each article file under `folder`, keyed by relative POSIX path.

    Hidden files and folders (`.`, `_`) are skipped. A file that cannot be stat'ed (a dangling
    link, say) gets (-1, -1), so that reading it reports the problem instead of hiding it.
    """
    found: dict[str, tuple[int, int]] = {}
    stack = [("", str(folder))]
    while stack:
        prefix, current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:  # an unreadable subfolder: reading it reports the problem
            if prefix:
                found[prefix.rstrip("/")] = (-1, -1)
                continue
            raise
        for entry in entries:
            name = entry.name
            if name.startswith((".", "_")):
                continue
            if entry.is_dir():
                stack.append((f"{prefix}{name}/", entry.path))
            elif name.lower().endswith(ARTICLE_SUFFIXES):
                try:
                    st = entry.stat()
                    found[prefix + name] = (st.st_mtime_ns, st.st_size)
                except OSError:
                    found[prefix + name] = (-1, -1)
    return dict(sorted(found.items()))


def read_article(folder: Path, source: str, site: SiteConfig) -> Article:
    """Read and parse one file of the article store."""
    try:
        data = _read_bytes(os.path.join(folder, source))
    except OSError as exc:
        raise _unreadable(folder / source, source, exc) from exc
    return parse_article(decode_article(data, source), source, site)


def _read_bytes(path: str) -> bytes:
    """The file's bytes, read with plain system calls (a third cheaper than `open()` for the
    small files a site has thousands of)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _unreadable(path: Path, source: str, exc: OSError) -> ArticleError:
    """The error for an article file that cannot be read, with the likely fix."""
    if path.is_symlink() and not path.exists():
        return ArticleError(source, f"it is a symbolic link to {os.readlink(path)}, which does "
                            "not exist", fix="point the link at an existing file or delete it")
    if path.is_dir():
        return ArticleError(source, "it is a folder, not a file",
                            fix="rename the folder so that it does not end in .txt or .md")
    if isinstance(exc, PermissionError):
        return ArticleError(source, "cannot read the file: permission denied",
                            fix="make it readable, e.g. chmod a+r " + str(path))
    return ArticleError(source, f"cannot read the file: {exc.strerror or exc}",
                        fix="check that it exists and is readable")


def check_unique(articles: list[Article]) -> tuple[list[Article], list[ArticleError]]:
    """Drop later articles whose slug or id repeats an earlier one's, with an error for each."""
    seen_slug: dict[str, str] = {}
    seen_id: dict[str, str] = {}
    kept: list[Article] = []
    errors: list[ArticleError] = []
    for article in sorted(articles, key=lambda a: a.source):
        if article.slug in seen_slug:
            errors.append(ArticleError(
                article.source, f"its URL slug '{article.slug}' is already used by "
                f"{seen_slug[article.slug]}", fix="rename one of the two files"))
        elif article.id in seen_id:
            errors.append(ArticleError(
                article.source, f"its id '{article.id}' is already used by "
                f"{seen_id[article.id]}", fix="give one of them a different 'id'"))
        else:
            seen_slug[article.slug] = article.source
            seen_id[article.id] = article.source
            kept.append(article)
    return kept, errors


def load_articles(folder: Path, site: SiteConfig) -> LoadResult:
    """Read every article under `folder`. Bad files become errors; the rest still load."""
    articles: list[Article] = []
    errors: list[ArticleError] = []
    for source in article_stats(folder):  # sorted relative paths
        try:
            articles.append(read_article(folder, source, site))
        except ArticleError as exc:
            errors.append(exc)
    kept, dup_errors = check_unique(articles)
    return LoadResult(arrange_articles(kept), errors + dup_errors)
