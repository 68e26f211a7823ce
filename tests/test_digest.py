"""Digest selection and rendering: windows, dedupe by id, templates, personalization."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import html as lxml_html

from feedpub.errors import DigestError
from feedpub.mail.digest import render_digest, render_subject, select_articles
from feedpub.mail.personalize import Personalizer, subscriber_values
from mail_helpers import NOW, article

ROOT = Path(__file__).resolve().parent.parent


def test_selection_window_dedupe_and_limit() -> None:
    arts = [article(1, hours_ago=2), article(2, hours_ago=30), article(3, hours_ago=24 * 9),
            article(4, hours_ago=-5)]  # 4 is in the future
    first_daily = select_articles(arts, since=NOW - timedelta(days=1), now=NOW, already_sent=())
    assert [a.slug for a in first_daily] == ["post-1"]
    weekly = select_articles(arts, since=NOW - timedelta(days=7), now=NOW, already_sent=())
    assert [a.slug for a in weekly] == ["post-1", "post-2"]
    edited = article(2, hours_ago=30, title="Edited", updated=NOW)
    again = select_articles([edited], since=NOW - timedelta(days=7), now=NOW,
                            already_sent=[edited.id])
    assert again == []
    many = [article(n, hours_ago=n) for n in range(1, 30)]
    assert len(select_articles(many, since=NOW - timedelta(days=7), now=NOW, already_sent=(),
                               limit=5)) == 5
    tagged = select_articles([article(1, tags=("Python",)), article(2, tags=("go",))],
                             since=NOW - timedelta(days=1), now=NOW, already_sent=(),
                             tags=("python",))
    assert [a.slug for a in tagged] == ["post-1"]


def test_subject_template_and_unknown_placeholder(make_site) -> None:
    cfg = make_site()
    arts = [article(1, title="First\r\nBcc: x"), article(2)]
    assert render_subject(cfg, "weekly", arts, NOW) == "Test Site: 2 new, First Bcc: x"
    bad = make_site(extra='subject = "{site} {nope}"\n')
    with pytest.raises(DigestError, match=r"digest\.subject.*nope"):
        render_subject(bad, "weekly", arts, NOW)


def test_html_part_is_email_safe_inlined_and_absolute(make_site) -> None:
    cfg = make_site()
    evil = article(1, title="<script>alert(1)</script> & more")
    digest = render_digest(cfg, "weekly", [evil, article(2)], NOW)
    doc = lxml_html.fromstring(digest.html)
    assert doc.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    styles = " ".join(doc.xpath("//style/text()"))
    assert "prefers-color-scheme: dark" in styles
    tables = doc.xpath("//table[@role='presentation']")
    assert tables and any("max-width: 600px" in (t.get("style") or "") for t in tables)
    assert all(t.get("width") == "100%" for t in tables)
    assert doc.xpath("//h2")[0].get("style")  # CSS was inlined
    assert not doc.xpath("//script")
    assert "&lt;script&gt;" in digest.html
    links = doc.xpath("//a/@href") + doc.xpath("//img/@src")
    for url in links:
        assert url.startswith("https://news.example.org/") or url.startswith("@@fp:"), url
    assert "https://news.example.org/posts/images/1.png" in links
    assert "https://news.example.org/posts/post-1.html" in links
    assert digest.article_ids == (evil.id, article(2).id)


TAG = re.compile(r"<(?!https?://|mailto:)/?[A-Za-z!]")  # an HTML tag, not a <URL>


def test_text_part_is_real_wrapped_text_with_urls(make_site) -> None:
    cfg = make_site()
    digest = render_digest(cfg, "daily", [article(1), article(2)], NOW)
    assert not TAG.search(digest.text)
    assert "https://news.example.org/posts/post-1.html" in digest.text
    assert "Body of article 1 <https://news.example.org/posts/post-1.html>." in digest.text
    for line in digest.text.splitlines():
        assert len(line) <= 72 or "://" in line or "@@fp:" in line, line


RICH_MARKDOWN = """---
title: Rich post
date: 2026-03-09
---
Some **bold** text, a [relative link](/maps/bridge.html) and __more__.

## A heading

1. First step, long enough that it has to be wrapped over the limit of the line width
2. Second step
   - a nested point
3. Third step

> A *quoted* line

