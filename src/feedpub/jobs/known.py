"""What a build leaves for the next one to compare with (`Known`): the stats, articles,
outputs, signatures, feed documents and site shape of the last build, kept in memory by
the daemon and in the article index for `feedpub build` (see `incremental`)."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..articles.cache import BuildCache, Parsed, Stat, Written
from ..articles.index import Kept
from ..articles.model import Article
from ..config import Config
from .arrange import Arranged, Layout, Sig, signature, text_signature
from .edits import KeptSigs
from .stages import BuildReport

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..feeds.entries import FeedDoc
    from ..site.plan import SiteShape
    from .stages import SitePlans


@dataclass
class Known:
    """What the last build planned and wrote."""

    fingerprint: str
    stats: dict[str, Stat]
    parsed: Mapping[str, Parsed]  # from the article index: `LazyArticles`
    outputs: dict[str, Written]
    sigs: list[Sig] | KeptSigs  # KeptSigs: as the article index keeps them
    shape: SiteShape | None
    docs: dict[str, FeedDoc]
    report: BuildReport
    media: dict[str, Stat] = dataclasses.field(default_factory=dict)
    env: Environment | None = None
    text: bool = False  # the signatures' dates are text (as the article index keeps them)
    arranged: Arranged | None = None  # the daemon's (`jobs.arrange`)
    layout: Kept[Layout] | None = None  # the arrangement in short, kept in the article index
    planned: Kept[tuple[str, ...]] | None = None  # the planned articles' files, in order (idem)

    def plan(self) -> dict[str, object]:
        """What the article index keeps of it for the next `feedpub build`."""
        report = dataclasses.replace(self.report, written=[], removed=[])
        sigs = self.sigs if isinstance(self.sigs, KeptSigs) else KeptSigs.of(self.sigs)
        return {**sigs.plan(), "shape": self.shape, "docs": self.docs, "report": report,
                "layout": self.layout, "planned": self.planned}


def signatures(stats: dict[str, Stat], planned: Sequence[Article], text: bool) -> list[Sig]:
    if text:
        return [text_signature(stats, a) for a in planned]
    return [signature(stats, a) for a in planned]


def known_after(cfg: Config, cache: BuildCache, planned: list[Article],
                report: BuildReport, text: bool = False,
                layout: Kept[Layout] | None = None,
                plans: SitePlans | None = None) -> Known:
    """What a full build that planned `planned` leaves for the next one to compare with.
    `plans`: the feed and page plans it made of them (`stages.plan_site`), whose feed
    documents and site shape are kept rather than worked out again."""
    from ..feeds.plan import plan_docs
    from ..site.plan import site_shape

    feeds, pages = plans if plans is not None else (None, None)
    docs = feeds.docs if feeds is not None else plan_docs(planned, cfg)
    shape = None  # as `replan_run` keeps it
    if cfg.site.pages:
        shape = pages.shape if pages is not None else site_shape(planned)
    return Known(cache.fingerprint, dict(cache.stats), cache.parsed, dict(cache.outputs),
                 signatures(cache.stats, planned, text), shape,
                 {doc.path: doc for doc in docs}, report,
                 dict(cache.media), text=text, layout=layout,
                 planned=kept_sources(None, planned) if text else None)


def kept_sources(kept: Kept[tuple[str, ...]] | None,
                 planned: Sequence[Article]) -> Kept[tuple[str, ...]]:
    """The planned articles' files, as the article index keeps them: `kept` while they are
    the same (its file is named again, not written)."""
    sources = tuple(map(operator.attrgetter("source"), planned))
    return kept if kept is not None and kept.get() == sources else Kept(sources)
