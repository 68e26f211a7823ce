"""The site kept in memory by `feedpub run` (see `incremental` and
docs/internals/incremental.md): the first build reads what the last build left on disk,
later ones only the files that changed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime

from ..articles.cache import BuildCache, cache_paths, config_fingerprint, load_manifest
from ..articles.model import Article, LoadResult
from ..articles.scan import article_stats
from ..config import Config
from .arrange import Arranged
from .incremental import Incremental
from .known import Known, known_after
from .publish import _build
from .stages import BuildReport, SitePlans, _read_all, kept_environment, select_articles
from .workers import collector_paused

__all__ = ["LiveSite"]


class LiveSite(Incremental):
    """A site built again and again by one process: `build(changed)` after files changed.
    The first build is a full one from disk; later ones re-read the changed files and
    re-plan what they reach (see `incremental`)."""

    def __init__(self, cfg: Config, *, drafts: bool = False) -> None:
        super().__init__(cfg, drafts=drafts)
        self._arrange = True

    def build(self, changed: Iterable[str | os.PathLike[str]] | None = None,
              now: datetime | None = None, *, save: bool = True) -> BuildReport:
        """Bring public/ up to date. `changed` lists the paths that changed since the last
        call (None: not known, every file is looked at). Without `save`, the manifest is
        written by the next `save()` (once the new files are served, say)."""
        now = now or datetime.now(UTC)
        with collector_paused():
            fingerprint = config_fingerprint(self.cfg) + ("+drafts" if self.drafts else "")
            known = self._known
            if known is None or known.fingerprint != fingerprint:
                self.save()
                return self._cold(now, fingerprint)
            return self._update(known, self._stats(known.stats, changed), now, save=save)

    # -- the first build ----------------------------------------------------------------

    def _cold(self, now: datetime, fingerprint: str) -> BuildReport:
        """A build from disk (the CLI's), whose articles and keys are then kept."""
        kept: list[Known] = []
        self._known = None

        def keep(cache: BuildCache, result: LoadResult, planned: list[Article],
                 report: BuildReport, plans: SitePlans) -> str:
            kept.append(self._arranged(known_after(self.cfg, cache, planned, report,
                                                   plans=plans), result))
            return ""  # no article index: this process keeps the articles in memory

        report = _build(self.cfg, strict=False, now=now, progress=None, force=False,
                        workers=1, drafts=self.drafts, keep=keep)
        if kept:
            self._known = kept[0]
            return report
        # Nothing to do: read what the last build knew.
        cache = load_manifest(self.cfg)
        if cache.fingerprint != fingerprint:
            return report  # another process changed the config meanwhile
        stats = article_stats(self.cfg.articles_dir)
        # The manifest's stats stay until the last build's articles are read: they are what
        # those articles were parsed from. With no article cache yet (`feedpub build` keeps
        # its articles in the index, which this process does not keep up to date), one is
        # written now, for the digests to read while this process changes the site.
        result, _ = _read_all(self.cfg, stats, cache, None,
                              save=not cache_paths(self.cfg)[1].exists())
        cache.stats = stats
        planned = select_articles(self.cfg, result, now, self.drafts,
                                  BuildReport(with_drafts=self.drafts))
        self._known = self._arranged(known_after(self.cfg, cache, planned, report), result)
        return report

    def _arranged(self, known: Known, result: LoadResult) -> Known:
        """`known` with the arrangement kept (`arrange.Arranged`) and the page templates
        compiled, at start-up rather than by the first change, which the writer waits for."""
        known.arranged = Arranged(known.parsed, result, known.stats)
        if self.cfg.site.pages and known.env is None:
            known.env = kept_environment(self.cfg)
        return known
