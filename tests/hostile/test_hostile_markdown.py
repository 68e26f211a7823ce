"""Hostile Markdown bodies of about 1 MB, generated here: each is published or refused with
its file and line (never a traceback); and the inline rule that takes unmatched brackets
as text renders every input exactly as stock markdown-it-py does.

How long each takes is measured in bench/hostile.py, not asserted here.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from feedpub.articles.markdown import _markdown
from feedpub.articles.mdwork import MAX_WORK, WORK_KEY, block_work, inline_work
from feedpub.articles.scan import parse_article
from feedpub.config import SiteConfig
from feedpub.errors import ArticleError

SITE = SiteConfig(base_url="https://news.example.org/")
MB = 1_000_000
BODY_LINE = 6  # '---', title, date, '---', blank line, then the body


def _md(body: str) -> str:
    return f"---\ntitle: Hostile\ndate: 2024-03-05\n---\n\n{body}"


def _flood(unit: str) -> str:
    return unit * (MB // len(unit))


# Floods of brackets that nothing closes are plain text: published, as before.
PUBLISHED = {
    "[": "<p>" + "[" * MB + "</p>",
    "![": "<p>" + "![" * (MB // 2) + "</p>",
    "[" + "!" * 9: "<p>" + ("[" + "!" * 9) * (MB // 10) + "</p>",
}

# Everything else that is costly is refused on the line where the work passes the bound.
REFUSED_ON_FIRST_LINE = ["[a", "[a](", "*a", "_a", "**a", "~~a", "`a", "<", "&", ":", "[a]", "[]",
                         "](", "[![a](b)](c)", "&amp;", "`a` "]
REFUSED_LATER = ["[\n", "a\n", "a\n\n", "- a\n", "1. a\n", "> a\n", "# a\n", "a|b\n",
                 "a  \n", "===\n"]


@pytest.mark.parametrize("unit", sorted(PUBLISHED))
def test_unmatched_bracket_floods_are_published_as_text(unit: str) -> None:
    article = parse_article(_md(_flood(unit)), "flood.md", SITE)
    assert article.html == PUBLISHED[unit]


def test_one_long_run_of_backticks_is_published() -> None:
    # markdown-it takes a run of backticks at once: cheap however long.
    article = parse_article(_md("a" + "`" * MB), "ticks.md", SITE)
    assert article.html == "<p>a" + "`" * MB + "</p>"


@pytest.mark.parametrize("unit", REFUSED_ON_FIRST_LINE)
def test_markup_floods_are_refused_with_file_and_line(unit: str) -> None:
    with pytest.raises(ArticleError) as caught:
        parse_article(_md(_flood(unit)), "flood.md", SITE)
    assert caught.value.source == "flood.md"
    assert caught.value.line == BODY_LINE
    assert "too much markup" in caught.value.reason
    assert "split it into several articles" in caught.value.fix


@pytest.mark.parametrize("unit", REFUSED_LATER)
def test_floods_of_short_lines_are_refused_where_the_bound_is_passed(unit: str) -> None:
    body = _flood(unit)
    with pytest.raises(ArticleError) as caught:
        parse_article(_md(body), "lines.md", SITE)
    assert caught.value.source == "lines.md"
    line = caught.value.line
    assert line is not None
    # Not at the start (each line is cheap), nor past the end of the file.
    assert BODY_LINE + 100 < line <= BODY_LINE + body.count("\n")
    lines_before = "".join(body.splitlines(keepends=True)[:line - BODY_LINE])
    assert block_work(lines_before) + inline_work(lines_before) > MAX_WORK * 0.9


def test_the_refused_line_is_the_one_where_the_flood_starts() -> None:
    body = "An ordinary opening paragraph.\n\n" + "*a" * 200_000 + "\n\nThe end.\n"
    with pytest.raises(ArticleError) as caught:
        parse_article(_md(body), "stars.md", SITE)
    assert caught.value.line == BODY_LINE + 2
    assert str(caught.value).startswith("stars.md:8: ")


def test_an_ordinary_megabyte_is_published() -> None:
    # Wrapped at 80 columns, a link and some emphasis in every other paragraph.
    plain = "Some ordinary words, and a few more of them, in a sentence that wraps here and\n"
    marked = "Some *ordinary* words, and a [link](https://example.org/) to somewhere else.\n"
    paragraphs = (plain * 8 + "\n" + marked + plain * 7 + "\n") * (MB // 1440)
    assert block_work(paragraphs) + inline_work(paragraphs) < MAX_WORK
    article = parse_article(_md(paragraphs), "prose.md", SITE)
    assert article.html.count("<em>ordinary</em>") == MB // 1440


@pytest.mark.parametrize(("body", "element"), [
    ("<ul>" + "<li>x" * (MB // 5), "<li>"),  # a raw HTML block: no inline rules run
    ("```\n" + ("[*_<&:]" * 11 + "\n") * (MB // 78) + "```\n", "<pre>"),  # code
], ids=["html-block", "code-block"])
def test_markup_the_inline_rules_never_read_is_not_counted(body: str, element: str) -> None:
    assert element in parse_article(_md(body), "blocks.md", SITE).html


def test_a_bracket_flood_ending_in_a_bracket_is_not_taken_as_text() -> None:
    # One ']' at the very end: every '[' before it may still open a link, so the rule
    # stays out of the way and the work bound decides.
    with pytest.raises(ArticleError) as caught:
        parse_article(_md("[" * MB + "]"), "closed.md", SITE)
    assert caught.value.line == BODY_LINE


_STOCK = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

_PIECES = st.sampled_from(["[", "]", "(", ")", "!", "![", "](", "*", "_", "**", "~~", "`",
                           "<", ">", "\\", "&", ":", "|", "-", "a", "b c", " ", "\n",
                           "\n\n", "  \n", "x.org", "<a>", "[a]: /u\n", "# ", "- "])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=60).map("".join))
def test_the_bracket_rule_never_changes_the_rendering(text: str) -> None:
    stock = _STOCK.render(text)
    assert _markdown().render(text) == stock
    # With the work bound active (as parse_markdown renders): still the same.
    assert _markdown().render(text, {WORK_KEY: MAX_WORK}) == stock


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.integers(1, 50))
def test_unmatched_bracket_runs_render_as_stock_markdown_it(head: str, runs: int) -> None:
    text = head + "[!a![[ " * runs
    assert _markdown().render(text) == _STOCK.render(text)
