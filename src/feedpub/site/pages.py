"""The site's HTML pages: a home/archive page and one page per article (pure).

`ArticlePages` plans OutputFile records whose keys cover every input (template
sources, site settings, article fields), so the build re-renders only what changed. Templates
come from the site's templates/ folder first, then the package defaults. The web app renders
its form pages with the same environment (`page_environment`, `render_page`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from jinja2 import Environment, Template, meta, pass_context
from jinja2.runtime import Context
from lxml import etree
from markupsafe import Markup, escape

from .. import __version__
from ..articles.model import Article
from ..config import Config, SiteConfig
from ..feeds.entries import clean_tags, may_have_relative_link
from ..feeds.plan import tag_slugs
from ..i18n import format_day
from ..outputs import OutputFile
from .splice import BODY_MARK, body_spliced, splice
from .templating import environment

if TYPE_CHECKING:
    from hashlib import _Hash


@dataclass(frozen=True)
class FeedLink:
    """One `<link rel="alternate">` for feed autodiscovery."""

    href: str
    type: str
    title: str


class FeedLinks(tuple[FeedLink, ...]):
    """The autodiscovery links of a page. A template may loop over them, or write
    `{{ feeds }}` for every `<link rel="alternate">` tag, one a line (worked out once per
    list, and a build shares one list among the pages with the same tags)."""

    @cached_property
    def fingerprint(self) -> str:
        """What a page's key needs of the links: each href and title."""
        return repr([(link.href, link.title) for link in self])

    @cached_property
    def digest(self) -> bytes:
        """sha256 of `fingerprint`: 32 bytes a key takes as they are."""
        return hashlib.sha256(self.fingerprint.encode("utf-8", "surrogatepass")).digest()

    @cached_property
    def _html(self) -> Markup:
        return Markup("\n".join(
            f'<link rel="alternate" type="{escape(link.type)}" title="{escape(link.title)}" '
            f'href="{escape(link.href)}">' for link in self))

    def __html__(self) -> Markup:
        return self._html


@dataclass(frozen=True)
class TagFeeds:
    """The per-tag feed files of one tag."""

    tag: str
    rss: str
    atom: str


def page_links(html: str, base_url: str, root: str) -> str:
    """Rewrite the site-relative links of an article body for a page `root` levels down.

    Article links are relative to the site's base URL; on `posts/<slug>.html` they must be
    relative to that page instead ("../maps/x.html"), so the site works under any host.
    Links leaving the site stay absolute.
    """
    if not root or not may_have_relative_link(html):
        return html

    def rebase(link: str) -> str:
        if link.startswith("#"):
            return link
        absolute = urljoin(base_url, link)
        return root + absolute[len(base_url):] if absolute.startswith(base_url) else absolute

    import lxml.html  # here: most bodies have no relative link, and it costs 10 ms to import

    try:
        wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return html
    wrapper.rewrite_links(rebase, resolve_base_href=False)
    return lxml.html.tostring(wrapper, encoding="unicode")[len("<div>"):-len("</div>")]


def _day(value: datetime, site: SiteConfig) -> str:
    """The day in the site's time zone, written for its language ("5 March 2024")."""
    return format_day(value, site.tz, site.language)


def site_root(cfg: Config) -> str:
    """The site's path on its host ("/", "/blog/"): links from it work at any depth."""
    return urlsplit(cfg.site.base_url).path or "/"


def page_environment(cfg: Config) -> Environment:
    """The HTML environment (autoescaping) with the page filters and `tag_list` installed."""
    env = environment(cfg, autoescape=True)
    env.filters["day"] = _day
    env.globals["tag_list"] = _tag_list(env)
    return env


# What `_tags.html.j2` may use for its output to depend on the tags, the page's depth and the
# tag pages alone (with the environment's globals), so that one rendering serves every page.
_TAG_LIST_INPUTS = frozenset({"tags", "root", "tag_paths"})


def _tag_list(env: Environment) -> Callable[..., Markup]:
    """`tag_list(tags, **more)` for templates: `_tags.html.j2` rendered for `tags` with the
    page's `root` and `tag_paths`, as `{% with tags = ... %}{% include "_tags.html.j2" %}`
    would.

    A site shows a few hundred tag lists over thousands of pages, so each list is rendered
    once per page depth and kept. A `_tags.html.j2` of the site's own that uses anything else
    is rendered for every call, with the page's variables and `more` (the templates pass the
    `article` whose tags these are, which in a loop is not one of the page's variables).
    """
    kept: dict[tuple[tuple[str, ...], str, int], tuple[object, Markup]] = {}
    plain: dict[Template, bool] = {}  # the template uses nothing but _TAG_LIST_INPUTS

    @pass_context
    def tag_list(context: Context, tags: Sequence[str], **more: Any) -> Markup:
        root, paths = context.get("root"), context.get("tag_paths")
        key = (tuple(tags), str(root), id(paths))
        found = kept.get(key)
        if found is not None and found[0] is paths:
            return found[1]
        template = env.get_template("_tags.html.j2")
        if template not in plain:
            plain[template] = _only_tag_inputs(env, template)
        if env.auto_reload or not plain[template]:
            # Templates that may change meanwhile, or a list that shows more of the page.
            return Markup(template.render(context.get_all(), **more, tags=tags))
        html = Markup(template.render(root=root, tag_paths=paths, tags=tags))
        kept[key] = (paths, html)  # the dict itself is kept, so its id is never reused
        return html

    return tag_list


