"""`feedpub build` from the article index (`articles.index`): a full build leaves the index
(`keep_index`), and the next build reads it lazily and re-plans only what the changed files
reach (`build_from_index`), as the daemon does from memory (`incremental`)."""

from __future__ import annotations

from datetime import datetime

from ..articles.cache import BuildCache, Stat
from ..articles.index import Kept, load_index, save_index
from ..articles.model import Article, LoadResult
from ..articles.records import Written
from ..config import Config
from .arrange import Layout
from .edits import KeptSigs
from .incremental import _FROM_INDEX, Incremental
from .known import Known, known_after
from .stages import BuildReport, SitePlans, kept_environment, outputs_intact
from .workers import collector_paused


def keep_index(cfg: Config, cache: BuildCache, result: LoadResult, planned: list[Article],
               report: BuildReport, plans: SitePlans, written: Written | None = None) -> str:
    """After a full `feedpub build` that made `plans` of `planned`: write the article index
    (its records, unless `written` names them, written as the articles were parsed);
    return its token."""
    known = known_after(cfg, cache, planned, report, text=True,
                        layout=Kept(Layout.of(cache.parsed, result)), plans=plans)
    return save_index(cfg, known.fingerprint, known.parsed, known.plan(), None, (), written)


def build_from_index(cfg: Config, manifest: BuildCache, stats: dict[str, Stat],
                     now: datetime, *, strict: bool, drafts: bool) -> BuildReport | None:
    """`feedpub build` from the article index of the last build: the changed files are read
    and the outputs they reach re-planned, as `feedpub run` does. None when the index cannot
    serve (missing, of another build, too many changes, outputs missing from public/)."""
    changed = len(stats.items() - manifest.stats.items())
    if changed > _FROM_INDEX:
        return None
    if not outputs_intact(cfg.public_dir, manifest.outputs, manifest.folders):
        return None  # a file under public/ was deleted or changed: look at every output
    index = load_index(cfg, manifest.index)
    if index is None or index.fingerprint != manifest.fingerprint:
        return None
    plan = index.plan
    site = Incremental(cfg, drafts=drafts)
    site._index = index
    site._published = manifest.published_ids
    site._errors = list(manifest.errors)
    site._parts = manifest.parts
    env = kept_environment(cfg)  # one process per build: templates compiled once, kept
    sigs, changes = plan.get("sigs"), plan.get("sig_changes")
    if not isinstance(sigs, Kept) or not isinstance(changes, dict):
        return None  # an index of an earlier version
    known = Known(manifest.fingerprint, dict(manifest.stats), index.parsed,
                   dict(manifest.outputs), KeptSigs(sigs, changes), plan["shape"],
                   plan["docs"],
                   plan["report"], dict(manifest.media), env, text=True,
                   layout=layout if isinstance(layout := plan.get("layout"), Kept) else None,
                   planned=planned if isinstance(planned := plan.get("planned"), Kept) else None)
    site._known = known
    with collector_paused():
        # The newsletter archive depends on the store, not on the articles: the digest jobs
        # write it when an issue is sent, and a full build looks at it again. Opening the
        # store here would cost a new process more than the rest of the build.
        return site._update(known, stats, now, strict=strict, archive=False)


