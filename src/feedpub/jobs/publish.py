"""The publishing job: articles/ -> parsed articles -> planned outputs -> public/.

A rebuild re-reads only the article files whose size or mtime changed (parsed articles are
cached in the data folder) and re-renders only the outputs whose key changed. When neither the
files nor the config nor the set of published entries changed, nothing is loaded at all. When
few files changed, the article index of the last build says which outputs they reach, and
only those are planned (`incremental`, docs/internals/incremental.md).
"""

from __future__ import annotations

import importlib
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..articles.cache import (
    BuildCache,
    Stat,
    Written,
    cache_paths,
    config_fingerprint,
    listed_count,
    listed_stats,
    load_manifest,
    manifest_head,
    mark_writing,
    save_manifest,
)
from ..articles.model import Article, LoadResult
from ..articles.scan import article_stats_later
from ..config import Config
from ..errors import ArticleError
from ..fsutil import fresh_folder
from ..logfmt import log_event
from ..outputs import OutputFile
from .stages import (
    BuildReport,
    Progress,
    SitePlans,
    _read_all,
    _remove_stale,
    _scan,
    _size,
    _write_outputs,
    media_changed,
    media_stats,
    outputs_intact,
    plan_site,
    select_articles,
)
from .workers import available_cores, can_fork, collector_paused

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..articles.records import RecordsWriter
    from .archive import ArchivePlan

__all__ = ["BuildReport", "Progress", "build_feeds", "load_site", "plan_outputs",
           "published_articles"]

log = logging.getLogger("feedpub.build")

def load_site(cfg: Config, now: datetime | None = None) -> LoadResult:
    """Every article (drafts and future ones included) and the errors, newest first.

    Reuses the last build's parsed articles for files that did not change since.
    """
    cache = load_manifest(cfg)
    if cache.fingerprint != config_fingerprint(cfg):
        cache = BuildCache()
    result, _ = _read_all(cfg, _scan(cfg.articles_dir), cache, None)
    return result


def published_articles(cfg: Config, now: datetime | None = None) -> list[Article]:
    """Articles readers may see now (not drafts, not future-dated), newest first."""
    return load_site(cfg).published(now or datetime.now(UTC))


def plan_outputs(articles: list[Article], cfg: Config,
                 env: Environment | None = None) -> list[OutputFile]:
    """Everything the build writes: the feed set and, when available, the site pages
    (rendered with `env`, when given: `site.plan.build_environment`)."""
    return _outputs(plan_site(articles, cfg, env))


def _outputs(plans: SitePlans) -> list[OutputFile]:
    feeds, pages = plans
    return [*feeds.outputs(), *(pages.outputs() if pages is not None else ())]


def build_feeds(cfg: Config, *, strict: bool = False, now: datetime | None = None,
                progress: Progress | None = None, force: bool = False,
                workers: int | None = None, drafts: bool = False,
                retain: list[object] | None = None) -> BuildReport:
    """Build every feed and page into public/. See the module docstring for what is skipped.

    With `strict`, any bad article means nothing is written. Otherwise bad articles are
    reported in `skipped` and the rest are published. A large build is spread over `workers`
    processes (default: one per core, where the process may fork; see `workers.map_chunks`).
    With `drafts` (`feedpub run --drafts`, local sites only), drafts and future-dated entries
    are built too, as if published; digests never read this build.

    `retain`, when given, receives what the build made (the articles, the plans), which
    would otherwise be freed object by object as the build returns: a command that ends its
    process right after, without the interpreter's teardown, leaves it all to the system,
    which takes the whole memory back at once (a full build of 10,000 articles frees about
    25 ms of objects).
    """
    with collector_paused():
        return _build(cfg, strict=strict, now=now, progress=progress, force=force,
                      workers=workers, drafts=drafts, retain=retain)


# Told, before the manifest is written, what a full build read and planned; returns the token
# of the article index it wrote ("" for none).
Keep = Callable[[BuildCache, LoadResult, list[Article], "BuildReport", "SitePlans"], str]


