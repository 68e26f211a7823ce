"""The site kept in memory by `feedpub run`: after the first build, a change to a few
article files re-reads those files only and re-plans only the outputs they reach.

Each planned article has a signature: its file and that file's stat, its date and its tags
(the only fields the site-wide arrangement changes), its slug and `updated` date, and the
lengths of its attachments (which may be read from media files under the site). Two
plans are compared by the signatures at each position, newest first: the positions from the
first difference to the last one (counted from the end) are the changed run. An output
depends on articles by position, so only these are planned again and keyed:

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
Without pages (`[site] pages = false`) only the feed documents are compared.
The outputs written are those whose key changed, as in a full build, so the result is the
same files a cold build writes (tests/test_incremental.py checks it on random edits).
"""

from __future__ import annotations

import dataclasses
import operator
import os
import stat as stat_mode
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast

from ..articles.cache import (
    BuildCache,
    Parsed,
    Stat,
    mark_writing,
    save_manifest,
)
from ..articles.index import (
    Index,
    Kept,
    LazyArticles,
    remove_stale_records,
    save_index,
)
from ..articles.model import ARTICLE_SUFFIXES, Article
from ..articles.parts import Part
from ..articles.scan import article_stats
from ..config import Config
from ..errors import ArticleError
from ..outputs import OutputFile
from .arrange import (
    Arranged,
    Layout,
    Sig,
    rearranged,
    text_signature,
    usual_edit,
)
from .edits import KeptSigs, Planned, replan_edit
from .known import Known, kept_sources, signatures
from .replan import replan_run
from .stages import (
    BuildReport,
    _parse_files,
    _read_all,
    _remove_stale,
    _size,
    _write_outputs,
    media_changed,
    media_stats,
    select_articles,
)

if TYPE_CHECKING:

    pass

_MAX_CHANGES = 2000  # more changed paths than this: the whole folder is scanned again
_FROM_INDEX = 1000  # more changed files than this: `feedpub build` re-plans in full
_SOURCE = operator.itemgetter(0)  # a signature's file
_ID = operator.attrgetter("id")


