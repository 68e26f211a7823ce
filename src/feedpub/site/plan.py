"""Every page of the site, planned (pure): the paginated home, article pages with their
neighbours, tag pages, the 404 page, sitemap.xml, robots.txt and style.css.

`plan_pages(articles, cfg)` returns OutputFile records whose keys cover every input (template
sources, site settings, article fields), so the build re-renders only what changed.
`PagePlan` is the same plan in parts, for a long-running build that re-plans only the pages
an article change reaches (see `jobs.incremental`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

from jinja2 import BytecodeCache, Environment

from ..articles.model import Article
from ..config import Config
from ..feeds.entries import ArticleDigests, clean_tags
from ..feeds.plan import tag_slugs
from ..outputs import OutputFile
from .browse import Topic, plan_home, plan_not_found, plan_sitemap, plan_tag_pages, topics_of
from .pages import (
    ArticlePages,
    freeze_templates,
    key_of,
    page_environment,
    site_feeds,
    template_digest,
)

SiteShape = tuple[tuple[str, ...], dict[str, str], dict[str, str]]


def site_shape(ordered: Sequence[Article]) -> SiteShape:
    """What every page may show of the whole site: its tags (sorted as the pages list them),
    their file stems and the page each spelling of a tag links to. Pages planned for one
    shape stay right for another set of articles with the same shape."""
    seen: set[str] = set()
    spellings: set[str] = set()
    for article in ordered:
        spellings.update(article.tags)
    for tag in spellings:
        seen.update(clean_tags((tag,)))
    all_tags = tuple(sorted(seen, key=str.lower))
    slugs = tag_slugs(all_tags)
    tag_paths = {tag: f"tags/{slugs[tag]}.html" for tag in all_tags}
    for tag in sorted(spellings):  # a tag spelled otherwise in one article (spaces) links too
        if tag not in tag_paths and clean_tags((tag,)):
            tag_paths[tag] = tag_paths.get(clean_tags((tag,))[0], "")
    return all_tags, slugs, tag_paths


def build_environment(cfg: Config, bytecode: BytecodeCache | None = None) -> Environment:
    """The page environment of a build: templates compiled once, never reloaded. A
    long-running build keeps it while the templates folder does not change; a short one
    may keep the compiled templates in `bytecode` (keyed by their source)."""
    env = page_environment(cfg)
    env.bytecode_cache = bytecode
    env.auto_reload = False  # one build: no need to stat the templates for every page
    # Compiled here once, not in every build worker.
    freeze_templates(env, ("article.html.j2", "base.html.j2", "_tags.html.j2",
                           "home.html.j2", "tag.html.j2", "404.html.j2"))
    return env


class PagePlan:
    """The pages of one set of articles, planned in parts (`outputs` gives them all)."""

    def __init__(self, articles: Sequence[Article], cfg: Config,
                 digests: Sequence[bytes] | None = None,
                 shape: SiteShape | None = None, env: Environment | None = None, *,
                 in_order: bool = False) -> None:
        self.cfg = cfg
        self.env = env = env if env is not None else build_environment(cfg)
        self.articles = articles
        self.digests = digests if digests is not None else ArticleDigests(articles)
        # Newest first; the indexes point into `digests`, worked out only when a key is needed.
        # `in_order`: `articles` are newest first already (a build's arrangement is).
        self.order: Sequence[int]
        if in_order:
            self.order, self.ordered = range(len(articles)), articles
        else:
            self.order = sorted(range(len(articles)),
                                key=[a.published for a in articles].__getitem__, reverse=True)
            self.ordered = [articles[i] for i in self.order]
        self.shape = shape if shape is not None else site_shape(self.ordered)
        all_tags, slugs, tag_paths = self.shape
        links, tag_feeds = site_feeds(cfg, all_tags, slugs if cfg.feeds.tag_feeds else None)
        self.links = links
        self.topics = topics_of(all_tags, slugs, tag_feeds)
        self.tag_paths = tag_paths
        self.site_key = repr((cfg.site, cfg.feeds.tag_feeds, cfg.newsletter.public_archive))
        self.article_pages = ArticlePages(env, cfg, links[:3], slugs, self.site_key, tag_paths)

    def homes(self, numbers: Iterable[int] | None = None) -> list[OutputFile]:
        """index.html and page/<n>.html (only pages `numbers`, when given)."""
        return plan_home(self.env, self.cfg, self.ordered, self.links, self.topics,
                         self.tag_paths, self.site_key, numbers)

    def article(self, position: int) -> OutputFile:
        """The page of the article at `position` (newest first)."""
        ordered = self.ordered
        older = ordered[position + 1] if position + 1 < len(ordered) else None
        newer = ordered[position - 1] if position > 0 else None
        index = self.order[position]
        output = self.article_pages.plan(self.articles[index],
                                         partial(self.digests.__getitem__, index), older, newer)
        output.near = position
        return output

    def tag_pages(self, topics: Sequence[Topic] | None = None) -> list[OutputFile]:
        """tags/<slug>.html of every tag (of `topics`, when given)."""
        return plan_tag_pages(self.env, self.cfg, self.ordered,
                              self.topics if topics is None else topics,
                              self.article_pages.feeds, self.site_key)

    def fixed(self) -> list[OutputFile]:
        """The pages no article changes: style.css and 404.html."""
        env = self.env
        return [
            OutputFile("style.css", key_of(template_digest(env, ("style.css",))),
                       lambda: env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]
                       .encode("utf-8")),
            plan_not_found(env, self.cfg, self.links[:3], self.site_key),
        ]

    def sitemap(self, homes: Sequence[OutputFile]) -> list[OutputFile]:
        """sitemap.xml and robots.txt; `homes` are every home page."""
        return plan_sitemap(self.cfg, self.ordered, homes, self.topics)

    def outputs(self) -> list[OutputFile]:
        """Every page, in a stable order."""
        homes = self.homes()
        outputs = [*homes, *self.fixed()]
        outputs.extend(self.article(position) for position in range(len(self.ordered)))
        outputs.extend(self.tag_pages())
        outputs.extend(self.sitemap(homes))
        return outputs


def plan_pages(articles: Sequence[Article], cfg: Config,
               digests: Sequence[bytes] | None = None) -> list[OutputFile]:
    """The site's pages for `articles` (published ones, in any order).

    `digests` may give `feeds_model.article_digest` of each article (the build shares them
    between feeds and pages); they key the article pages.
    """
    return PagePlan(articles, cfg, digests).outputs()
