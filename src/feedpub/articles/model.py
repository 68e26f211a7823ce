"""The article record, slugs, and the text rules every reader applies.

`Article` is what every later stage consumes. Text is cleaned of XML-illegal characters at
the boundary (`clean_text`, `decode_article`), so no later stage has to care.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from ..errors import ArticleError


@dataclass(frozen=True)
class Attachment:
    """A file that goes with an entry (a podcast episode, a PDF): RSS enclosure, Atom
    rel="enclosure", JSON Feed attachment. `url` may be relative to the site's base URL;
    `length` None means "read it from the file under the site" (done by the build)."""

    url: str
    type: str
    length: int | None = None
    duration: str = ""  # "HH:MM:SS" or seconds, for podcasts


@dataclass(frozen=True)
class Article:
    """One published entry. Every datetime is timezone-aware."""

    id: str  # stable tag: URI (or front-matter id); never changes when title/body are edited
    slug: str  # from the file name; unique in the store; used in URLs
    title: str
    published: datetime  # header / front-matter date; orders entries
    # The sanitized HTML body, UTF-8 (`html` gives it as text); links may be relative to
    # site.base_url. Kept as bytes: the feeds and pages write it as it is, the digests and the
    # index hash and store it as it is, and it takes a quarter of the memory of a str that
    # holds one emoji (which CPython stores with four bytes a character).
    html_utf8: bytes
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
    image: str = ""  # the entry's picture (front matter `image:`, `Image:` line); may be relative
    attachments: tuple[Attachment, ...] = ()
    # Set by parse_article for the plain-text format: every text field has been cleaned of
    # FORBIDDEN_CHARS, and the body holds only <p> and <h2> elements of escaped text (no links
    # to resolve, no carriage return, no "]]>"), so later stages may skip those checks.
    plain_body: bool = field(default=False, compare=False)

    @property
    def html(self) -> str:
        """The body as text, decoded on each use."""
        return self.html_utf8.decode("utf-8", "surrogatepass")

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
# Bytes that start the UTF-8 form of every forbidden character: the controls themselves,
# C2 (C1 controls), ED (surrogates, written with "surrogatepass"), EF (U+FDD0-U+FFFF) and
# F0-F4 (astral noncharacters). Text without any of them is clean, and deleting every other
# byte with bytes.translate tells so about ten times faster than any regex.
_LEADS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xC2, 0xED, 0xEF,
                *range(0xF0, 0xF5)])
_NOT_LEADS = bytes(b for b in range(256) if b not in _LEADS)
# Those lead bytes also start allowed characters common in clean text: C2 no-break space and
# guillemets, ED Hangul, EF full-width forms and the BOM, F0 emoji and CJK extensions. For
# each lead present, the forbidden sequences it may start are looked for in the bytes, by a
# pattern beginning with a literal byte (which the regex engine skips to), never by a
# character class over the whole text (tens of times slower once the text holds an emoji).
_MULTIBYTE_LEADS = bytes([0xC2, 0xED, 0xEF, *range(0xF0, 0xF5)])
_C1_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]")
_SURROGATES = re.compile(rb"\xed[\xa0-\xbf]")
_BMP_NONCHARACTERS = re.compile(rb"\xef(?:\xb7[\x90-\xaf]|\xbf[\xbd-\xbf])")
# U+nFFFE and U+nFFFF (planes 1-16) end in BF BE or BF BF, which no emoji or CJK letter does.
_ASTRAL_NONCHARACTERS = re.compile(rb"[\xf0-\xf4][\x8f\x9f\xaf\xbf]\xbf[\xbe\xbf]")


def has_forbidden(text: str) -> bool:
    """True if `text` holds a character of FORBIDDEN_CHARS (fast for text in any script)."""
    return forbidden_in_utf8(text.encode("utf-8", "surrogatepass"))


def forbidden_in_utf8(data: bytes) -> bool:
    """`has_forbidden` of the text whose UTF-8 form is `data`: the article reader has the
    bytes a text was decoded from, and checking them saves encoding the text again."""
    leads = data.translate(None, _NOT_LEADS)
    if not leads:
        return False
    if leads.translate(None, _MULTIBYTE_LEADS):
        return True  # a C0 control or DEL
    if b"\xc2" in leads and _C1_CONTROLS.search(data):
        return True
    if b"\xed" in leads and _SURROGATES.search(data):
        return True
    if b"\xef" in leads and _BMP_NONCHARACTERS.search(data):
        return True
    # One byte looked for (memchr), not two two-byte sequences (a scan each, 3 µs a body).
    return b"\xbf" in data and _ASTRAL_NONCHARACTERS.search(data) is not None


def strip_forbidden(text: str) -> str:
    """`text` without the characters of FORBIDDEN_CHARS."""
    return FORBIDDEN_CHARS.sub("", text) if has_forbidden(text) else text


def clean_text(text: str, data: bytes | None = None) -> tuple[str, list[int]]:
    """Remove FORBIDDEN_CHARS; return the text and the 1-based lines they were on. `data`,
    when given, is the UTF-8 form of `text`, checked instead of encoding it."""
    if not (has_forbidden(text) if data is None else forbidden_in_utf8(data)):
        return text, []
    lines: list[int] = []
    line, counted = 1, 0  # newlines are counted once, from the last match on: linear
    for match in FORBIDDEN_CHARS.finditer(text):
        line += text.count("\n", counted, match.start())
        counted = match.start()
        if not lines or lines[-1] != line:
            lines.append(line)
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


def file_suffix(source: str) -> str:
    """`PurePosixPath(source).suffix`, without building a path object."""
    name_start = source.rfind("/") + 1
    dot = source.rfind(".")
    return source[dot:] if name_start < dot < len(source) - 1 else ""


def slug_for(source: str) -> str:
    """URL-safe slug from the file's path relative to articles/ (without suffix)."""
    suffix = file_suffix(source)
    stem = source[:-len(suffix)] if suffix else source
    slug = _NOT_SLUG.sub("-", stem.replace("/", "-")).strip("-.").lower()
    return slug or "article"


@dataclass(frozen=True)
class LoadResult:
    """Every article that parsed, newest first, and an error for each file that did not."""

    articles: list[Article]
    errors: list[ArticleError]

    def published(self, now: datetime) -> list[Article]:
        """Articles readers may see at `now`: not drafts, not dated in the future."""
        return [a for a in self.articles if not a.draft and a.published <= now]
