"""Every page of the site, planned (pure): the paginated home, article pages with their
neighbours, tag pages, the 404 page, sitemap.xml, robots.txt and style.css.

`plan_pages(articles, cfg)` returns OutputFile records whose keys cover every input (template
sources, site settings, article fields), so the build re-renders only what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ..articles.model import Article
from ..config import Config
from ..feeds.entries import ArticleDigests, clean_tags
from ..feeds.plan import tag_slugs
from ..outputs import OutputFile
from .browse import plan_home, plan_not_found, plan_sitemap, plan_tag_pages, topics_of
from .pages import (
    ArticlePages,
    freeze_templates,
    key_of,
    page_environment,
    site_feeds,
    template_digest,
)


def plan_pages(articles: Sequence[Article], cfg: Config,
               digests: Sequence[bytes] | None = None) -> list[OutputFile]:
    """The site's pages for `articles` (published ones, in any order).

    `digests` may give `feeds_model.article_digest` of each article (the build shares them
    between feeds and pages); they key the article pages.
    """
    env = page_environment(cfg)
    env.auto_reload = False  # one build: no need to stat the templates for every page
    # Compiled here once, not in every build worker.
    freeze_templates(env, ("article.html.j2", "base.html.j2", "_tags.html.j2",
                           "home.html.j2", "tag.html.j2", "404.html.j2"))
    if digests is None:
        digests = ArticleDigests(articles)
    # Newest first; the indexes point into `digests`, worked out only when a key is needed.
    order = sorted(range(len(articles)), key=lambda i: articles[i].published, reverse=True)
    ordered = [articles[i] for i in order]
    all_tags = sorted({t for a in ordered for t in clean_tags(a.tags)}, key=str.lower)
    slugs = tag_slugs(all_tags)
    links, tag_feeds = site_feeds(cfg, all_tags, slugs if cfg.feeds.tag_feeds else None)
    topics = topics_of(all_tags, slugs, tag_feeds)
    tag_paths = {topic.tag: topic.page for topic in topics}
    for article in ordered:  # a tag spelled otherwise in one article (spaces) links too
        for tag in article.tags:
            if tag not in tag_paths and clean_tags((tag,)):
                tag_paths[tag] = tag_paths.get(clean_tags((tag,))[0], "")
    site_key = repr((cfg.site, cfg.feeds.tag_feeds, cfg.newsletter.public_archive))

    homes = plan_home(env, cfg, ordered, links, topics, tag_paths, site_key)
    outputs = [
        *homes,
        OutputFile("style.css", key_of(template_digest(env, ("style.css",))),
                   lambda: env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]
                   .encode("utf-8")),
        plan_not_found(env, cfg, links[:3], site_key),
    ]
    article_pages = ArticlePages(env, cfg, links[:3], slugs, site_key, tag_paths)
    for position, index in enumerate(order):
        older = ordered[position + 1] if position + 1 < len(ordered) else None
        newer = ordered[position - 1] if position > 0 else None
        outputs.append(article_pages.plan(articles[index], partial(digests.__getitem__, index),
                                          older, newer))
    outputs.extend(plan_tag_pages(env, cfg, ordered, topics, article_pages.feeds, site_key))
    outputs.extend(plan_sitemap(cfg, ordered, homes, topics))
    return outputs
