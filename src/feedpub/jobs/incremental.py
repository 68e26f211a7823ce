"""The site kept in memory by `feedpub run`: after the first build, a change to a few
article files re-reads those files only and re-plans only the outputs they reach.

Each planned article has a signature: its file, how many times that file was read, its date
and its tags (the only fields the site-wide arrangement changes). Two plans are compared by
the signatures at each position, newest first: the positions from the first difference to
the last one (counted from the end) are the changed run. An output depends on articles by
position, so only these are planned again and keyed:

- the pages of the articles in the run and of their two neighbours (prev/next links);
- the home pages the run falls on (all of them from the run on when the count changed:
  the newer articles push the older ones down);
- the tag pages of every tag carried in the run, before or after the change;
- every feed document whose entries' signatures or header (date, links, archived) differ:
  the subscription feeds, the open archive page, a closed archive page when an article
  moves into it or out of it, the tag feeds;
- the sitemap.

When the site's shape changes (a tag appears or goes: every page lists the tags), or the
config, the templates or the drafts mode change, everything is planned again, in memory.
The outputs written are those whose key changed, as in a full build, so the result is the
same files a cold build writes (tests/test_incremental.py checks it on random edits).
"""

from __future__ import annotations

import os
import stat as stat_mode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..articles.cache import (
    BuildCache,
    Parsed,
    Stat,
    Written,
    config_fingerprint,
    load_manifest,
    mark_writing,
    save_manifest,
)
from ..articles.model import ARTICLE_SUFFIXES, Article
from ..articles.scan import article_stats
from ..config import Config
from ..outputs import OutputFile
from .publish import (
    BuildReport,
    _build,
    _read_all,
    _remove_stale,
    _size,
    _write_outputs,
    plan_site,
    select_articles,
)
from .workers import collector_paused

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..feeds.entries import FeedDoc
    from ..site.plan import SiteShape

Sig = tuple[str, int, datetime, tuple[str, ...]]
_MAX_CHANGES = 2000  # more changed paths than this: the whole folder is scanned again


@dataclass
class _Known:
    """What the last build of this process planned and wrote."""

    fingerprint: str
    stats: dict[str, Stat]
    parsed: dict[str, Parsed]
    outputs: dict[str, Written]
    articles: list[Article]
    sigs: list[Sig]
    shape: SiteShape | None
    docs: dict[str, FeedDoc]
    report: BuildReport
    versions: dict[str, int] = field(default_factory=dict)
    env: Environment | None = None


