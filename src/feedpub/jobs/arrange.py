"""The site-wide arrangement of the articles (`articles.scan.arrange_articles`: all-day
entries of one day spread over distinct seconds, tags in one spelling, newest first), kept
by `feedpub run` and brought up to date for a few changed files without arranging all
of them again.

`Arranged.update` takes the changed files' new parse results and returns the articles in the
order and with the dates and tags `arrange_articles` gives them, or None when the change
reaches beyond what it follows (a slug or id shared by two files, a tag whose site-wide
spelling changes): the caller then arranges everything (`stages._read_all`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from ..articles.cache import Parsed, Stat
from ..articles.index import LazyArticles
from ..articles.model import Article, LoadResult
from ..articles.scan import spread_all_day
from ..config import Config
from ..errors import ArticleError
from .media import fill_lengths
from .stages import BuildReport

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
SortKey = tuple[int, str]
# An article as planned: its file and that file's stat (a new stat: read again), then what
# the site-wide arrangement may change (date, tags) and what pages show of it elsewhere
# (slug, the author's `updated`), and the lengths of its attachments (read from media files
# under the site when the article gives none).
# The dates are datetimes in memory and ISO 8601 text in the article index (equal text, equal
# output, the offset included; text is quick to pickle).
Sig = tuple[str, Stat, "datetime | str", tuple[str, ...], str, "datetime | str | None",
            tuple["int | None", ...]]


def signature(stats: Mapping[str, Stat], a: Article) -> Sig:
    return (a.source, stats[a.source], a.published, a.tags, a.slug, a.updated, lengths(a))


def lengths(article: Article) -> tuple[int | None, ...]:
    return tuple(a.length for a in article.attachments) if article.attachments else ()


def _key(article: Article) -> SortKey:
    """Ascending for newest first, then by slug (`scan.sort_articles`)."""
    return (-((article.published - _EPOCH) // _MICRO), article.slug)


def _grouped(article: Article) -> bool:
    return article.all_day and not article.draft  # `spread_all_day` moves these


class Arranged:
    """The arranged articles of a build, with what it takes to change a few of them."""

    def __init__(self, parsed: Mapping[str, Parsed], result: LoadResult,
                 stats: Mapping[str, Stat]) -> None:
        self.articles = list(result.articles)
        self.keys = [_key(a) for a in self.articles]
        self.sigs = [signature(stats, a) for a in self.articles]
        self.errors = {e.source: e for e in result.errors}
        self.by_source = {a.source: a for a in self.articles}
        self.raw = {s: v for s, v in parsed.items() if isinstance(v, Article)
                    and s in self.by_source}
        # Two files with one slug or id: the later one is an error that an edit of the
        # other one may lift; not followed here.
        self.clash = len(self.raw) != sum(1 for v in parsed.values() if isinstance(v, Article))
        self.slugs = {a.slug: a.source for a in self.raw.values()}
        self.ids = {a.id: a.source for a in self.raw.values()}
        self.days: dict[datetime, set[str]] = {}
        for article in self.raw.values():
            if _grouped(article):
                self.days.setdefault(article.published, set()).add(article.source)
        self.drafted = {a.source for a in self.articles if a.draft}
        self.warned = {a.source for a in self.articles if a.warnings}
        self.unfilled = {a.source for a in self.articles if _unfilled(a)}
        self.counts: Counter[str] = Counter(t for a in self.raw.values() for t in a.tags)
        self.spellings: dict[str, set[str]] = {}
        for tag in self.counts:
            self.spellings.setdefault(tag.casefold(), set()).add(tag)

    def _best(self, folded: str) -> str | None:
        found = [t for t in self.spellings.get(folded, ()) if self.counts[t] > 0]
        return min(found, key=lambda t: (-self.counts[t], t)) if found else None

    def _respell(self, article: Article) -> Article:
        tags = article.tags
        best = [self._best(t.casefold()) or t for t in tags]
        if best == list(tags) and len(set(tags)) == len(tags):
            return article
        return _moved(article, tags=tuple(dict.fromkeys(best)))

    def update(self, fresh: Mapping[str, Parsed | None], stats: Mapping[str, Stat],
               ) -> LoadResult | None:
        """The arrangement after the files in `fresh` changed (None: the file went); None
        when this cannot follow the change. On None the state is unusable: drop it."""
        if self.clash:
            return None
        old = {s: self.raw[s] for s in fresh if s in self.raw}
        new = {s: v for s, v in fresh.items() if isinstance(v, Article)}
        for article in old.values():
            del self.slugs[article.slug], self.ids[article.id]
        for source, article in new.items():
            if self.slugs.setdefault(article.slug, source) != source or \
                    self.ids.setdefault(article.id, source) != source:
                return None
        folded = {t.casefold() for a in (*old.values(), *new.values()) for t in a.tags}
        before = {f: self._best(f) for f in folded}
        for article in old.values():
            self.counts.subtract(article.tags)
        for article in new.values():
            self.counts.update(article.tags)
            for tag in article.tags:
                self.spellings.setdefault(tag.casefold(), set()).add(tag)
        for f in folded:
            after = self._best(f)
            if before[f] is not None and after is not None and after != before[f]:
                return None  # another spelling wins: every article carrying the tag changes
        for source, article in old.items():
            del self.raw[source]
            if _grouped(article):
                self.days[article.published].discard(source)
        days = {a.published for a in (*old.values(), *new.values()) if _grouped(a)}
        for source, article in new.items():
            self.raw[source] = article
            if _grouped(article):
                self.days.setdefault(article.published, set()).add(source)
        moved = set(fresh) | {s for day in days for s in self.days.get(day, ())}
        for source in moved:  # out of the sorted list, by bisection
            placed = self.by_source.pop(source, None)
            for kept in (self.drafted, self.warned, self.unfilled):
                kept.discard(source)
            if placed is not None:
                at = bisect_left(self.keys, _key(placed))
                if at >= len(self.articles) or self.articles[at] is not placed:
                    return None
                del self.articles[at], self.keys[at], self.sigs[at]
        for article in spread_all_day(self.raw[s] for s in moved if s in self.raw):
            article = self._respell(article)
            key = _key(article)
            at = bisect_left(self.keys, key)
            self.articles.insert(at, article)
            self.keys.insert(at, key)
            self.sigs.insert(at, signature(stats, article))
            self.by_source[article.source] = article
            if article.draft:
                self.drafted.add(article.source)
            if article.warnings:
                self.warned.add(article.source)
            if _unfilled(article):
                self.unfilled.add(article.source)
        for source, value in fresh.items():
            self.errors.pop(source, None)
            if isinstance(value, ArticleError):
                self.errors[source] = value
        return LoadResult(list(self.articles), [self.errors[s] for s in sorted(self.errors)])

    def _at(self, source: str) -> int:
        return bisect_left(self.keys, _key(self.by_source[source]))

    def select(self, cfg: Config, now: datetime, report: BuildReport,
               errors: list[ArticleError], stats: Mapping[str, Stat],
               ) -> tuple[list[Article], list[Sig]]:
        """What `stages.select_articles` returns (without drafts mode) for these articles,
        found by bisection: the published ones follow the first position dated `now` or
        earlier, less the drafts; only the drafts and the articles whose attachment lengths
        are read from files are looked at one by one. Their signatures too."""
        articles = self.articles
        cut = bisect_left(self.keys, (-((now - _EPOCH) // _MICRO), ""))  # [:cut]: future
        future = [a for a in articles[:cut] if a.source not in self.drafted]
        report.skipped = list(errors)
        report.warnings = [w for s in sorted(self.warned, key=self._at)
                           for w in self.by_source[s].warnings]
        report.drafts = len(self.drafted)
        report.scheduled = len(future)
        report.next_publish = min((a.published for a in future), default=None)
        planned, sigs = articles[cut:], self.sigs[cut:]
        drop = [i for i in map(self._at, self.drafted) if i >= cut]
        fill = sorted(i for i in map(self._at, self.unfilled - self.drafted) if i >= cut)
        filled, media_errors = fill_lengths([articles[i] for i in fill], cfg)
        by_source = {a.source: a for a in filled}
        for i in fill:
            if articles[i].source in by_source:
                planned[i - cut] = by_source[articles[i].source]
                sigs[i - cut] = signature(stats, planned[i - cut])
            else:  # its attachment is an error
                drop.append(i)
        for i in sorted(drop, reverse=True):
            del planned[i - cut], sigs[i - cut]
        report.skipped.extend(media_errors)
        report.articles = len(planned)
        return planned, sigs


def _unfilled(article: Article) -> bool:
    return any(a.length is None for a in article.attachments)




# What arranging an article looks at (`arrange_articles`, `check_unique`): an article file
# changed in nothing of these keeps its place, its date and its tags in the arrangement.
_ARRANGED_BY = attrgetter("published", "all_day", "draft", "tags", "slug", "id")


@dataclass(frozen=True)
class Layout:
    """A build's arrangement in short, kept in the article index for the next `feedpub
    build`: the arranged articles' files in order, how far an all-day entry was moved,
    the tags respelled, and the errors for files whose slug or id repeats another's.

    When the files that changed differ in nothing arranging looks at (the usual edit: the
    text), `rearranged` gives the arrangement from this without sorting anything."""

    sources: tuple[str, ...]
    shifts: dict[str, timedelta]
    tags: dict[str, tuple[str, ...]]
    duplicates: tuple[ArticleError, ...]

    @classmethod
    def of(cls, parsed: Mapping[str, Parsed], result: LoadResult) -> Layout:
        shifts: dict[str, timedelta] = {}
        tags: dict[str, tuple[str, ...]] = {}
        for article in result.articles:
            raw = parsed[article.source]
            if raw is article or not isinstance(raw, Article):
                continue
            if article.published != raw.published:
                shifts[article.source] = article.published - raw.published
            if article.tags != raw.tags:
                tags[article.source] = article.tags
        duplicates = tuple(e for e in result.errors if isinstance(parsed.get(e.source), Article))
        return cls(tuple(a.source for a in result.articles), shifts, tags, duplicates)


def usual_edit(old: Mapping[str, Parsed | None], fresh: Mapping[str, Parsed | None]) -> bool:
    """Whether every file of `fresh` was an article and still is one, changed in nothing
    arranging looks at: the arrangement stays as it was (the usual edit, of the text)."""
    for source, new in fresh.items():
        was = old.get(source)
        if (not isinstance(new, Article) or not isinstance(was, Article)
                or _ARRANGED_BY(new) != _ARRANGED_BY(was)):
            return False
    return True


def rearranged(layout: Layout, old: Mapping[str, Parsed], fresh: Mapping[str, Parsed],
               stats: Mapping[str, Stat]) -> tuple[Mapping[str, Parsed], LoadResult] | None:
    """The parse results and the arrangement after the files in `fresh` (all of them in
    `old`, no file added or gone) were read again, when none of them changed in what
    arranging looks at; else None (arrange them all: `stages._read_all`). From the article
    index (`LazyArticles`), only the articles arranged are made, not the raw ones first."""
    if not usual_edit(old, fresh):
        return None
    shifts, retagged = layout.shifts, layout.tags
    moved = shifts.keys() | retagged.keys()
    get = old.__getitem__
    lazy = old if isinstance(old, LazyArticles) else None
    if lazy is not None:
        articles = lazy.arranged(layout.sources, fresh, moved)
    else:
        articles = [fresh[s] if s in fresh else None if s in moved else get(s)
                    for s in layout.sources]
    if moved:
        at = dict(zip(layout.sources, range(len(articles)), strict=True))
        for source in moved:
            shift, tags = shifts.get(source), retagged.get(source)
            if lazy is not None and source not in fresh:
                articles[at[source]] = lazy.placed(source, shift, tags)
                continue
            article = fresh[source] if source in fresh else get(source)
            assert isinstance(article, Article)
            articles[at[source]] = placed_as(article, shift, tags)
    if isinstance(old, LazyArticles):
        errors = [e for e in map(old.error_of, stats) if e is not None]
    else:
        errors = [v for v in map(old.__getitem__, stats) if isinstance(v, ArticleError)]
    placed: list[Article] = articles  # type: ignore[assignment]  # every None was filled
    now = old.updated(fresh) if isinstance(old, LazyArticles) else {**old, **fresh}
    return now, LoadResult(placed, [*errors, *layout.duplicates])


def text_signature(stats: Mapping[str, Stat], a: Article) -> Sig:
    return (a.source, stats[a.source], a.published.isoformat(), a.tags, a.slug,
            a.updated.isoformat() if a.updated is not None else "", lengths(a))


def placed_as(article: Article, shift: timedelta | None, tags: tuple[str, ...] | None,
              ) -> Article:
    """`article` (as parsed) moved by `shift` and with `tags`, as the arrangement has it."""
    changes: dict[str, object] = {} if tags is None else {"tags": tags}
    if shift is not None:
        changes["published"] = article.published + shift
    return _moved(article, **changes)


def _moved(article: Article, **changes: object) -> Article:
    """`replace(article, **changes)` without running __init__ again (as `arrange_articles`)."""
    moved = object.__new__(type(article))
    moved.__dict__.update(article.__dict__, **changes)
    return moved