<script>alert("x")</script>
<div class="box">Raw <b>HTML</b> block with <a href="../up.html">a link up</a></div>
"""


def test_text_part_of_a_markdown_article_is_plain_text(make_site) -> None:
    from feedpub.articles.markdown import parse_markdown

    cfg = make_site()
    rich = parse_markdown(RICH_MARKDOWN, "rich.md", cfg.site)
    text = render_digest(cfg, "weekly", [rich], NOW).text
    body = text.split("https://news.example.org/posts/rich.html", 1)[1]
    assert "Some bold text, a relative link <https://news.example.org/maps/bridge.html>" \
        in " ".join(body.split())
    assert "<https://news.example.org/up.html>" in text
    for syntax in ("**", "__", "##", "](", "*quoted*"):
        assert syntax not in text, syntax
    assert not TAG.search(text) and "alert" not in text
    lines = [line.strip() for line in body.splitlines()]
    heading = lines.index("A heading")
    assert set(lines[heading + 1]) == {"="}  # set off by an underline
    assert [line[:3] for line in lines if line[:1].isdigit()] == ["1. ", "2. ", "3. "]
    assert "- a nested point" in lines
    assert "> A quoted line" in lines
    assert "Raw HTML block with a link up" in " ".join(body.split())
    for line in text.splitlines():
        assert len(line) <= 72 or "://" in line or "@@fp:" in line, line


def test_personalization_escapes_html_but_not_text(make_site) -> None:
    cfg = make_site()
    digest = render_digest(cfg, "weekly", [article(1)], NOW)
    values = subscriber_values("Bob <b>&</b>", "https://news.example.org/unsubscribe?token=a&b",
                               "https://news.example.org/preferences?token=c")
    page = Personalizer(digest.html, escape=True).fill(values)
    text = Personalizer(digest.text, escape=False).fill(values)
    assert "Hello Bob &lt;b&gt;&amp;&lt;/b&gt;," in page
    assert 'href="https://news.example.org/unsubscribe?token=a&amp;b"' in page
    assert "Hello Bob <b>&</b>," in text
    assert "https://news.example.org/unsubscribe?token=a&b" in text
    assert "@@fp:" not in page + text
    anonymous = Personalizer(digest.text, escape=False).fill(subscriber_values(None, "u", "p"))
    assert "Hello, here is" in anonymous


def test_operator_template_overrides_the_default(make_site) -> None:
    cfg = make_site()
    cfg.templates_dir.mkdir(exist_ok=True)
    (cfg.templates_dir / "digest.txt.j2").write_text(
        "CUSTOM {{ count }} {% for a in articles %}{{ a.title }}|{% endfor %}"
        "{{ unsubscribe_url }}\n", encoding="utf-8")
    digest = render_digest(cfg, "weekly", [article(1)], NOW)
    assert digest.text.startswith("CUSTOM 1 Article number 1|@@fp:unsubscribe_url@@")
    assert "<table" in digest.html  # the HTML template still comes from the defaults


def test_template_errors_name_the_file_and_line(make_site) -> None:
    cfg = make_site()
    cfg.templates_dir.mkdir(exist_ok=True)
    (cfg.templates_dir / "digest.html.j2").write_text("<p>\n{% for %}</p>", encoding="utf-8")
    with pytest.raises(DigestError, match=r"digest\.html\.j2:2"):
        render_digest(cfg, "weekly", [article(1)], NOW)
    (cfg.templates_dir / "digest.html.j2").write_text("{{ nosuchname }}", encoding="utf-8")
    with pytest.raises(DigestError, match="nosuchname"):
        render_digest(cfg, "weekly", [article(1)], NOW)


def test_shipped_templates_match_the_package_defaults() -> None:
    for name in ("digest.html.j2", "digest.txt.j2"):
        top = (ROOT / "templates" / name).read_text(encoding="utf-8")
        packaged = (ROOT / "src" / "feedpub" / "default_templates" / name).read_text(
            encoding="utf-8")
        assert top == packaged, name
        assert re.search(r"unsubscribe_url", top)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_html_reads_well_at_phone_and_desktop_widths_and_in_dark_mode(make_site) -> None:
    from playwright.sync_api import sync_playwright

    cfg = make_site()
    long_word = "https://news.example.org/" + "x" * 120
    arts = [article(1, html=f"<p>{long_word}</p><p><img src='wide.png' width='1200'></p>"),
            article(2)]
    digest = render_digest(cfg, "weekly", arts, NOW)
    page_html = Personalizer(digest.html, escape=True).fill(
        subscriber_values("Ann", "https://news.example.org/unsubscribe?token=t",
                          "https://news.example.org/preferences?token=p"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            for width in (375, 800):
                for scheme in ("light", "dark"):
                    page = browser.new_page(viewport={"width": width, "height": 900},
                                            color_scheme=scheme)
                    page.set_content(page_html)
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    assert scroll <= width, (width, scroll)
                    sheet = page.evaluate(
                        "document.querySelector('table.sheet').getBoundingClientRect().width")
                    assert sheet <= 600
                    if width == 800:
                        assert sheet == 600
                    background = page.evaluate(
                        "getComputedStyle(document.querySelector('table.sheet'))"
                        ".backgroundColor")
                    dark = background == "rgb(22, 27, 34)"
                    assert dark == (scheme == "dark"), (scheme, background)
                    page.close()
        finally:
            browser.close()
