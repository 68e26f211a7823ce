"""The publishing job: articles/ -> parsed articles -> planned outputs -> public/.

A rebuild re-reads only the article files whose size or mtime changed (parsed articles are
cached in the data folder) and re-renders only the outputs whose key changed. When neither the
files nor the config nor the set of published entries changed, nothing is loaded at all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from ..articles import (
    Article,
    LoadResult,
    arrange_articles,
    article_stats,
    check_unique,
    read_article,
)
from ..config import Config
from ..errors import ArticleError
from ..fsutil import atomic_open, atomic_write
from ..logfmt import log_event
from ..outputs import OutputFile
from .workers import available_cores, can_fork, map_chunks, split_by_cost

log = logging.getLogger("feedpub.build")

CACHE_VERSION = 2
Progress = Callable[[int, int], None]
Stat = tuple[int, int]  # (mtime_ns, size)
Written = tuple[str, int]  # (output key, size in bytes)


@dataclass
class BuildReport:
    """What a build did. `skipped` lists the articles that could not be published."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[ArticleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    articles: int = 0
    outputs: int = 0
    next_publish: datetime | None = None
    reparsed: int = 0
    up_to_date: bool = False

    @property
    def ok(self) -> bool:
        return not self.skipped


@dataclass
class _Cache:
    """What the previous build knew: file stats, parsed articles, output keys."""

    fingerprint: str = ""
    stats: dict[str, Stat] = field(default_factory=dict)
    parsed: dict[str, Article | ArticleError] = field(default_factory=dict)
    outputs: dict[str, Written] = field(default_factory=dict)
    published_ids: tuple[str, ...] = ()
    next_publish: datetime | None = None
    errors: list[ArticleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Files listed by a manifest of an older CACHE_VERSION: nothing else of it is reused,
    # but what that build wrote must still go when this build does not plan it.
    older_outputs: tuple[str, ...] = ()


def _config_fingerprint(cfg: Config) -> str:
    relevant = (CACHE_VERSION, cfg.site, cfg.feeds, str(cfg.articles_dir), str(cfg.public_dir),
                str(cfg.templates_dir), _templates_stamp(cfg.templates_dir))
    return hashlib.sha256(repr(relevant).encode()).hexdigest()


def _templates_stamp(folder: Path) -> tuple[tuple[str, int], ...]:
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder)))
    except FileNotFoundError:
        return ()


def _cache_paths(cfg: Config) -> tuple[Path, Path]:
    return cfg.data_dir / "build-manifest.pickle", cfg.data_dir / "build-articles.pickle"


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def _load_manifest(cfg: Config) -> _Cache:
    manifest_path, _ = _cache_paths(cfg)
    data = _load_pickle(manifest_path)
    if not isinstance(data, dict):
        return _Cache()
    if data.get("version") != CACHE_VERSION:
        return _Cache(older_outputs=_older_output_paths(data))
    return _Cache(fingerprint=data["fingerprint"], stats=data["stats"], outputs=data["outputs"],
                  published_ids=data["published_ids"], next_publish=data["next_publish"],
                  errors=data["errors"], warnings=data.get("warnings", []))


def _older_output_paths(data: dict[Any, Any]) -> tuple[str, ...]:
    """The output paths of a manifest from an older CACHE_VERSION (every version so far
    keys `outputs` by the path under public/); () for one this build cannot read."""
    version, outputs = data.get("version"), data.get("outputs")
    if not (isinstance(version, int) and 1 <= version < CACHE_VERSION
            and isinstance(outputs, dict)):
        return ()
    return tuple(path for path in outputs if isinstance(path, str) and path
                 and not PurePosixPath(path).is_absolute() and ".." not in path.split("/"))


_CHUNK = 500  # parsed articles per pickle in the article cache


def _dump(path: Path, data: object) -> None:
    with atomic_open(path, fsync=False) as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)


_ARTICLE_FIELDS = tuple(f.name for f in fields(Article))


def _pack(value: object) -> object:
    """An article as a tuple whose str fields are UTF-8 bytes (anything else as it is).

    Pickling a non-ASCII str makes CPython keep a UTF-8 copy inside the str object for as
    long as it lives; encoding it here makes a short-lived copy instead, which on a large
    site saves about as much memory as the article bodies take.
    """
    if not isinstance(value, Article):
        return value
    return tuple(v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v
                 for v in (getattr(value, name) for name in _ARTICLE_FIELDS))


