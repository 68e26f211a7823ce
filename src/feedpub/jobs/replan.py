"""The general re-plan of a later build (`incremental`): the positions from the first
changed signature to the last one are the changed run, and only the outputs that show an
article of the run, or whose documents' entries changed, are planned again."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime

from ..articles.model import Article
from ..config import Config
from ..outputs import OutputFile
from .arrange import Sig
from .edits import doc_head
from .known import Known
from .stages import plan_site


def replan_run(cfg: Config, known: Known, planned: Sequence[Article], sigs: list[Sig],
               ) -> tuple[list[OutputFile], list[str], bool]:
    """The outputs the change may reach, the paths that are no longer planned, and
    whether that is fewer than every output (False: all were planned again)."""
    from ..feeds.entries import clean_tags
    from ..feeds.writers import check_articles
    from ..site.browse import home_path
    from ..site.plan import site_shape

    was = known.sigs
    assert isinstance(was, list)
    n, m = len(was), len(sigs)
    start = _same(was, sigs, min(n, m))
    tail = _same(was[::-1], sigs[::-1], min(n, m) - start)
    shape = site_shape(planned) if cfg.site.pages else None
    # `select_articles` keeps the order and tags of `arrange_articles`, which unified them.
    # Outside the changed run, the articles were checked by an earlier build.
    check_articles(planned[start:m - tail])
    feeds, pages = plan_site(planned, cfg, known.env, unified=True, shape=shape,
                             checked=True)
    docs = {doc.path: doc for doc in feeds.docs}
    if pages is not None:
        known.env = pages.env
    if (shape != known.shape and pages is not None) or not known.docs:
        known.shape, known.docs = shape, docs
        everything = [*feeds.outputs(), *(pages.outputs() if pages is not None else ())]
        paths = {output.path for output in everything}
        return everything, [path for path in known.outputs if path not in paths], False
    known.shape = shape  # without pages (`[site] pages = false`) the feeds alone follow it
    outputs: list[OutputFile] = []
    removed: list[str] = []
    for doc in feeds.docs:
        before = known.docs.get(doc.path)
        if (before is None or doc_head(before) != doc_head(doc)
                or [was[i] for i in before.entries] != [sigs[i] for i in doc.entries]):
            outputs.append(feeds.output(doc))
    removed.extend(path for path in known.docs if path not in docs)
    known.docs = docs
    if pages is None:
        return outputs, removed, True
    outputs.extend(pages.article(i) for i in range(max(0, start - 1), min(m, m - tail + 1)))
    now_paths = {a.url_path for a in planned[start:m - tail]}
    removed.extend(path for path in (_page(sig) for sig in was[start:n - tail])
                   if path not in now_paths)
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
    tags = {tag for sig in (*was[start:n - tail], *sigs[start:m - tail])
            for tag in clean_tags(sig[3])}
    if tags:
        outputs.extend(pages.tag_pages([t for t in pages.topics if t.tag in tags]))
    if n != m or _dated(was[start:n - tail]) != _dated(sigs[start:m - tail]):
        outputs.extend(pages.sitemap(homes)[:1])  # else the same pages and dates
    return outputs, removed, True


def _same(was: Sequence[Sig], now: Sequence[Sig], limit: int) -> int:
    """How many leading positions hold equal signatures, at most `limit` (compared in C)."""
    equal = list(map(operator.eq, was[:limit], now[:limit]))
    return equal.index(False) if False in equal else limit


def _dated(sigs: Sequence[Sig]) -> list[tuple[str, object, tuple[str, ...]]]:
    """What the sitemap shows of some articles: page, date of the last change, tags (each
    tag page is dated by its newest article). Dates as written: one instant with two
    offsets is two dates (in memory, the signatures' datetimes would compare equal)."""
    return [(sig[4], _written(sig[5] or sig[2]), sig[3]) for sig in sigs]


def _written(moment: object) -> object:
    return moment.isoformat() if isinstance(moment, datetime) else moment


def _page(sig: Sig) -> str:
    return f"posts/{sig[4]}.html"  # Article.url_path