def _only_tag_inputs(env: Environment, template: Template) -> bool:
    """Whether `template` uses nothing but `_TAG_LIST_INPUTS` and the globals."""
    source = env.loader.get_source(env, template.name or "")[0]  # type: ignore[union-attr]
    used = meta.find_undeclared_variables(env.parse(source))
    return used <= _TAG_LIST_INPUTS | set(template.globals)


def text_environment(cfg: Config) -> Environment:
    """The plain-text environment, for email bodies."""
    return environment(cfg, autoescape=False)


def site_feeds(cfg: Config, tags: Sequence[str], slugs: dict[str, str] | None = None,
               ) -> tuple[list[FeedLink], list[TagFeeds]]:
    """Autodiscovery links for the main feeds and the feeds of `tags` (absolute URLs).

    `slugs` maps every tag of the site to its feed file stem (the feed builder's rule, which
    depends on the whole tag set); it defaults to the slugs of `tags` alone.
    """
    base, title = cfg.site.base_url, cfg.site.title
    links = [FeedLink(base + "feed.xml", "application/rss+xml", f"{title} (RSS)"),
             FeedLink(base + "atom.xml", "application/atom+xml", f"{title} (Atom)"),
             FeedLink(base + "feed.json", "application/feed+json", f"{title} (JSON Feed)")]
    per_tag: list[TagFeeds] = []
    if cfg.feeds.tag_feeds:
        wanted = clean_tags(tags)
        slugs = slugs if slugs is not None else tag_slugs(wanted)
        for tag in sorted(wanted, key=str.lower):
            slug = slugs[tag]
            per_tag.append(TagFeeds(tag, f"tags/{slug}.xml", f"tags/{slug}.atom"))
            links.append(FeedLink(base + f"tags/{slug}.xml", "application/rss+xml",
                                  f"{title}: {tag} (RSS)"))
            links.append(FeedLink(base + f"tags/{slug}.atom", "application/atom+xml",
                                  f"{title}: {tag} (Atom)"))
    return links, per_tag


def render_page(env: Environment, template: str, cfg: Config, /, *, root: str | None = None,
                feeds: Sequence[FeedLink] | None = None, **context: Any) -> str:
    """Render one page template with the common context (site, root, feeds). Without
    `root`, links start from the site's path, so the page works at any depth (error pages)."""
    if root is None:
        root = site_root(cfg)
    if feeds is None:
        feeds = site_feeds(cfg, ())[0]
    if not isinstance(feeds, FeedLinks):
        feeds = FeedLinks(feeds)
    return env.get_template(template).render(site=cfg.site, root=root, feeds=feeds, **context)


def freeze_templates(env: Environment, names: Sequence[str]) -> None:
    """Load the templates `names` for a build whose environment no longer changes, each
    with a plain copy of its globals and an escape function that remembers short texts.

    Jinja2 keeps a template's globals as a ChainMap over the environment's, which it copies
    into a new dict for every page rendered and walks again for every include (about 10 µs
    a page, a tenth of an article page). A dict of the same items renders the same pages;
    it no longer follows later changes to `env.globals`, which a build never makes.

    Every `{{ value }}` of an HTML template is escaped, about 40 times an article page, and
    mostly the same few texts (the page's depth, the site's title, tag names): the compiled
    templates look up `escape` among their module's names, where `_escape_kept` takes its
    place and gives the same Markup, kept, for a text already seen.
    """
    escaper = _escape_kept()
    for name in names:
        template = env.get_template(name)
        template.globals = dict(template.globals)
        names_of_module = template.root_render_func.__globals__
        if names_of_module.get("escape") is escape:  # the code Jinja2 generates today
            names_of_module["escape"] = escaper


_KEPT_TEXTS = 4096  # escaped texts kept (then forgotten all at once, and kept anew)
_KEPT_LENGTH = 200  # longer texts (an article's summary) are escaped every time


def _escape_kept() -> Callable[[Any], Markup]:
    """`markupsafe.escape`, remembering the result for short texts."""
    kept: dict[str, Markup] = {}

    def escape_kept(value: Any) -> Markup:
        if type(value) is not str:
            return escape(value)
        found = kept.get(value)
        if found is None:
            found = escape(value)
            if len(value) <= _KEPT_LENGTH:
                if len(kept) >= _KEPT_TEXTS:
                    kept.clear()
                kept[value] = found
        return found

    return escape_kept


def template_digest(env: Environment, names: Sequence[str]) -> bytes:
    """Fingerprint of the package version and the sources of the templates `names`."""
    digest = hashlib.sha256(__version__.encode())
    for name in names:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        digest.update(source.encode("utf-8"))
    return digest.digest()