def _build(cfg: Config, *, strict: bool, now: datetime | None, progress: Progress | None,
           force: bool, workers: int | None, drafts: bool = False,
           keep: Keep | None = None, retain: list[object] | None = None) -> BuildReport:
    workers = max(1, workers if workers is not None else
                  (available_cores() if can_fork() else 1))
    now = now or datetime.now(UTC)
    # On a large site the article files are stat'ed by another process (where this one may
    # fork), which tells in one byte when they are as the manifest lists them, while this
    # one reads the manifest and loads what a build from the index needs.
    head = manifest_head(cfg)
    loaded: list[BuildCache] = []

    def listed() -> Mapping[str, Stat]:
        # A child forked before the manifest was read reads the stats part itself; a scan
        # made here (no child) runs once it was read, and compares with what was read.
        return loaded[0].stats if loaded else listed_stats(cfg, head)

    with article_stats_later(cfg.articles_dir, listed, listed_count(head)) as scan:
        previous = load_manifest(cfg, head)
        loaded.append(previous)
        cache = BuildCache() if force else previous
        fingerprint = config_fingerprint(cfg) + ("+drafts" if drafts else "")
        if cache.fingerprint != fingerprint:
            cache = BuildCache()
        if not force and keep is None and cache.index:
            _load_while(scan.ready, cfg.site.pages)
        found = scan.result()
    if found is None and not previous.stats:  # listed, but a part of the manifest is damaged
        found = _scan(cfg.articles_dir)
    stats = previous.stats if found is None else found
    public = cfg.public_dir
    report = BuildReport(with_drafts=drafts)
    unchanged = (
        bool(cache.outputs)
        and stats == cache.stats
        and (cache.next_publish is None or cache.next_publish > now)
        and outputs_intact(public, cache.outputs, cache.folders)
        and not media_changed(cache.media)
    )
    if unchanged:
        report.up_to_date = True
        report.outputs = len(cache.outputs)
        report.articles = len(cache.published_ids)
        report.next_publish = cache.next_publish
        report.skipped = list(cache.errors)
        report.warnings = list(cache.warnings)
        report.drafts, report.scheduled = cache.drafts, cache.scheduled
        return report

    if not force and keep is None and cache.index:
        from .fromindex import build_from_index  # not needed when nothing changed

        quick = build_from_index(cfg, cache, stats, now, strict=strict, drafts=drafts)
        if quick is not None:
            return quick
    # The page templates are compiled while worker processes parse the articles. The parsed
    # articles are kept for the next build in the article index (its records are written as
    # they are parsed), or with `keep` (the daemon, which keeps no index) in the article cache.
    from ..articles.records import RecordsWriter

    records = RecordsWriter(cfg.data_dir) if keep is None else None
    try:
        return _build_all(cfg, cache, previous, stats, now, report, progress, workers, strict,
                          drafts, keep, fingerprint, records, retain)
    finally:
        if retain is not None:
            retain += (cache, previous)
        if records is not None:
            records.close()
            if not cache.index.startswith(records.name + "#"):  # no index names it
                records.path.unlink(missing_ok=True)


