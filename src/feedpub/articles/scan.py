"""The article store reader: the folder scan, the format dispatch, ordering and tags.

`parse_article(text, source, site)` is pure; `load_articles(dir, site)` and `read_article`
are the only readers of articles/.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from operator import attrgetter
from pathlib import Path

from ..config import ArticlesConfig, SiteConfig
from ..errors import ArticleError
from .limits import MAX_DEPTH
from .model import (
    ARTICLE_SUFFIXES,
    Article,
    LoadResult,
    clean_text,
    decode_article,
    file_suffix,
)
from .stats import Pending, may_fork, stat_files


def parse_article(text: str, source: str, site: SiteConfig,
                  max_depth: int = MAX_DEPTH, *, data: bytes | None = None) -> Article:
    """Parse one article (format chosen by the file suffix). Pure: no file access.

    `source` is the path relative to articles/, used in ids, slugs and error messages.
    Raises ArticleError naming the file, line and fix; nesting deeper than `max_depth` (front
    matter, HTML) is such an error. `data`, when given, is the UTF-8 form of `text` (the
    file's bytes, which `decode_article` decoded): it is what the check for characters
    feeds must not carry reads, rather than an encoding of the whole text made for it.
    """
    from .plain import parse_plain

    text = text.removeprefix("\ufeff")
    if "\r" in text:  # one scan for the usual file, not two replace scans
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Neither the byte order mark nor a carriage return is a forbidden character, so the
    # file's bytes tell about the text without them as well.
    cleaned, bad_lines = clean_text(text, data)
    warnings = tuple(
        f"{source}:{line}: removed characters that feeds must not contain (control "
        "characters, noncharacters or U+FFFD)"
        for line in bad_lines
    )
    if not cleaned or cleaned.isspace():
        raise ArticleError(source, "the file is empty", line=1,
                           fix="start it with a line such as 'date 2024-03-05 Title'")
    if file_suffix(source).lower() in (".md", ".markdown"):
        from .markdown import parse_markdown

        article = parse_markdown(cleaned, source, site, max_depth)
    else:
        article = parse_plain(cleaned, source, site, checked=True)
    return replace(article, warnings=warnings + article.warnings) if warnings else article


def sort_articles(articles: list[Article]) -> list[Article]:
    """Newest first; entries on the same instant in a stable order by slug."""
    articles.sort(key=attrgetter("slug"))  # attrgetter: the keys are read in C
    articles.sort(key=attrgetter("published"), reverse=True)
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
    moved = object.__new__(type(article))
    moved.__dict__.update(article.__dict__, published=published)
    return moved


def canonical_tags(tag_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """Map every spelling of every tag to its site-wide spelling.

    Tags that differ only in case ("Food", "food") are one tag: they share one feed and one
    page. Its spelling is the one most articles use; a tie goes to the spelling that sorts
    first, so the choice never depends on file order.
    """
    return canonical_spellings(Counter(tag for tags in tag_lists for tag in tags))


def canonical_spellings(counts: Counter[str]) -> dict[str, str]:
    """`canonical_tags` from the number of articles that carry each spelling."""
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


# Stats standing for files the scan refuses (read_article then says why).
OUTSIDE: tuple[int, int] = (-2, -2)  # a link to something outside the articles folder
LOOP: tuple[int, int] = (-3, -3)  # a link to a folder that is already being read


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def article_stats_later(folder: Path, listed: Callable[[], Mapping[str, tuple[int, int]]],
                        files: int) -> Pending[dict[str, tuple[int, int]] | None]:
    """`article_stats(folder)`, or None when they equal `listed()` (what the last build
    saw), worked out by a forked process while this one goes on (`stats.Pending`) when the
    last build saw at least `_APART` (of `files`): on a large site the stats take as long as
    a build's other work, and when nothing changed one byte comes back; on a small one,
    forking would cost more than they do."""
    apart = files >= _APART and may_fork()
    # Scanned here, a large folder may still be split between two processes.
    return Pending(partial(_stats_unless, folder, listed, not apart), fork=apart)


def _stats_unless(folder: Path, listed: Callable[[], Mapping[str, tuple[int, int]]],
                  split: bool) -> dict[str, tuple[int, int]] | None:
    stats = article_stats(folder, split=split)
    return None if stats == listed() else stats


_APART = 1000  # article files from which the scan is worth a process of its own


def article_stats(folder: Path, *, split: bool = True) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of each article file under `folder`, keyed by relative POSIX path.

    Hidden files and folders (`.`, `_`) are skipped. A file that cannot be stat'ed (a dangling
    link, say) gets (-1, -1), so that reading it reports the problem instead of hiding it.
    Symbolic links are resolved: one whose target lies outside `folder` gets OUTSIDE, one to
    a folder already on the way down (a loop) or already read gets LOOP; neither is followed.
    """
    found: dict[str, tuple[int, int]] = {}
    files: list[tuple[str, str]] = []  # (key, path) of the regular files, stat'ed at the end
    root = os.path.realpath(folder)
    seen = {root}
    stack = [("", str(folder))]
    while stack:
        prefix, current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            if not prefix:  # the folder itself: an empty site would replace the published one
                raise ArticleError(folder, "the articles folder does not exist, so nothing "
                                   "was built and the published files are as they were",
                                   fix="create it, or set [paths] articles in config.toml to "
                                   "the folder that holds the articles") from None
            continue  # a subfolder removed meanwhile
        except OSError:  # an unreadable subfolder: reading it reports the problem
            if prefix:
                found[prefix.rstrip("/")] = (-1, -1)
                continue
            raise
        # Regular files first, told by d_type without a system call: the usual case, and the
        # one a large site has 10,000 of.
        files.extend((prefix + e.name, e.path) for e in entries
                     if e.is_file(follow_symlinks=False)
                     and e.name.lower().endswith(ARTICLE_SUFFIXES)
                     and not e.name.startswith((".", "_")))
        for entry in [e for e in entries if not e.is_file(follow_symlinks=False)]:
            name = entry.name
            if name.startswith((".", "_")):
                continue
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not _inside(real, root):
                    if name.lower().endswith(ARTICLE_SUFFIXES) or os.path.isdir(real):
                        found[prefix + name] = OUTSIDE
                    continue
                if os.path.isdir(real):
                    if real in seen:
                        found[prefix + name] = LOOP
                    else:
                        seen.add(real)
                        stack.append((f"{prefix}{name}/", entry.path))
                    continue
            elif entry.is_dir(follow_symlinks=False):
                seen.add(os.path.realpath(entry.path))
                stack.append((f"{prefix}{name}/", entry.path))
                continue
            if name.lower().endswith(ARTICLE_SUFFIXES):
                try:
                    st = entry.stat()
                    found[prefix + name] = (st.st_mtime_ns, st.st_size)
                except OSError:
                    found[prefix + name] = (-1, -1)
    files.sort()  # by key: the regular files in the order the stats are listed in
    stats = dict(zip([key for key, _ in files],
                     stat_files([path for _, path in files], split=split), strict=True))
    if not found:  # no link, no unreadable folder: the usual case, in order already
        return stats
    stats.update(found)
    return dict(sorted(stats.items()))


def read_article(folder: Path, source: str, site: SiteConfig,
                 limits: ArticlesConfig | None = None) -> Article:
    """Read and parse one file of the article store.

    Only files inside `folder` are read (links are resolved first); a file larger than
    `limits.max_bytes` is refused unread. Whatever goes wrong with this one file (a loop,
    bad bytes, nesting, a parser's own failure) is an ArticleError naming it."""
    limits = limits or ArticlesConfig()
    try:
        data = _read_inside(folder, source, limits.max_bytes)
    except OSError as exc:
        raise _unreadable(folder, source, exc) from exc
    try:
        return parse_article(decode_article(data, source), source, site, limits.max_depth,
                             data=data)
    except ArticleError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the build
        raise ArticleError(source, f"it could not be read ({type(exc).__name__})",
                           fix="simplify the file; it may be nested too deeply or damaged"
                           ) from exc


def _read_inside(folder: Path, source: str, max_bytes: int) -> bytes:
    """The bytes of `folder/source`, which must lie inside `folder` (ArticleError if not)."""
    if ".." in source.split("/") or os.path.isabs(source):
        raise ArticleError(source, "the path leads out of the articles folder",
                           fix="keep articles inside the articles folder")
    path = os.path.join(folder, source)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        # The common case, a plain file: one system call, no link followed.
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if not os.path.islink(path):
            raise
        real = os.path.realpath(path)
        if not _inside(real, os.path.realpath(folder)):
            raise ArticleError(source, "it is a symbolic link to a file outside the articles "
                               "folder; it was not read",
                               fix="copy the file into the articles folder or delete the "
                               "link") from exc
        if os.path.isdir(real):
            raise ArticleError(source, "it is a symbolic link to a folder that is already "
                               "read (a loop)", fix="delete the link") from exc
        fd = os.open(real, flags)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise ArticleError(source, f"the file is {size:,} bytes, more than the limit of "
                               f"{max_bytes:,}", line=1,
                               fix="split it, or raise [articles] max_bytes in config.toml")
        chunks = []
        total = 0
        while total <= max_bytes and (chunk := os.read(fd, 1 << 16)):
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:  # it grew while being read
        raise ArticleError(source, f"the file is more than the limit of {max_bytes:,} bytes",
                           line=1, fix="split it, or raise [articles] max_bytes in config.toml")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _unreadable(folder: Path, source: str, exc: OSError) -> ArticleError:
    """The error for an article file that cannot be read, with the likely fix. It names the
    file, and what a link points to only when that lies inside the articles folder."""
    path = folder / source
    if exc.errno == errno.ELOOP:
        return ArticleError(source, "it is a symbolic link that loops back on itself",
                            fix="point the link at an existing file or delete it")
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        inside = _inside(os.path.realpath(path), os.path.realpath(folder))
        shown = target if inside else "a place outside the articles folder"
        return ArticleError(source, f"it is a symbolic link to {shown}, which does not exist",
                            fix="point the link at an existing file or delete it")
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
    for article in sorted(articles, key=attrgetter("source")):
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


def load_articles(folder: Path, site: SiteConfig,
                  limits: ArticlesConfig | None = None) -> LoadResult:
    """Read every article under `folder`. Bad files become errors; the rest still load."""
    articles: list[Article] = []
    errors: list[ArticleError] = []
    for source in article_stats(folder):  # sorted relative paths
        try:
            articles.append(read_article(folder, source, site, limits))
        except ArticleError as exc:
            errors.append(exc)
    kept, dup_errors = check_unique(articles)
    return LoadResult(arrange_articles(kept), errors + dup_errors)