def key_of(templates: bytes, *parts: object) -> str:
    return hashlib.sha256(templates + repr(parts).encode("utf-8")).hexdigest()


def texts_key(texts: Sequence[str]) -> bytes:
    """The strings `texts` as one value for a key, quicker to make than their repr: joined
    by NUL when none of them holds one (the usual case: the readers remove it, though a
    YAML escape may bring it back), else their repr; each form marked as such."""
    joined = "\x00".join(texts)
    if joined.count("\x00") == max(len(texts) - 1, 0):
        return b"J%d:" % len(texts) + joined.encode("utf-8", "surrogatepass")
    return b"R" + repr(tuple(texts)).encode("utf-8", "surrogatepass")


def listed_texts(articles: Iterable[Article], summary: bool) -> list[str]:
    """What a listing (a home page, a tag page) shows of `articles`, as texts for
    `texts_key`: each one's slug, title, date (as written, and its zone), its tags (after
    their number) and, with `summary`, its summary."""
    texts: list[str] = []
    for article in articles:
        published = article.published
        texts += (article.slug, article.title, published.isoformat(), str(published.tzinfo))
        if summary:
            texts.append(str(len(article.tags)))
            texts += article.tags
            texts.append(article.summary)
    return texts


def key_seed(templates: bytes, *parts: object) -> _Hash:
    """`key_of`'s hash of `templates` and `parts`, to be `copy()`ed and `update`d with what
    differs from one output to the next: what all of a build's outputs of one kind share is
    hashed once, not in each key. (`repr` of a tuple is closed by its parenthesis, so what
    follows cannot be read as part of it.)"""
    return hashlib.sha256(templates + repr(parts).encode("utf-8"))


# What an article page shows of its neighbours (the prev/next links); its key covers this.
NEIGHBOUR_SHOWS = attrgetter("slug", "title")


class ArticlePages:
    """Plans `posts/<slug>.html`: what every article page shares is worked out once."""

    def __init__(self, env: Environment, cfg: Config, main_links: list[FeedLink],
                 slugs: dict[str, str], site_key: str, tag_paths: dict[str, str]) -> None:
        self.env = env
        self.tag_paths = tag_paths
        self.cfg = cfg
        self.main_links = main_links
        self.slugs = slugs
        self.templates = template_digest(env, ("base.html.j2", "article.html.j2",
                                               "_tags.html.j2")) + (
            site_key.encode("utf-8"))
        self.tag_links: dict[str, list[FeedLink]] = {}
        self.shared: dict[tuple[str, ...], FeedLinks] = {}
        self.as_written: dict[tuple[str, ...], FeedLinks] = {}  # by the tags as given
        self.spliced = body_spliced(env, "article.html.j2")  # the body put in as bytes
        self.seed = hashlib.sha256(self.templates)

    def feeds(self, tags: Sequence[str]) -> FeedLinks:
        """Autodiscovery links of a page about `tags` (as `site_feeds` gives them)."""
        given = tuple(tags)
        links = self.as_written.get(given)
        if links is None:
            links = self.as_written[given] = self._feeds(given)
        return links

    def _feeds(self, tags: Sequence[str]) -> FeedLinks:
        wanted = tuple(sorted(clean_tags(tags), key=str.lower)) if self.cfg.feeds.tag_feeds else ()
        links = self.shared.get(wanted)
        if links is None:
            found = list(self.main_links)
            for tag in wanted:
                per_tag = self.tag_links.get(tag)
                if per_tag is None:
                    per_tag = site_feeds(self.cfg, (tag,), self.slugs)[0][3:]
                    self.tag_links[tag] = per_tag
                found.extend(per_tag)
            links = self.shared[wanted] = FeedLinks(found)
        return links

    def plan(self, article: Article, digest: Callable[[], bytes], older: Article | None = None,
             newer: Article | None = None) -> OutputFile:
        cfg, env = self.cfg, self.env
        links = self.feeds(article.tags)
        neighbours = (older and NEIGHBOUR_SHOWS(older), newer and NEIGHBOUR_SHOWS(newer))

        def render() -> bytes:
            spliced = article.plain_body and self.spliced  # no links to rewrite: as it is
            body = (BODY_MARK if spliced else article.html if article.plain_body
                    else page_links(article.html, cfg.site.base_url, "../"))
            page = render_page(env, "article.html.j2", cfg, root="../", feeds=links,
                               article=article, body=body, older=older, newer=newer,
                               tag_paths=self.tag_paths,
                               canonical=cfg.site.base_url + article.url_path).encode("utf-8")
            return splice(page, article.html_utf8) if spliced else page

        def key() -> str:
            # The digest covers the fields a page shows; `updated` is there as set or not.
            # Two digests of 32 bytes, then one repr: each part tells where it ends.
            paths = tuple(self.tag_paths.get(tag) for tag in article.tags)
            found = self.seed.copy()
            found.update(digest())
            found.update(links.digest)
            found.update(repr((article.updated, neighbours, paths)).encode("utf-8"))
            return found.hexdigest()

        return OutputFile(article.url_path, key, render)