def _build_all(cfg: Config, cache: BuildCache, previous: BuildCache, stats: dict[str, Stat],
               now: datetime, report: BuildReport, progress: Progress | None, workers: int,
               strict: bool, drafts: bool, keep: Keep | None, fingerprint: str,
               records: RecordsWriter | None, retain: list[object] | None = None,
               ) -> BuildReport:
    """The rest of a full build: parse, plan, write, remember."""
    public = cfg.public_dir
    early: list[Environment] = []
    result, report.reparsed = _read_all(cfg, stats, cache, progress, workers,
                                        save=keep is not None,
                                        meanwhile=lambda: early.extend(_page_environment(cfg)),
                                        records=records)
    media = media_stats(cfg, result.articles)  # before the lengths are read from the files
    planned_articles = select_articles(cfg, result, now, drafts, report)
    if retain is not None:
        retain.append(result)
    if strict and report.skipped:
        return report
    # `select_articles` keeps the tags of `arrange_articles`, which unified them.
    plans = plan_site(planned_articles, cfg, early[0] if early else None, unified=True)
    planned = _outputs(plans)
    if retain is not None:
        retain += (planned_articles, plans, planned)
    keys: dict[str, Written] = {}
    todo: list[OutputFile] = []
    for output in planned:
        known = cache.outputs.get(output.path)
        if known is None or known[0] != output.key or _size(public / output.path) != known[1]:
            todo.append(output)
        else:
            keys[output.path] = known
    if todo and cache.outputs:
        mark_writing(cfg, [output.path for output in todo])
    cache.fingerprint, cache.stats = fingerprint, stats
    report.outputs = len({output.path for output in planned})
    index: list[str] = []
    archive: list[ArchivePlan] = []

    def meanwhile() -> None:
        # Done while worker processes render the outputs. The article index needs no output
        # key; the manifest that names it is written only once they are. The newsletter
        # archive's files are rendered here and written into public/ once it is complete.
        from .archive import plan_archive

        if records is not None:
            from .fromindex import keep_index

            index.append(keep_index(cfg, cache, result, planned_articles, report, plans,
                                    records.written()))
        archive.append(plan_archive(cfg, rendered=True))

    # A cold build (no public/ yet) fills a hidden folder that becomes public/ in one rename.
    with fresh_folder(public) as staging:
        for path, key, size in _write_outputs(staging or public, todo, progress, workers,
                                              fresh=staging is not None,
                                              first=meanwhile):
            keys[path] = (key, size)
            report.written.append(path)
    keys = {output.path: keys[output.path] for output in planned}  # the planned order
    # The previous build's list, even when its cache is not reused (config change, --force,
    # a manifest of an older version): files it wrote that this build does not plan go.
    report.removed = _remove_stale(public, [*previous.outputs, *previous.older_outputs],
                                   set(keys))
    cache.outputs = keys
    cache.media = media
    cache.published_ids = tuple(a.id for a in planned_articles)
    cache.next_publish = report.next_publish
    cache.errors = list(result.errors)
    cache.warnings = list(report.warnings)
    cache.drafts, cache.scheduled = report.drafts, report.scheduled
    cache.index = index[0] if keep is None else keep(cache, result, planned_articles, report, plans)
    from .archive import publish_archive

    # The newsletter archive before the manifest: a build stopped between the two is done
    # again, rather than followed by builds that find everything up to date but the archive.
    report.written.extend(publish_archive(cfg, plan=archive[0]))
    save_manifest(cfg, cache)
    if cache.index:
        from ..articles.index import remove_stale_records

        remove_stale_records(cfg, cache.index)
        # The index holds the parsed articles now; an article cache the daemon left would
        # be read only once a manifest names no index, and be stale by then.
        cache_paths(cfg)[1].unlink(missing_ok=True)
    log_event(log, "build_written", articles=report.articles, written=len(report.written),
              removed=len(report.removed), skipped=len(report.skipped), reparsed=report.reparsed)
    return report


# What a build from the article index imports (about 60 ms), dependencies first and in small
# steps: `_load_while` stops after the step during which the stats came.
_INDEX_MODULES = (
    "feedpub.jobs.fromindex", "lxml.etree", "feedpub.feeds.media", "feedpub.feeds.entries",
    "dateutil.tz", "dateutil.parser", "feedgen.feed", "feedpub.feeds.xml",
    "feedpub.feeds.writers")
_PAGE_MODULES = (
    "jinja2.utils", "jinja2.nodes", "jinja2.filters", "jinja2.lexer", "jinja2.compiler",
    "jinja2", "babel.dates", "feedpub.i18n", "feedpub.site.pages", "feedpub.site.plan")


def _load_while(ready: Callable[[], bool], pages: bool) -> None:
    """Import what a build from the index needs, one module at a time, until `ready()`
    says the article stats have come (after which nothing may have changed, and nothing
    more is needed)."""
    for name in (*_INDEX_MODULES, *_PAGE_MODULES) if pages else _INDEX_MODULES:
        if ready():
            return
        importlib.import_module(name)


def _page_environment(cfg: Config) -> list[Environment]:
    """The environment the site's pages are rendered with ([] for a feeds-only site)."""
    if not cfg.site.pages:
        return []
    try:
        from ..site.plan import build_environment
    except ImportError:  # pragma: no cover - pages are optional for a feeds-only install
        return []
    return [build_environment(cfg)]


def new_article(cfg: Config, title: str, tags: list[str], today: datetime | None = None) -> Path:
    """Write an entry dated now (day and time of day, in the site's zone) from the
    `new-article.txt.j2` template; never overwrite."""
    from ..site.templating import environment

    title = " ".join(title.split())
    if not title:
        raise ArticleError("new", "the title is empty", fix='pass a title: feedpub new "Title"')
    moment = (today or datetime.now(cfg.site.tz)).astimezone(cfg.site.tz)
    day = moment.date()
    # The time of day too: "now" means now, not the site's default_time later today.
    text = environment(cfg, autoescape=False).get_template("new-article.txt.j2").render(
        date=moment.strftime("%Y-%m-%dT%H:%M"), title=title, tags=tags, author=cfg.site.author)
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