class LiveSite:
    """A site built again and again by one process: `build(changed)` after files changed."""

    def __init__(self, cfg: Config, *, drafts: bool = False) -> None:
        self.cfg = cfg
        self.drafts = drafts
        self._known: _Known | None = None
        self._reads = 0

    def build(self, changed: Iterable[str | os.PathLike[str]] | None = None,
              now: datetime | None = None) -> BuildReport:
        """Bring public/ up to date. `changed` lists the paths that changed since the last
        call (None: not known, every file is looked at)."""
        now = now or datetime.now(UTC)
        with collector_paused():
            fingerprint = config_fingerprint(self.cfg) + ("+drafts" if self.drafts else "")
            known = self._known
            if known is None or known.fingerprint != fingerprint:
                return self._cold(now, fingerprint)
            return self._update(known, self._stats(known.stats, changed), now)

    # -- the first build ----------------------------------------------------------------

    def _cold(self, now: datetime, fingerprint: str) -> BuildReport:
        """A build from disk (the CLI's), whose articles and keys are then kept."""
        kept: list[tuple[BuildCache, list[Article]]] = []
        self._known = None
        report = _build(self.cfg, strict=False, now=now, progress=None, force=False,
                        workers=1, drafts=self.drafts,
                        keep=lambda cache, planned: kept.append((cache, planned)))
        if kept:
            cache, planned = kept[0]
            stats = cache.stats
        else:  # nothing to do: read what the last build knew
            cache = load_manifest(self.cfg)
            if cache.fingerprint != fingerprint:
                return report  # another process changed the config meanwhile
            stats = article_stats(self.cfg.articles_dir)
            result, _ = _read_all(self.cfg, stats, cache, None)
            planned = select_articles(self.cfg, result, now, self.drafts,
                                      BuildReport(with_drafts=self.drafts))
        from ..feeds.plan import plan_docs
        from ..site.plan import site_shape

        known = _Known(fingerprint, dict(stats), cache.parsed, dict(cache.outputs), planned,
                       [], site_shape(planned), {d.path: d for d in plan_docs(planned, self.cfg)},
                       report, {source: 0 for source in stats})
        known.sigs = self._sigs(known, planned)
        self._known = known
        return report

    # -- later builds -------------------------------------------------------------------

    def _stats(self, old: dict[str, Stat],
               changed: Iterable[str | os.PathLike[str]] | None) -> dict[str, Stat]:
        """The article files' stats: `old` updated for the `changed` paths, or a scan."""
        folder = self.cfg.articles_dir
        if changed is None:
            return article_stats(folder)
        paths = list(changed)
        if len(paths) > _MAX_CHANGES:
            return article_stats(folder)
        root = os.path.abspath(folder)
        stats = dict(old)
        added = False
        for path in paths:
            rel = os.path.relpath(os.path.abspath(path), root)
            if rel == "." or rel.startswith(".."):
                return article_stats(folder)  # the folder itself, or something unexpected
            source = rel.replace(os.sep, "/")
            if any(part.startswith((".", "_")) for part in source.split("/")):
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                if stats.pop(source, None) is None and any(
                        s.startswith(source + "/") for s in stats):
                    return article_stats(folder)  # a folder went
                continue
            except OSError:
                return article_stats(folder)
            if not stat_mode.S_ISREG(info.st_mode):  # a folder or a link: look at everything
                return article_stats(folder)
            if not source.lower().endswith(ARTICLE_SUFFIXES):
                continue
            added = added or source not in stats
            stats[source] = (info.st_mtime_ns, info.st_size)
        return dict(sorted(stats.items())) if added else stats

    def _sigs(self, known: _Known, planned: Sequence[Article]) -> list[Sig]:
        versions = known.versions
        return [(a.source, versions.get(a.source, 0), a.published, a.tags) for a in planned]

    def _update(self, known: _Known, stats: dict[str, Stat], now: datetime) -> BuildReport:
        cfg = self.cfg
        todo = [source for source, st in stats.items() if known.stats.get(source) != st]
        gone = any(source not in stats for source in known.stats)
        due = known.report.next_publish is not None and known.report.next_publish <= now
        if not todo and not gone and not due:
            return _unchanged(known.report, len(known.outputs))
        for source in todo:
            self._reads += 1
            known.versions[source] = self._reads
        cache = BuildCache(stats=known.stats, parsed=known.parsed)
        result, reparsed = _read_all(cfg, stats, cache, None)
        for source in [s for s in known.versions if s not in stats]:
            del known.versions[source]
        report = BuildReport(with_drafts=self.drafts, reparsed=reparsed)
        planned = select_articles(cfg, result, now, self.drafts, report)
        sigs = self._sigs(known, planned)
        outputs, removed = self._replan(known, planned, sigs)
        public = cfg.public_dir
        writes = []
        for output in outputs:
            was = known.outputs.get(output.path)
            if was is None or was[0] != output.key or _size(public / output.path) != was[1]:
                writes.append(output)
        if writes:
            mark_writing(cfg, [output.path for output in writes])
        for path, key, size in _write_outputs(public, writes, None, 1):
            known.outputs[path] = (key, size)
            report.written.append(path)
        for path in removed:
            known.outputs.pop(path, None)
        report.removed = _remove_stale(public, removed, set())
        report.outputs = len(known.outputs)
        known.stats, known.parsed = stats, cache.parsed
        known.articles, known.sigs, known.report = planned, sigs, report
        save_manifest(cfg, BuildCache(
            fingerprint=known.fingerprint, stats=stats, outputs=known.outputs,
            published_ids=tuple(a.id for a in planned), next_publish=report.next_publish,
            errors=list(result.errors), warnings=list(report.warnings), drafts=report.drafts,
            scheduled=report.scheduled))
        from .archive import publish_archive

        report.written.extend(publish_archive(cfg))
        return report

    def _replan(self, known: _Known, planned: list[Article], sigs: list[Sig],
                ) -> tuple[list[OutputFile], list[str]]:
        """The outputs the change may reach, and the paths that are no longer planned."""
        from ..feeds.entries import clean_tags
        from ..site.browse import home_path
        from ..site.plan import site_shape

        cfg = self.cfg
        old, was = known.articles, known.sigs
        n, m = len(was), len(sigs)
        start = 0
        while start < min(n, m) and was[start] == sigs[start]:
            start += 1
        tail = 0
        while tail < min(n, m) - start and was[n - 1 - tail] == sigs[m - 1 - tail]:
            tail += 1
        shape = site_shape(planned)
        # `select_articles` keeps the order and tags of `arrange_articles`, which unified them.
        feeds, pages = plan_site(planned, cfg, known.env, unified=True,
                                 shape=shape)
        docs = {doc.path: doc for doc in feeds.docs}
        if pages is not None:
            known.env = pages.env
        if shape != known.shape or pages is None or not known.docs:
            known.shape, known.docs = shape, docs
            everything = [*feeds.outputs(), *(pages.outputs() if pages is not None else ())]
            paths = {output.path for output in everything}
            return everything, [path for path in known.outputs if path not in paths]
        outputs: list[OutputFile] = []
        removed: list[str] = []
        for doc in feeds.docs:
            before = known.docs.get(doc.path)
            if (before is None or _head(before) != _head(doc)
                    or [was[i] for i in before.entries] != [sigs[i] for i in doc.entries]):
                outputs.append(feeds.output(doc))
        removed.extend(path for path in known.docs if path not in docs)
        known.docs = docs
        outputs.extend(pages.article(i) for i in range(max(0, start - 1), min(m, m - tail + 1)))
        now_paths = {a.url_path for a in planned[start:m - tail]}
        removed.extend(a.url_path for a in old[start:n - tail] if a.url_path not in now_paths)
        size = cfg.site.per_page
        count, count_was = max(1, -(-m // size)), max(1, -(-n // size))
        homes = pages.homes()
        if count != count_was:
            numbers = range(1, count + 1)
            removed.extend(home_path(number) for number in range(count + 1, count_was + 1))
        elif n == m:
            numbers = range(start // size + 1, (m - tail - 1) // size + 2)
        else:
            numbers = range(start // size + 1, count + 1)
        outputs.extend(homes[number - 1] for number in numbers if number <= count)
        tags = {tag for article in (*old[start:n - tail], *planned[start:m - tail])
                for tag in clean_tags(article.tags)}
        if tags:
            outputs.extend(pages.tag_pages([t for t in pages.topics if t.tag in tags]))
        if n != m or _dated(old[start:n - tail]) != _dated(planned[start:m - tail]):
            outputs.extend(pages.sitemap(homes)[:1])  # else the same pages and dates
        return outputs, removed


def _dated(articles: Sequence[Article]) -> list[tuple[str, datetime, tuple[str, ...]]]:
    """What the sitemap shows of `articles`: page, date of the last change, tags (each
    tag page is dated by its newest article)."""
    return [(a.url_path, a.modified, a.tags) for a in articles]


def _head(doc: FeedDoc) -> tuple[object, ...]:
    """What a feed document shows besides its entries (the rest follows from its path)."""
    return (doc.title, doc.feed_id, doc.updated, doc.links, doc.archived)


def _unchanged(last: BuildReport, outputs: int) -> BuildReport:
    return BuildReport(skipped=list(last.skipped), warnings=list(last.warnings),
                       articles=last.articles, outputs=outputs, next_publish=last.next_publish,
                       up_to_date=True, drafts=last.drafts, scheduled=last.scheduled,
                       with_drafts=last.with_drafts)
