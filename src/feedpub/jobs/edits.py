"""The usual edit: a few article files changed in what pages and feeds show of them (the
text, the title, the summary) but not in what arranges the site (date, flags, tags, slug, id:
`arrange.usual_edit`), after `feedpub build` (from the article index) or in the daemon.

Then the last build's plan holds: the same articles are planned in the same order, and only
the outputs that show a changed article can change. `replan_edit` plans those from the last
build's feed documents (the changed articles' pages, the neighbours', home and tag pages
when what they show of them changed, the feed documents that carry them, the sitemap when
a date it shows changed) without planning or comparing anything per article of the site;
the article index keeps the signatures as they were (`KeptSigs`): pickled once, with the
few changed positions beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, overload

from ..articles.index import Kept, LazyArticles
from ..articles.model import Article
from ..config import Config
from ..outputs import OutputFile
from .arrange import Layout, Sig, placed_as
from .media import fill_lengths

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


class Planned(Sequence[Article]):
    """The articles the last build planned, in its order, each made on first use: from the
    article index (`LazyArticles`), with the files of `fresh` read anew, placed as the
    arrangement placed them (`Layout`: the all-day shifts and respelled tags), and with the
    attachment lengths read from the media files as `select_articles` reads them.

    For the usual edit from the command line, when the last selection still holds (see
    `Incremental._planned_as_before`): an edit then makes the few articles the outputs that
    show it need, not 10,000."""

    def __init__(self, cfg: Config, sources: Sequence[str], stored: LazyArticles,
                 fresh: Mapping[str, Article], layout: Layout) -> None:
        self._cfg, self._sources, self._stored = cfg, sources, stored
        self._fresh, self._layout = fresh, layout
        self._made: dict[str, Article] = {}

    def __len__(self) -> int:
        return len(self._sources)

    @overload
    def __getitem__(self, index: int) -> Article: ...

    @overload
    def __getitem__(self, index: slice) -> list[Article]: ...

    def __getitem__(self, index: int | slice) -> Article | list[Article]:
        if isinstance(index, slice):
            return [self._make(source) for source in self._sources[index]]
        return self._make(self._sources[index])

    def positions(self, sources: Iterable[str]) -> list[int]:
        """Where the articles of `sources` are planned (those that are), in order."""
        at = self._sources.index
        return sorted(at(source) for source in sources if source in self._sources)

    def _make(self, source: str) -> Article:
        found = self._made.get(source)
        if found is not None:
            return found
        shift, tags = self._layout.shifts.get(source), self._layout.tags.get(source)
        moved = shift is not None or tags is not None
        read = self._fresh.get(source)
        if read is not None:
            article = placed_as(read, shift, tags) if moved else read
        else:
            stored = self._stored.placed(source, shift, tags) if moved else self._stored[source]
            assert isinstance(stored, Article)
            article = stored
        if article.attachments and any(a.length is None for a in article.attachments):
            filled, errors = fill_lengths([article], self._cfg)
            if errors:  # the media files were looked at before: only a race gets here
                raise errors[0]
            article = filled[0]
        self._made[source] = article
        return article


def dated(old: Mapping[str, object], fresh: Mapping[str, object]) -> bool:
    """Whether a changed article shows another date in the sitemap (its `updated`, or its
    `published` written with another offset)."""
    def shown(article: object) -> tuple[str, str]:
        assert isinstance(article, Article)
        updated = article.updated.isoformat() if article.updated is not None else ""
        return article.published.isoformat(), updated

    return any(shown(old[source]) != shown(value) for source, value in fresh.items())


def replan_edit(cfg: Config, planned: Sequence[Article], touched: Sequence[int], *,
                docs: dict[str, FeedDoc], shape: SiteShape | None, env: Environment | None,
                old: Mapping[str, object], fresh: Mapping[str, object],
                ) -> tuple[list[OutputFile], dict[str, FeedDoc], Environment | None] | None:
    """The outputs that may show the articles at positions `touched` of `planned` (the last
    build's articles, in its order, the files of `fresh` read anew; `old` has them as they
    were), the feed documents now, and the page environment; None when the last build left
    no plan to follow (plan everything: `replan.replan_run`).

    The last build's feed documents hold: the same articles sit in the same places, so only
    the date of a document that carries an edited article may change. The site's shape (its
    tags) is the same too. Of the other pages, only those whose key covers a field that
    changed are planned: the neighbours' pages and the tag pages show an article's title,
    the home pages its title and summary, the sitemap its dates."""
    from ..feeds.entries import ArticleDigests, clean_tags
    from ..feeds.plan import redated
    from ..feeds.writers import FeedPlan, check_articles
    from ..site.browse import HOME_SHOWS, TAG_SHOWS
    from ..site.pages import NEIGHBOUR_SHOWS
    from ..site.plan import PagePlan

    if not docs or (cfg.site.pages and shape is None):
        return None
    check_articles([planned[i] for i in touched])
    marked = set(touched)
    digests = ArticleDigests(planned)  # shared by feeds and pages
    now_docs = dict(docs)
    carrying = []
    for path, doc in docs.items():
        if not marked.isdisjoint(doc.entries):
            now_docs[path] = doc = redated(doc, planned)
            carrying.append(doc)
    feeds = FeedPlan(planned, cfg, digests, unified=True, checked=True,
                     docs=list(now_docs.values()))
    outputs = [feeds.output(doc) for doc in carrying]
    if not cfg.site.pages:
        return outputs, now_docs, None
    pages = PagePlan(planned, cfg, digests, shape=shape, env=env, in_order=True)

    def changed(shows: Callable[[object], object]) -> bool:
        # As the keys see them: by repr, so that one instant written with two offsets differs.
        return any(repr(shows(old[source])) != repr(shows(article))
                   for source, article in fresh.items())

    size = len(planned)
    near = (-1, 0, 1) if changed(NEIGHBOUR_SHOWS) else (0,)
    outputs.extend(pages.article(i) for i in sorted(
        {j for i in marked for j in (i + d for d in near) if 0 <= j < size}))
    if changed(HOME_SHOWS):
        outputs.extend(pages.homes(sorted({i // cfg.site.per_page + 1 for i in marked})))
    tags = {tag for i in marked for tag in clean_tags(planned[i].tags)}
    if tags and changed(TAG_SHOWS):
        outputs.extend(pages.tag_pages([t for t in pages.topics if t.tag in tags]))
    if dated(old, fresh):
        outputs.extend(pages.sitemap(pages.homes())[:1])
    return outputs, now_docs, pages.env


def doc_head(doc: FeedDoc) -> tuple[object, ...]:
    """What a feed document shows besides its entries (the rest follows from its path)."""
    return (doc.title, doc.feed_id, doc.updated, doc.links, doc.archived)