def _unpack(value: object) -> Article | ArticleError:
    if isinstance(value, Article | ArticleError):
        return value
    assert isinstance(value, tuple)
    values: dict[str, Any] = {
        name: v.decode("utf-8", "surrogatepass") if isinstance(v, bytes) else v
        for name, v in zip(_ARTICLE_FIELDS, value, strict=True)}
    return Article(**values)


def _dump_articles(path: Path, stats: dict[str, Stat],
                   parsed: dict[str, Article | ArticleError]) -> None:
    """The parsed articles as a header and pickles of _CHUNK items each, streamed to the
    file, so saving a large site needs no serialized copy of all of it in memory."""
    items = list(parsed.items())
    with atomic_open(path, fsync=False) as handle:
        pickle.dump({"version": CACHE_VERSION, "stats": stats,
                     "chunks": -(-len(items) // _CHUNK)}, handle,
                    protocol=pickle.HIGHEST_PROTOCOL)
        for start in range(0, len(items), _CHUNK):
            chunk = [(source, _pack(value)) for source, value in items[start:start + _CHUNK]]
            pickle.dump(chunk, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _load_articles(path: Path) -> tuple[dict[str, Stat], dict[str, Article | ArticleError]]:
    """What `_dump_articles` wrote; empty if the cache is missing, old or damaged."""
    try:
        with path.open("rb") as handle:
            head = pickle.load(handle)
            if not isinstance(head, dict) or head.get("version") != CACHE_VERSION:
                return {}, {}
            parsed: dict[str, Article | ArticleError] = {}
            for _ in range(head["chunks"]):
                parsed.update((source, _unpack(value)) for source, value in pickle.load(handle))
            return head["stats"], parsed
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, KeyError,
            TypeError, ValueError):
        return {}, {}


def _save_manifest(cfg: Config, cache: _Cache) -> None:
    _dump(_cache_paths(cfg)[0], {
        "version": CACHE_VERSION, "fingerprint": cache.fingerprint, "stats": cache.stats,
        "outputs": cache.outputs, "published_ids": cache.published_ids,
        "next_publish": cache.next_publish, "errors": cache.errors,
        "warnings": cache.warnings})


def _size(path: Path) -> int:
    """Size of a file in bytes, -1 if it is missing."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def _scan(folder: Path) -> dict[str, Stat]:
    return article_stats(folder)


def _read_all(cfg: Config, stats: dict[str, Stat], cache: _Cache, progress: Progress | None,
              workers: int = 1) -> tuple[LoadResult, int]:
    """Parse changed files, reuse cached results for the others."""
    if cache.stats and not cache.parsed:
        # Stats and parsed articles come from the same file, so a build that replaces the
        # cache while we read can never pair new stats with old articles.
        cache.stats, cache.parsed = _load_articles(_cache_paths(cfg)[1])
    todo = [source for source, stat in stats.items()
            if source not in cache.parsed or cache.stats.get(source) != stat]
    fresh = _parse_files(cfg, todo, progress, workers)
    parsed = {source: fresh[source] if source in fresh else cache.parsed[source]
              for source in stats}
    cache.parsed = parsed
    good = [v for v in parsed.values() if isinstance(v, Article)]
    errors = [v for v in parsed.values() if isinstance(v, ArticleError)]
    kept, dup_errors = check_unique(good)
    return LoadResult(arrange_articles(kept), errors + dup_errors), len(todo)


_PARALLEL_PARSE = 1000  # fewer changed files than this are parsed in one process
_PARSE_CHUNK = 200  # files a worker takes at a time


def _parse_files(cfg: Config, sources: list[str], progress: Progress | None,
                 workers: int) -> dict[str, Article | ArticleError]:
    """Parse `sources`, shared among `workers` processes when there are many of them."""
    total = len(sources)
    home = os.getpid()

    def parse(chunk: int) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for source in sources[chunk * _PARSE_CHUNK:(chunk + 1) * _PARSE_CHUNK]:
            try:
                article: object = read_article(cfg.articles_dir, source, cfg.site)
            except ArticleError as exc:
                article = exc
            # From a worker process: packed, so pickle copies bytes instead of encoding text.
            out.append((source, article if os.getpid() == home else _pack(article)))
        return out

    def done(chunks: int) -> None:
        if progress is not None:
            progress(min(chunks * _PARSE_CHUNK, total), total)

    found: dict[str, Article | ArticleError] = {}
    for result in map_chunks(parse, -(-total // _PARSE_CHUNK),
                             workers if total >= _PARALLEL_PARSE else 1, done):
        for source, value in result:
            found[source] = _unpack(value)
    return found


def load_site(cfg: Config, now: datetime | None = None) -> LoadResult:
    """Every article (drafts and future ones included) and the errors, newest first.

    Reuses the last build's parsed articles for files that did not change since.
    """
    cache = _load_manifest(cfg)
    if cache.fingerprint != _config_fingerprint(cfg):
        cache = _Cache()
    result, _ = _read_all(cfg, _scan(cfg.articles_dir), cache, None)
    return result


def published_articles(cfg: Config, now: datetime | None = None) -> list[Article]:
    """Articles readers may see now (not drafts, not future-dated), newest first."""
    return load_site(cfg).published(now or datetime.now(UTC))


def plan_outputs(articles: list[Article], cfg: Config) -> list[OutputFile]:
    """Everything the build writes: the feed set and, when available, the site pages."""
    from .. import feeds
    from ..articles import unify_tags
    from ..feeds_model import ArticleDigests

    articles = unify_tags(articles)
    digests = ArticleDigests(articles)  # shared by feeds and pages
    planned = list(feeds.plan_feeds(articles, cfg, digests))
    try:
        from .. import pages
    except ImportError:  # pragma: no cover - pages are optional for a feeds-only install
        return planned
    planned.extend(pages.plan_pages(articles, cfg, digests))
    return planned


def _next_publish(articles: Iterable[Article], now: datetime) -> datetime | None:
    future = [a.published for a in articles if not a.draft and a.published > now]
    return min(future) if future else None


def _remove_stale(public: Path, old: Iterable[str], new: set[str]) -> list[str]:
    removed = []
    for path in sorted(set(old) - new):
        try:
            (public / path).unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def build_feeds(cfg: Config, *, strict: bool = False, now: datetime | None = None,
                progress: Progress | None = None, force: bool = False,
                workers: int | None = None) -> BuildReport:
    """Build every feed and page into public/. See the module docstring for what is skipped.

    With `strict`, any bad article means nothing is written. Otherwise bad articles are
    reported in `skipped` and the rest are published. A large build is spread over `workers`
    processes (default: one per core, where the process may fork; see `workers.map_chunks`).
    """
    workers = max(1, workers if workers is not None else
                  (available_cores() if can_fork() else 1))
    now = now or datetime.now(UTC)
    previous = _load_manifest(cfg)
    cache = _Cache() if force else previous
    stats = _scan(cfg.articles_dir)
    fingerprint = _config_fingerprint(cfg)
    if cache.fingerprint != fingerprint:
        cache = _Cache()
    public = cfg.public_dir
    report = BuildReport()
    unchanged = (
        bool(cache.outputs)
        and stats == cache.stats
        and (cache.next_publish is None or cache.next_publish > now)
        and all(_size(public / path) == size for path, (_, size) in cache.outputs.items())
    )
    if unchanged:
        report.up_to_date = True
        report.outputs = len(cache.outputs)
        report.articles = len(cache.published_ids)
        report.next_publish = cache.next_publish
        report.skipped = list(cache.errors)
        report.warnings = list(cache.warnings)
        return report

    result, report.reparsed = _read_all(cfg, stats, cache, progress, workers)
    report.skipped = result.errors
    report.warnings = [w for a in result.articles for w in a.warnings]
    if strict and result.errors:
        return report
    published = result.published(now)
    report.articles = len(published)
    report.next_publish = _next_publish(result.articles, now)
    planned = plan_outputs(published, cfg)
    keys: dict[str, Written] = {}
    todo: list[OutputFile] = []
    for output in planned:
        known = cache.outputs.get(output.path)
        if known is None or known[0] != output.key or _size(public / output.path) != known[1]:
            todo.append(output)
        else:
            keys[output.path] = known
    # The parsed articles are saved while the outputs are written (by this process before it
    # takes its share, when worker processes write too). Should the build stop after this, the
    # next one still finds stats and articles that belong together: they share one file.
    save_articles = partial(_dump_articles, _cache_paths(cfg)[1], stats, cache.parsed)
    for path, key, size in _write_outputs(public, todo, progress, workers, save_articles):
        keys[path] = (key, size)
        report.written.append(path)
    keys = {output.path: keys[output.path] for output in planned}  # the planned order
    # The previous build's list, even when its cache is not reused (config change, --force,
    # a manifest of an older version): files it wrote that this build does not plan go.
    report.removed = _remove_stale(public, [*previous.outputs, *previous.older_outputs],
                                   set(keys))
    report.outputs = len(keys)
    cache.fingerprint, cache.stats, cache.outputs = fingerprint, stats, keys
    cache.published_ids = tuple(a.id for a in published)
    cache.next_publish = report.next_publish
    cache.errors = list(result.errors)
    cache.warnings = list(report.warnings)
    _save_manifest(cfg, cache)
    log_event(log, "build_written", articles=report.articles, written=len(report.written),
              removed=len(report.removed), skipped=len(report.skipped), reparsed=report.reparsed)
    return report


_PARALLEL_RENDER = 4000  # outputs costing less than this (about 0.3 s) are made in one process
_RENDER_CHUNKS = 64  # a parallel render is cut into this many chunks of about equal cost


def _write_outputs(public: Path, todo: list[OutputFile], progress: Progress | None,
                   workers: int, first: Callable[[], None] | None = None,
                   ) -> list[tuple[str, str, int]]:
    """Render and write `todo`, shared among `workers` processes when it is much work;
    return (path, key, size) of each written file, in `todo` order. `first` runs here
    before this process takes its share (see `workers.map_chunks`)."""
    costs = [output.cost for output in todo]
    parallel = workers > 1 and sum(costs) >= _PARALLEL_RENDER
    chunks = split_by_cost(costs, _RENDER_CHUNKS if parallel else 1)
    starts = [chunk.start for chunk in chunks]

    folder = os.fspath(public)

    def write(chunk: int) -> list[tuple[str, str, int]]:
        written: list[tuple[str, str, int]] = []
        for output in todo[chunks[chunk].start:chunks[chunk].stop]:
            # No fsync per file: outputs can always be built again, and a crash that loses
            # one leaves it missing or short, which the next build's size check rewrites.
            data = output.render()
            atomic_write(os.path.join(folder, output.path), data, fsync=False)
            written.append((output.path, output.key, len(data)))
        return written

    def done(count: int) -> None:
        if progress is not None:
            progress(starts[count] if count < len(starts) else len(todo), len(todo))

    results = map_chunks(write, len(chunks), workers if parallel else 1, done, first)
    return [item for result in results for item in result]


def new_article(cfg: Config, title: str, tags: list[str], today: datetime | None = None) -> Path:
    """Write a dated plain-text entry from the `new-article.txt.j2` template; never overwrite."""
    from ..templating import environment

    title = " ".join(title.split())
    if not title:
        raise ArticleError("new", "the title is empty", fix='pass a title: feedpub new "Title"')
    day = (today or datetime.now(cfg.site.tz)).astimezone(cfg.site.tz).date()
    text = environment(cfg, autoescape=False).get_template("new-article.txt.j2").render(
        date=day.isoformat(), title=title, tags=tags, author=cfg.site.author)
    base = slugify(title) or "entry"
    folder = cfg.articles_dir
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = f"{day.isoformat()}-{base}{'' if n == 1 else f'-{n}'}.txt"
        path = folder / name
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(text)
            return path
        except FileExistsError:
            continue
    raise ArticleError(folder, f"too many entries named '{base}' today", fix="choose another title")


def slugify(text: str) -> str:
    """Lower-case ASCII slug (accents folded) for file names and URLs."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:60].strip("-")
