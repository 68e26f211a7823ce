"""The usual edit, from the command line: `feedpub build` after a few article files changed
in what pages and feeds show of them (the text, the title, the summary) but not in what
arranges the site (date, tags, slug, id: `arrange.rearranged`).

Then the last build's plan holds: the same articles are planned in the same order, and only
the outputs that show a changed article can change. `replan_edit` plans those (the changed
articles' pages and their neighbours', the home and tag pages they fall on, the feed
documents that carry them, the sitemap when a date it shows changed) without comparing
10,000 signatures, and the article index keeps the signatures as they were (`KeptSigs`):
pickled once, with the few changed positions beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..articles.index import Kept
from ..articles.model import Article
from ..config import Config
from ..outputs import OutputFile
from .arrange import Sig

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..feeds.entries import FeedDoc
    from ..site.plan import SiteShape

_CHANGES = 500  # changed positions kept beside the pickled signatures before they are pickled anew


class KeptSigs:
    """The signatures of a build's planned articles, as the article index keeps them: a
    pickled list and the positions changed since."""

    def __init__(self, base: Kept[list[Sig]], changes: dict[int, Sig]) -> None:
        self.base, self.changes = base, changes

    @classmethod
    def of(cls, sigs: list[Sig]) -> KeptSigs:
        return cls(Kept(sigs), {})

    def all(self) -> list[Sig]:
        sigs = list(self.base.get())
        for position, sig in self.changes.items():
            sigs[position] = sig
        return sigs

    def changed(self, changes: Mapping[int, Sig]) -> KeptSigs:
        """These signatures with those at a few positions replaced."""
        kept = KeptSigs(self.base, {**self.changes, **changes})
        return KeptSigs.of(kept.all()) if len(kept.changes) > _CHANGES else kept

    def plan(self) -> dict[str, object]:
        """What the article index keeps of these (`fromindex.build_from_index` reads it)."""
        return {"sigs": self.base, "sig_changes": self.changes}


def dated(old: Mapping[str, object], fresh: Mapping[str, object]) -> bool:
    """Whether a changed article shows another date in the sitemap (its `updated`, or its
    `published` written with another offset)."""
    def shown(article: object) -> tuple[str, str]:
        assert isinstance(article, Article)
        updated = article.updated.isoformat() if article.updated is not None else ""
        return article.published.isoformat(), updated

    return any(shown(old[source]) != shown(value) for source, value in fresh.items())


def replan_edit(cfg: Config, planned: list[Article], touched: Sequence[int], *,
                docs: dict[str, FeedDoc], shape: SiteShape | None, env: Environment | None,
                sitemap: bool) -> tuple[list[OutputFile], dict[str, FeedDoc],
                                        Environment | None] | None:
    """The outputs that may show the articles at positions `touched` of `planned` (the last
    build's articles, in its order), the feed documents now, and the page environment;
    None when the site's shape changed after all (plan everything: `Incremental._replan`)."""
    from ..feeds.entries import clean_tags
    from ..feeds.writers import check_articles
    from ..site.plan import site_shape
    from .stages import plan_site

    now_shape = site_shape(planned) if cfg.site.pages else None
    if now_shape != shape or not docs:
        return None
    check_articles([planned[i] for i in touched])
    feeds, pages = plan_site(planned, cfg, env, unified=True, shape=now_shape, checked=True)
    marked = set(touched)
    outputs: list[OutputFile] = []
    for doc in feeds.docs:
        before = docs.get(doc.path)
        if (before is None or before.entries != doc.entries or doc_head(before) != doc_head(doc)
                or not marked.isdisjoint(doc.entries)):
            outputs.append(feeds.output(doc))
    now_docs = {doc.path: doc for doc in feeds.docs}
    if now_docs.keys() != docs.keys():
        return None
    if pages is None:
        return outputs, now_docs, None
    size = len(planned)
    outputs.extend(pages.article(i) for i in sorted(
        {j for i in marked for j in (i - 1, i, i + 1) if 0 <= j < size}))
    outputs.extend(pages.homes(sorted({i // cfg.site.per_page + 1 for i in marked})))
    tags = {tag for i in marked for tag in clean_tags(planned[i].tags)}
    if tags:
        outputs.extend(pages.tag_pages([t for t in pages.topics if t.tag in tags]))
    if sitemap:
        outputs.extend(pages.sitemap(pages.homes())[:1])
    return outputs, now_docs, pages.env


def doc_head(doc: FeedDoc) -> tuple[object, ...]:
    """What a feed document shows besides its entries (the rest follows from its path)."""
    return (doc.title, doc.feed_id, doc.updated, doc.links, doc.archived)