class Incremental:
    """Builds that re-plan only what changed files reach, from `known` (what the last
    build planned). `LiveSite` (`jobs.live`) is the daemon's; `build_from_index` the CLI's,
    which also writes the article index for the next one."""

    def __init__(self, cfg: Config, *, drafts: bool = False) -> None:
        self.cfg = cfg
        self.drafts = drafts
        self._known: Known | None = None
        self._index: Index | None = None
        self._unsaved: BuildCache | None = None  # the manifest `save` is to write
        self._arrange = False  # keep the arrangement (`jobs.arrange`) between builds
        self._published: tuple[str, ...] | None = None  # the ids the last build planned
        self._errors: list[ArticleError] | None = None  # the files it could not publish
        self._parts: dict[str, Part] = {}  # the manifest's part files (`articles.parts`)

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

    def _update(self, known: Known, stats: dict[str, Stat], now: datetime,
                strict: bool = False, save: bool = True, archive: bool = True) -> BuildReport:
        cfg = self.cfg
        todo = [source for source, _ in stats.items() - known.stats.items()]  # in C
        gone = not known.stats.keys() <= stats.keys()
        due = known.report.next_publish is not None and known.report.next_publish <= now
        if not todo and not gone and not due and not media_changed(known.media):
            return _unchanged(known.report, len(known.outputs))
        cache = BuildCache(stats=known.stats, parsed=known.parsed)
        result = None
        # The files of the usual edit (`arrange.usual_edit`), parsed: only what shows them
        # is planned (`_replan_edit`).
        layout, read_now = None, cast("dict[str, Parsed]", {})
        planned_as_before: Planned | None = None
        if known.arranged is not None:  # the daemon: only the changed files are arranged
            fresh: dict[str, Parsed | None] = dict.fromkeys(
                (s for s in known.stats if s not in stats) if gone else ())
            fresh.update(_parse_files(cfg, todo, None, 1))
            # Read before `update`: the old parse results are needed to tell the usual edit.
            usual = not gone and usual_edit(known.parsed, fresh)
            result = known.arranged.update(fresh, stats)
            if result is None:
                known.arranged = None
            else:
                if usual:
                    read_now = cast("dict[str, Parsed]", fresh)
                now_parsed = dict(known.parsed)
                for source, value in fresh.items():
                    if value is None:
                        del now_parsed[source]
                    else:
                        now_parsed[source] = value
                cache.parsed = now_parsed
                reparsed = len(todo)
        if result is None and known.layout is not None and todo and not gone \
                and known.stats.keys() >= set(todo):  # `feedpub build`: the usual edit
            read_now = _parse_files(cfg, todo, None, 1)
            as_before = self._planned_as_before(known, read_now, due)
            if as_before is not None:
                (cache.parsed, planned_as_before), layout = as_before, known.layout
            elif (quick := rearranged(known.layout.get(), known.parsed, read_now,
                                      stats)) is not None:
                (cache.parsed, result), layout = quick, known.layout
            else:  # parsed once: `_read_all` takes them from the cache
                cache.parsed, cache.stats = {**known.parsed, **read_now}, stats
            reparsed = len(todo)
        sigs: list[Sig] | KeptSigs | None = None
        planned: Sequence[Article]
        if planned_as_before is not None:  # the last selection holds: so does its report
            assert self._errors is not None and self._published is not None
            planned, media, errors = planned_as_before, known.media, self._errors
            report = dataclasses.replace(
                known.report, written=[], removed=[], skipped=list(known.report.skipped),
                warnings=list(known.report.warnings), reparsed=reparsed, partial=False)
        else:
            if result is None:
                result, read = _read_all(cfg, stats, cache, None)
                reparsed = max(read, len(todo))
                if self._arrange:
                    known.arranged = Arranged(cache.parsed, result, stats)
            # The media stats are taken before the lengths are read from the files.
            media, errors = media_stats(cfg, result.articles), result.errors
            report = BuildReport(with_drafts=self.drafts, reparsed=reparsed)
            if known.arranged is not None and not self.drafts:
                planned, sigs = known.arranged.select(cfg, now, report, result.errors, stats)
            else:
                planned = select_articles(cfg, result, now, self.drafts, report)
        if strict and report.skipped:
            return report
        edit = None
        if layout is not None:  # `feedpub build`, from the article index
            edit = self._replan_edit(known, planned, stats, read_now)
        elif read_now and isinstance(sigs, list):  # the daemon
            edit = self._replan_edit(known, planned, stats, read_now, sigs)
        removed: list[str] = []
        if edit is not None:
            (outputs, sigs), report.partial = edit, True
        else:
            if isinstance(known.sigs, KeptSigs):
                known.sigs = known.sigs.all()
            listed = sigs if isinstance(sigs, list) else signatures(stats, planned, known.text)
            outputs, removed, report.partial = replan_run(cfg, known, planned, listed)
            sigs = listed
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
        known.sigs, known.report = sigs, report
        known.media = media
        token = ""
        if planned_as_before is not None and self._published is not None:
            published = self._published  # the same articles, by `_planned_as_before`
        else:
            published = tuple(map(_ID, planned))
            if self._index is not None:
                known.planned = kept_sources(known.planned, planned)
        if self._index is not None:  # the index first: the manifest names it
            if layout is None:
                assert result is not None
                layout = Kept(Layout.of(cache.parsed, result))
            known.layout = layout
            token = save_index(cfg, known.fingerprint, known.parsed, known.plan(), self._index,
                               todo)
        self._unsaved = BuildCache(
            fingerprint=known.fingerprint, stats=stats, outputs=dict(known.outputs),
            published_ids=published, next_publish=report.next_publish,
            errors=list(errors), warnings=list(report.warnings), drafts=report.drafts,
            scheduled=report.scheduled, index=token, media=known.media, parts=self._parts)
        if save:
            self.save()
        if self._index is not None:
            remove_stale_records(cfg, token)
        if archive:  # the newsletter archive, from the store (see `build_from_index`)
            from .archive import publish_archive

            report.written.extend(publish_archive(cfg))
        return report

    def _planned_as_before(self, known: Known, fresh: dict[str, Parsed], due: bool,
                           ) -> tuple[LazyArticles, Planned] | None:
        """`feedpub build` after the usual edit, when the last selection still holds: the
        articles (with the files of `fresh` read anew) and the last build's planned ones
        (`edits.Planned`, made on first use). It holds when the edited files keep what
        arranging looks at (`arrange.usual_edit`), their warnings and attachments, no
        scheduled entry came due and no media file changed: then the same articles are
        planned in the same order, and the last report's counts, warnings and errors stand.
        Else None (the articles are arranged and selected: `rearranged`, `select_articles`)."""
        parsed, layout, sources = known.parsed, known.layout, known.planned
        if (sources is None or layout is None or self._errors is None or self.drafts or due
                or self._published is None or not isinstance(parsed, LazyArticles)
                or not isinstance(known.sigs, KeptSigs) or not known.docs
                or (self.cfg.site.pages and known.shape is None)
                or not usual_edit(parsed, fresh) or media_changed(known.media)):
            return None
        for source, new in fresh.items():
            old = parsed[source]
            assert isinstance(old, Article) and isinstance(new, Article)  # `usual_edit`
            if old.warnings != new.warnings or old.attachments != new.attachments:
                return None
        planned = sources.get()
        if len(planned) != len(self._published):
            return None
        articles = cast("dict[str, Article]", fresh)
        return parsed.updated(fresh), Planned(self.cfg, planned, parsed, articles, layout.get())

    def save(self) -> None:
        """Write the manifest of the last build, if `build` was told not to. Until then the
        outputs it wrote are listed as being written (`mark_writing`), so a process that
        stops first leaves nothing that claims them current."""
        if self._unsaved is not None:
            save_manifest(self.cfg, self._unsaved)
            self._parts = self._unsaved.parts
            self._unsaved = None

    def _replan_edit(self, known: Known, planned: Sequence[Article], stats: dict[str, Stat],
                     fresh: dict[str, Parsed], sigs: list[Sig] | None = None,
                     ) -> tuple[list[OutputFile], KeptSigs | list[Sig]] | None:
        """`edits.replan_edit` when the last build planned these articles in this order.
        `sigs`: the daemon's signatures of `planned` (else the index's are brought up to
        date)."""
        if isinstance(planned, Planned):  # the last build's selection, by its making
            touched = planned.positions(fresh)
        else:
            if media_changed(known.media):
                return None
            if sigs is not None:  # the daemon: the same files in the same order as last time
                was = known.sigs
                if (not isinstance(was, list) or len(was) != len(sigs)
                        or not all(map(operator.eq, map(_SOURCE, was), map(_SOURCE, sigs)))):
                    return None
            elif (not isinstance(known.sigs, KeptSigs)
                    or self._published != tuple(map(_ID, planned))):
                return None
            touched = [i for i, a in enumerate(planned) if a.source in fresh]
        quick = replan_edit(self.cfg, planned, touched, docs=known.docs, shape=known.shape,
                            env=known.env, old=known.parsed, fresh=fresh)
        if quick is None:
            return None
        outputs, known.docs, env = quick
        known.env = env or known.env
        if sigs is not None:
            return outputs, sigs
        assert isinstance(known.sigs, KeptSigs)
        return outputs, known.sigs.changed({i: text_signature(stats, planned[i])
                                            for i in touched})


def _unchanged(last: BuildReport, outputs: int) -> BuildReport:
    return BuildReport(skipped=list(last.skipped), warnings=list(last.warnings),
                       articles=last.articles, outputs=outputs, next_publish=last.next_publish,
                       up_to_date=True, drafts=last.drafts, scheduled=last.scheduled,
                       with_drafts=last.with_drafts)
