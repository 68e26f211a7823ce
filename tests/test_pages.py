"""Site pages: home/archive and article pages, feed autodiscovery, template overrides."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from lxml import html

from conftest import BASE_CONFIG
from feedpub.articles.model import Article
from feedpub.config import load_config
from feedpub.errors import ConfigError
from feedpub.jobs.publish import build_feeds
from feedpub.site.plan import plan_pages
from web_helpers import ARTICLES


def _article(slug: str, day: int, **kw: object) -> Article:
    values: dict[str, object] = {
        "id": f"tag:x,2026:{slug}", "slug": slug, "title": f"Title {slug}",
        "published": datetime(2026, 1, day, 9, tzinfo=UTC), "html": f"<p>Body {slug}</p>",
        "source": f"{slug}.txt", "summary": f"Summary {slug}"}
    values.update(kw)
    values["html_utf8"] = str(values.pop("html")).encode("utf-8")
    return Article(**values)  # type: ignore[arg-type]


def _alternates(doc: html.HtmlElement) -> dict[str, str]:
    return {link.get("href"): link.get("type")
            for link in doc.xpath('//link[@rel="alternate"]')}


def test_build_writes_pages_with_autodiscovery_for_every_feed(make_site) -> None:
    cfg = make_site(ARTICLES)
    build_feeds(cfg)
    public = cfg.public_dir
    home = html.fromstring((public / "index.html").read_bytes())
    alternates = _alternates(home)
    base = cfg.site.base_url
    expected = {"feed.xml": "application/rss+xml", "atom.xml": "application/atom+xml",
                "feed.json": "application/feed+json", "tags/python.xml": "application/rss+xml",
                "tags/python.atom": "application/atom+xml", "tags/web.xml": "application/rss+xml",
                "tags/web.atom": "application/atom+xml"}
    assert alternates == {base + path: kind for path, kind in expected.items()}
    for path in expected:  # every advertised feed exists
        assert (public / path).is_file(), path
    titles = [a.text_content() for a in home.xpath("//main//h2/a")]
    assert titles == ["Second post", "First post"]  # newest first
    assert home.xpath("//html/@lang") == ["en"]
    assert home.xpath('//a[@href="subscribe"]')


def test_feed_items_link_to_the_article_pages(make_site) -> None:
    cfg = make_site(ARTICLES)
    build_feeds(cfg)
    feed = feedparser.parse((cfg.public_dir / "feed.xml").read_bytes())
    for entry in feed.entries:
        path = entry.link.removeprefix(cfg.site.base_url)
        page = html.fromstring((cfg.public_dir / path).read_bytes())
        assert page.xpath("//h1")[0].text_content() == entry.title
        assert page.xpath('//link[@rel="canonical"]/@href') == [entry.link]
        assert page.xpath('//link[@rel="stylesheet"]/@href') == ["../style.css"]
        # the article's own tag feeds are advertised, with the feed builder's file names
        for href in _alternates(page):
            assert (cfg.public_dir / href.removeprefix(cfg.site.base_url)).is_file()


def test_plan_pages_is_pure_and_keys_follow_content(site) -> None:
    articles = [_article("b", 2, tags=("Café Crème",)), _article("a", 3)]
    first = {o.path: o for o in plan_pages(articles, site)}
    assert set(first) == {"index.html", "style.css", "posts/a.html", "posts/b.html",
                          "tags/cafe-creme.html", "404.html", "sitemap.xml", "robots.txt"}
    again = {o.path: o.key for o in plan_pages(articles, site)}
    assert again == {p: o.key for p, o in first.items()}
    edited = [articles[0], dataclasses.replace(articles[1], html_utf8=b"<p>Changed</p>")]
    changed = {o.path: o.key for o in plan_pages(edited, site)}
    assert changed["posts/a.html"] != first["posts/a.html"].key
    assert changed["posts/b.html"] == first["posts/b.html"].key
    assert changed["tags/cafe-creme.html"] == first["tags/cafe-creme.html"].key
    assert changed["index.html"] == first["index.html"].key  # body is not on the home page
    page = first["posts/b.html"].render().decode()
    assert "tags/cafe-creme.atom" in page
    home = html.fromstring(first["index.html"].render())
    assert [a.text_content() for a in home.xpath("//main//h2/a")] == ["Title a", "Title b"]


def test_text_is_escaped_and_sanitized_html_kept(site) -> None:
    article = _article("x", 2, title="<script>alert(1)</script> & co", html="<p><em>ok</em></p>")
    out = {o.path: o.render().decode() for o in plan_pages([article], site)}
    assert "<script>" not in out["index.html"] and "<script>" not in out["posts/x.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in out["posts/x.html"]
    assert "<p><em>ok</em></p>" in out["posts/x.html"]


def test_texts_seen_again_are_escaped_again(site) -> None:
    hostile = "<b>Fish & chips</b>"
    long = "<i>" + "x" * 300 + "</i>"
    articles = [_article(f"p{n}", n, title=hostile if n % 2 else long, tags=(hostile,))
                for n in range(1, 7)]
    pages = [o.render().decode() for o in plan_pages(articles, site)
             if o.path.startswith("posts/")]
    assert len(pages) == 6
    for page in pages:
        assert "<b>" not in page and "<i>" not in page
        doc = html.fromstring(page)
        assert doc.xpath("//h1/text()")[0] in (hostile, long)
        assert doc.xpath("//footer//a[@class='tag']/text()") == [hostile]


def test_site_templates_override_the_defaults(make_site) -> None:
    cfg = make_site()
    before = {o.path: o.key for o in plan_pages([_article("a", 2)], cfg)}
    cfg.templates_dir.mkdir(exist_ok=True)
    (cfg.templates_dir / "article.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block main %}<p class="mine">{{ article.title }}</p>'
        "{% endblock %}", encoding="utf-8")
    pages = {o.path: o for o in plan_pages([_article("a", 2)], cfg)}
    assert '<p class="mine">Title a</p>' in pages["posts/a.html"].render().decode()
    assert pages["posts/a.html"].key != before["posts/a.html"]
    assert pages["index.html"].key == before["index.html"]


def test_an_article_body_goes_into_its_page_as_bytes_only_when_written_as_it_is(
        make_site) -> None:
    cfg = make_site()
    body = ("<p>Fish &amp; chips “quoted” 😀 — ünï</p>\n"
            "<h2>Part two</h2>\n<p>" + "word " * 40 + "end.</p>")

    def page(plain: bool) -> bytes:
        article = _article("a", 2, html=body, plain_body=plain)
        return {o.path: o for o in plan_pages([article], cfg)}["posts/a.html"].render()

    # The plain-text reader's body is put in as its UTF-8 bytes; the page is the one the
    # template renders around the body as text.
    assert page(True) == page(False)
    assert body.encode("utf-8") in page(True) and b"\x00" not in page(True)
    from feedpub.site.pages import page_environment
    from feedpub.site.splice import body_spliced

    assert body_spliced(page_environment(cfg), "article.html.j2")  # the built-in templates

    cfg.templates_dir.mkdir(exist_ok=True)
    template = cfg.templates_dir / "article.html.j2"
    template.write_text('{% extends "base.html.j2" %}{% block main %}'
                        '<div>{{ body | safe }}</div><aside>{{ body | safe }}</aside>'
                        "{% endblock %}", encoding="utf-8")
    assert page(True) == page(False) and page(True).count(body.encode("utf-8")) == 2
    # Any other use of the body gets the body itself.
    template.write_text('{% extends "base.html.j2" %}{% block main %}'
                        "<div>{{ body | striptags | truncate(30) }}</div>"
                        "<p>{{ body | length }}</p>{% endblock %}", encoding="utf-8")
    shown = html.fromstring(page(True))
    [shortened] = shown.xpath("//div/text()")
    assert shortened.startswith("Fish & chips") and shortened.endswith("...")
    assert "Part two" not in shortened
    assert shown.xpath("//main/p/text()") == [str(len(body))]
    assert page(True) == page(False)


@pytest.mark.parametrize("main", [
    "{% filter upper %}{{ body | safe }}{% endfilter %}",
    "{% filter indent(4) %}<div>\n{{ body | safe }}</div>{% endfilter %}",
    "{% set c %}{{ body | safe }}{% endset %}<p>{{ c | wordcount }}</p>{{ c }}",
    "{% macro m() %}{{ body | safe }}{% endmacro %}{{ m() | upper }}",
    "<div>{{ body | safe }}</div><meta content=\"{{ self.title() | striptags }}\">",
    "{% include ['missing.html.j2', 'part.html.j2'] ignore missing %}",
    "{% filter upper %}{% include 'part.html.j2' %}{% endfilter %}",
])
def test_a_template_that_changes_what_it_writes_of_the_body_gets_the_body(
        make_site, main: str) -> None:
    cfg = make_site()
    cfg.templates_dir.mkdir(exist_ok=True)
    (cfg.templates_dir / "part.html.j2").write_text("<section>{{ body | safe }}</section>",
                                                     encoding="utf-8")
    (cfg.templates_dir / "article.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block main %}' + main + "{% endblock %}",
        encoding="utf-8")
    body = "<p>One two three.</p>\n<h2>Four five</h2>\n<p>Six seven.</p>"

    def page(plain: bool) -> bytes:
        article = _article("a", 2, html=body, plain_body=plain)
        return {o.path: o for o in plan_pages([article], cfg)}["posts/a.html"].render()

    assert page(True) == page(False) and b"\x00" not in page(True)


def test_the_page_is_the_same_whatever_else_the_page_shows(make_site) -> None:
    cfg = make_site()
    cfg.templates_dir.mkdir(exist_ok=True)
    # A tag list template that reads the body (it gets the page's variables).
    (cfg.templates_dir / "_tags.html.j2").write_text(
        "{% for tag in tags %}<a class=\"tag\">{{ tag }}</a>{% endfor %}"
        "{% if body is defined %}<small>{{ body | striptags | wordcount }}</small>{% endif %}",
        encoding="utf-8")
    body = "<p>One two three four.</p>"
    # A neighbour's title with NUL (a YAML escape can make one) and a mark-like text.
    older = _article("b", 1, title="Next \x00feedpub-body-\x00 one")

    def page(plain: bool) -> bytes:
        article = _article("a", 2, html=body, plain_body=plain, tags=("x",))
        return {o.path: o for o in plan_pages([article, older], cfg)}["posts/a.html"].render()

    assert page(True) == page(False)
    assert b"<small>4</small>" in page(True) and page(True).count(body.encode()) == 1


def test_tag_lists_are_the_include_of_tags_template(make_site) -> None:
    cfg = make_site()
    articles = [_article("a", 2, tags=("Python", "Web")), _article("b", 3, tags=("Web",)),
                _article("c", 4, tags=("Python", "Web"))]
    pages = {o.path: o.render().decode() for o in plan_pages(articles, cfg)}
    post = html.fromstring(pages["posts/a.html"])
    assert [(a.get("href"), a.text) for a in post.xpath("//footer//a[@class='tag']")] == [
        ("../tags/python.html", "Python"), ("../tags/web.html", "Web")]
    home = html.fromstring(pages["index.html"])
    assert [a.get("href") for a in home.xpath("//main//a[@class='tag']")] == [
        "tags/python.html", "tags/web.html", "tags/web.html", "tags/python.html",
        "tags/web.html"]
    # A site's own list that shows more of the page is rendered with that page's variables.
    cfg.templates_dir.mkdir(exist_ok=True)
    (cfg.templates_dir / "_tags.html.j2").write_text(
        '{% for tag in tags %}<i data-of="{{ article.slug }}">{{ tag }}</i>{% endfor %}',
        encoding="utf-8")
    pages = {o.path: o.render().decode() for o in plan_pages(articles, cfg)}
    for slug in "ac":
        post = html.fromstring(pages[f"posts/{slug}.html"])
        assert [(i.get("data-of"), i.text) for i in post.xpath("//footer//i")] == [
            (slug, "Python"), (slug, "Web")]


def test_long_archive_is_paginated(site) -> None:
    articles = [_article(f"p{n:02d}", n) for n in range(1, 26)]
    pages = {o.path: o for o in plan_pages(articles, site)}
    home = html.fromstring(pages["index.html"].render())
    assert len(home.xpath("//main//article")) == 20
    assert home.xpath('//head/link[@rel="next"]/@href') == ["page/2.html"]
    second = html.fromstring(pages["page/2.html"].render())
    listed = [a.get("href") for a in second.xpath("//main//article//h2/a")]
    assert listed == [f"../posts/p{n:02d}.html" for n in range(5, 0, -1)]
    assert second.xpath('//head/link[@rel="prev"]/@href') == ["../index.html"]
    assert not second.xpath('//link[@rel="next"]') and "page/3.html" not in pages


def test_article_links_are_rebased_for_the_posts_folder(site) -> None:
    body = ('<p><a href="maps/market.html">map</a> <a href="/about.html">about</a> '
            '<img src="img/a.png" alt="a"> <a href="#top">top</a> '
            '<a href="https://elsewhere.example/x">out</a></p>')
    page = {o.path: o for o in plan_pages([_article("x", 2, html=body)], site)}["posts/x.html"]
    doc = html.fromstring(page.render())
    hrefs = doc.xpath('//div[@class="body"]//a/@href')
    assert hrefs == ["../maps/market.html", "../about.html", "#top",
                     "https://elsewhere.example/x"]
    assert doc.xpath('//div[@class="body"]//img/@src') == ["../img/a.png"]


def _files(public: Path) -> set[str]:
    return {p.relative_to(public).as_posix() for p in public.rglob("*") if p.is_file()}


def test_pages_false_builds_the_feeds_only_and_removes_the_pages(make_site) -> None:
    cfg = make_site(ARTICLES)
    build_feeds(cfg)
    public = cfg.public_dir
    before = _files(public)
    assert {"index.html", "sitemap.xml", "robots.txt", "404.html", "style.css"} <= before
    assert any(path.startswith("posts/") for path in before)

    path = cfg.root / "config.toml"
    config = path.read_text(encoding="utf-8")
    path.write_text(config.replace("[site]\n", "[site]\npages = false\n", 1),
                               encoding="utf-8")
    cfg = load_config(path)
    assert cfg.site.pages is False
    report = build_feeds(cfg)
    after = _files(public)
    # The newsletter archive follows [newsletter] public_archive, not [site] pages.
    pages = [p for p in after if p.endswith((".html", ".css", ".txt"))]
    assert pages == ["newsletter/index.html"], after
    assert "sitemap.xml" not in after
    assert {"index.html", "sitemap.xml", "robots.txt", "404.html"} <= set(report.removed)
    for name, kind in (("feed.xml", "rss20"), ("atom.xml", "atom10"),
                       ("tags/python.xml", "rss20"), ("tags/web.atom", "atom10")):
        feed = feedparser.parse((public / name).read_bytes())
        assert not feed.bozo, (name, feed.bozo_exception)
        assert feed.version == kind
    feed = feedparser.parse((public / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["Second post", "First post"]
    assert [e.link for e in feed.entries] == [
        cfg.site.base_url + "posts/2026-01-05-second.html",
        cfg.site.base_url + "posts/2026-01-02-first.html"]
    assert json.loads((public / "feed.json").read_bytes())["items"]

    path.write_text(config, encoding="utf-8")  # back on: the pages return
    build_feeds(load_config(path))
    assert _files(public) == before


def test_pages_must_be_true_or_false(make_site) -> None:
    with pytest.raises(ConfigError, match=r"'site\.pages' must be a bool"):
        make_site(config_text=BASE_CONFIG.replace("[site]\n", '[site]\npages = "no"\n', 1))


def test_texts_key_tells_apart_lists_that_join_to_the_same_text() -> None:
    from feedpub.site.pages import texts_key

    assert texts_key(["a", "b"]) == texts_key(["a", "b"])
    # A NUL inside a text (a YAML escape in front matter can make one) is not a separator.
    assert texts_key(["a\x00b"]) != texts_key(["a", "b"])
    assert texts_key(["a\x00", "b"]) != texts_key(["a", "\x00b"])
    assert texts_key([]) != texts_key([""])
    assert len({texts_key(t) for t in (["ab"], ["a", "b"], ["a\x00b"], ["", "ab"])}) == 4
