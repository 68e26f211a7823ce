"""The stages of a build, shared by the full build (`publish`) and the incremental one
(`incremental`): reading the articles, choosing what is published, planning the outputs,
writing them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..articles.cache import (
    BuildCache,
    Parsed,
    Stat,
    Written,
    article_cache,
    cache_paths,
    load_articles,
    packed_chunk,
    read_chunk,
)
from ..articles.model import Article, LoadResult
from ..articles.records import RecordsWriter, sent_chunk
from ..articles.scan import arrange_articles, article_stats, check_unique, read_article
from ..config import Config
from ..errors import ArticleError
from ..fsutil import atomic_write, current_umask, write_new
from ..outputs import OutputFile
from .media import _local_path, fill_lengths
from .workers import MAX_CHUNKS, map_chunks, split_by_cost

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..feeds.writers import FeedPlan
    from ..site.plan import PagePlan, SiteShape

Progress = Callable[[int, int], None]
# What `plan_site` makes of a build's articles: the feed set and the pages (None: no pages).
SitePlans = tuple["FeedPlan", "PagePlan | None"]


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
    drafts: int = 0  # entries marked Draft (built only by `run --drafts`)
    scheduled: int = 0  # entries dated in the future (likewise)
    with_drafts: bool = False  # drafts and scheduled entries were built into the site
    partial: bool = False  # only the outputs the changed files reach were planned

    def summary(self) -> str:
        """"3 published, 1 draft, 1 scheduled, 0 skipped" (drafts: "built" when shown)."""
        shown = " (built: --drafts)" if self.with_drafts and self.drafts + self.scheduled else ""
        return (f"{self.articles} published, {self.drafts} draft(s), {self.scheduled} "
                f"scheduled{shown}, {len(self.skipped)} skipped")

    @property
    def ok(self) -> bool:
        return not self.skipped


def _size(path: Path) -> int:
    """Size of a file in bytes, -1 if it is missing."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return -1


def outputs_intact(public: Path, outputs: dict[str, Written],
                   folders: dict[str, int] | None = None) -> bool:
    """Whether every output is under `public` with the size the build wrote. When the
    folders that hold them have the mtimes `folders` gives (taken once they were written,
    `cache.folder_stamps`), no file in them was added, removed or renamed since, and the
    outputs are not looked at one by one."""
    if folders and all(_mtime(os.path.join(public, name)) == stamp
                       for name, stamp in folders.items()):
        return True
    folder = os.fspath(public) + os.sep
    stat = os.stat
    try:
        return all(stat(folder + path).st_size == size for path, (_, size) in outputs.items())
    except FileNotFoundError:
        return False


def media_stats(cfg: Config, articles: Iterable[Article]) -> dict[str, Stat]:
    """The stat of every file an attachment without a length may be read from (under
    public/, then articles/; (-1, -1) for one that is missing): the lengths in the outputs
    follow from these, so a build whose media stats changed plans the articles again."""
    found: dict[str, Stat] = {}
    folders = (os.fspath(cfg.public_dir), os.fspath(cfg.articles_dir))
    for article in articles:
        for attachment in article.attachments:
            if attachment.length is not None:
                continue
            path = _local_path(cfg, attachment.url)
            if path is None:
                continue
            for folder in folders:
                found[os.path.join(folder, path)] = _stat(os.path.join(folder, path))
    return found


def _stat(path: str) -> Stat:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


def media_changed(media: dict[str, Stat]) -> bool:
    """Whether a file `media_stats` listed has another stat now."""
    return any(_stat(path) != stat for path, stat in media.items())


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _scan(folder: Path) -> dict[str, Stat]:
    return article_stats(folder)


def _read_all(cfg: Config, stats: dict[str, Stat], cache: BuildCache, progress: Progress | None,
              workers: int = 1, save: bool = False,
              meanwhile: Callable[[], None] | None = None,
              records: RecordsWriter | None = None) -> tuple[LoadResult, int]:
    """Parse changed files, reuse cached results for the others. With `save`, the article
    cache is written anew as the files are parsed; with `records`, the article index's
    records file (`articles.records`). `meanwhile()` is other work of the build that needs
    no article, done here while worker processes parse (else before parsing). The stats of
    `cache` must be those of the manifest it came from (or of no manifest)."""
    assert not (save and records), "the article cache or the index's records, not both"
    if cache.stats and not cache.parsed:
        _last_articles(cfg, cache)
    todo = [source for source, stat in stats.items()
            if source not in cache.parsed or cache.stats.get(source) != stat]
    with (article_cache(cache_paths(cfg)[1], stats) if save
          else contextlib.nullcontext(None)) as saved:
        fresh = _parse_files(cfg, todo, progress, workers, saved, meanwhile, records)
        kept = ([(source, cache.parsed[source]) for source in stats if source not in fresh]
                if saved is not None or records is not None else [])
        for start in range(0, len(kept), _PARSE_CHUNK):
            if saved is not None:
                saved.write(packed_chunk(kept[start:start + _PARSE_CHUNK]))
            if records is not None:
                records.add(kept[start:start + _PARSE_CHUNK])
    parsed = {source: fresh[source] if source in fresh else cache.parsed[source]
              for source in stats}
    cache.parsed = parsed
    good = [v for v in parsed.values() if isinstance(v, Article)]
    errors = [v for v in parsed.values() if isinstance(v, ArticleError)]
    kept_articles, dup_errors = check_unique(good)
    return LoadResult(arrange_articles(kept_articles), errors + dup_errors), len(todo)


def _last_articles(cfg: Config, cache: BuildCache) -> None:
    """Fill `cache` with the last build's parsed articles, to be reused for the files whose
    stat is the one it gives: from the article index the manifest names (`feedpub build`
    keeps its articles there, read lazily), else from the article cache (`feedpub run`
    keeps no index). Stats and articles always come from one build, so a build that replaces
    either while this one reads can never pair new stats with old articles: the manifest
    names the index written with it, and the article cache holds its own stats."""
    if cache.index:
        from ..articles.index import load_index

        index = load_index(cfg, cache.index)
        if index is not None and index.fingerprint == cache.fingerprint:
            cache.parsed = index.parsed  # for the manifest's stats
            return
    cache.stats, cache.parsed = load_articles(cache_paths(cfg)[1])


_PARALLEL_PARSE = 1000  # fewer changed files than this are parsed in one process
_PARSE_CHUNK = 200  # files a worker takes at a time (more on sites too large for MAX_CHUNKS)


def _parse_files(cfg: Config, sources: list[str], progress: Progress | None, workers: int,
                 saved: BinaryIO | None = None, meanwhile: Callable[[], None] | None = None,
                 records: RecordsWriter | None = None) -> dict[str, Parsed]:
    """Parse `sources`, shared among `workers` processes when there are many of them; each
    chunk of results also goes to `saved` (the article cache) as a `packed_chunk` record,
    and to `records` (the article index's records). `meanwhile()` is called once, while
    worker processes parse (or first, without them)."""
    total = len(sources)
    size = max(_PARSE_CHUNK, -(-total // MAX_CHUNKS))
    home = os.getpid()

    def parse(chunk: int) -> list[tuple[str, Parsed]] | bytes:
        out: list[tuple[str, Parsed]] = []
        for source in sources[chunk * size:(chunk + 1) * size]:
            try:
                article: Parsed = read_article(cfg.articles_dir, source, cfg.site,
                                               cfg.articles)
            except ArticleError as exc:
                article = exc
            out.append((source, article))
        if os.getpid() != home:
            # A worker sends the record itself: it is what the cache needs, and here this
            # process writes it as it is, without pickling the articles again.
            return packed_chunk(out, keep=False) if records is None else sent_chunk(out)
        if saved is not None:
            saved.write(packed_chunk(out))
        if records is not None:
            records.add(out)
        return out

    def done(chunks: int) -> None:
        if progress is not None:
            progress(min(chunks * size, total), total)

    parallel = workers > 1 and total >= _PARALLEL_PARSE

    def first() -> None:
        if parallel:
            _load_writers()
        if meanwhile is not None:
            meanwhile()

    def receive(result: list[tuple[str, Parsed]] | bytes) -> list[tuple[str, Parsed]]:
        # A worker's record, as it arrives: into the cache as it is, and read back.
        if isinstance(result, bytes):
            if records is not None:  # a `sent_chunk`: its records written as they are
                return records.receive(result)
            if saved is not None:
                saved.write(result)
            return read_chunk(result)
        return result

    found: dict[str, Parsed] = {}
    for result in map_chunks(parse, -(-total // size), workers if parallel else 1,
                             done, first, receive):
        found.update(receive(result))
    return found


def _load_writers() -> None:
    """Import the feed and page writers, which a build needs next: done while worker
    processes parse, the time it takes is shared among them."""
    from ..feeds import writers  # noqa: F401
    from ..site import plan  # noqa: F401


def plan_site(articles: Sequence[Article], cfg: Config, env: Environment | None = None, *,
              unified: bool = False, shape: SiteShape | None = None, checked: bool = False,
              ) -> SitePlans:
    """The plans `plan_outputs` lists: the feed set and, when available, the site pages
    (with the page environment `env`, when one is kept from an earlier build). `unified`
    says the articles' tags are spelled one way already (`arrange_articles` did it);
    `checked`, that `feeds.writers.check_articles` passed them."""
    from ..articles.scan import unify_tags
    from ..feeds.entries import ArticleDigests
    from ..feeds.writers import FeedPlan

    if not unified:
        articles = unify_tags(articles)
    digests = ArticleDigests(articles)  # shared by feeds and pages
    feeds = FeedPlan(articles, cfg, digests, unified=True, checked=checked)
    if not cfg.site.pages:  # `[site] pages = false`: feeds only, the pages live elsewhere
        return feeds, None
    try:
        from ..site import plan as site_plan
    except ImportError:  # pragma: no cover - pages are optional for a feeds-only install
        return feeds, None
    return feeds, site_plan.PagePlan(articles, cfg, digests, shape=shape, env=env)


def kept_environment(cfg: Config) -> Environment:
    """The page environment, its compiled templates kept in the data folder (keyed by their
    source): a process that renders a few pages does not compile every template again."""
    from jinja2 import FileSystemBytecodeCache

    from ..site.plan import build_environment

    folder = cfg.data_dir / "templates-compiled"
    folder.mkdir(parents=True, exist_ok=True)
    return build_environment(cfg, FileSystemBytecodeCache(str(folder)))


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


def select_articles(cfg: Config, result: LoadResult, now: datetime, drafts: bool,
                    report: BuildReport) -> list[Article]:
    """The articles a build plans (published ones, or with `drafts` every one), with the
    report's counts and errors filled in."""
    report.skipped = result.errors
    report.warnings = [w for a in result.articles for w in a.warnings]
    published, media_errors = fill_lengths(result.published(now), cfg)
    report.skipped = [*report.skipped, *media_errors]
    report.drafts = sum(1 for a in result.articles if a.draft)
    report.scheduled = sum(1 for a in result.articles if not a.draft and a.published > now)
    report.articles = len(published)
    report.next_publish = _next_publish(result.articles, now)
    if drafts:  # the same order, drafts and future included
        published, _ = fill_lengths(list(result.articles), cfg)
    return published


_PARALLEL_RENDER = 4000  # outputs costing less than this (about 0.1 s) are made in one process
_RENDER_CHUNKS = 64  # a parallel render is cut into this many chunks of about equal cost


def _write_outputs(public: Path, todo: list[OutputFile], progress: Progress | None,
                   workers: int, fresh: bool = False, first: Callable[[], None] | None = None,
                   ) -> list[tuple[str, str, int]]:
    """Render and write `todo`, shared among `workers` processes when it is much work;
    return (path, key, size) of each written file, in `todo` order. `fresh`: `public` is a
    new folder no reader sees yet (`fsutil.fresh_folder`), so files are written directly.
    `first()` is other work of the build, done here while worker processes render (or
    before rendering, without them)."""
    costs = [output.cost for output in todo]
    parallel = workers > 1 and sum(costs) >= _PARALLEL_RENDER
    given = todo
    if parallel:  # the outputs of the same articles together (`OutputFile.near`)
        todo = sorted(todo, key=attrgetter("near"))
        costs = [output.cost for output in todo]
    chunks = split_by_cost(costs, _RENDER_CHUNKS if parallel else 1)
    starts = [chunk.start for chunk in chunks]

    folder = os.fspath(public)
    umask = current_umask() if fresh else None  # a build does not change it

    def write(chunk: int) -> list[tuple[str, str, int]]:
        written: list[tuple[str, str, int]] = []
        for output in todo[chunks[chunk].start:chunks[chunk].stop]:
            # No fsync per file: outputs can always be built again, and a crash that loses
            # one leaves it missing or short, which the next build's size check rewrites.
            data = output.render()
            if fresh:
                write_new(os.path.join(folder, output.path), data, umask=umask)
            else:
                atomic_write(os.path.join(folder, output.path), data, fsync=False)
            written.append((output.path, output.key, len(data)))
        return written

    def done(count: int) -> None:
        if progress is not None:
            progress(starts[count] if count < len(starts) else len(todo), len(todo))

    # The costliest chunks first (the sitemap, tag pages of a large site): a process that
    # takes one of them last keeps the other waiting for it.
    weights = [sum(costs[chunk.start:chunk.stop]) for chunk in chunks]
    order = sorted(range(len(chunks)), key=weights.__getitem__, reverse=True)
    results = map_chunks(write, len(chunks), workers if parallel else 1, done, first,
                         order=order)
    found = [item for result in results for item in result]
    if todo is not given:  # in the order given
        place = {output.path: n for n, output in enumerate(given)}
        found.sort(key=lambda item: place[item[0]])
    return found
