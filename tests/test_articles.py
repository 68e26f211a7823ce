"""The article store: both formats, every bad input, ids, time zones, drafts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feedpub.articles.model import (
    FORBIDDEN_CHARS,
    clean_text,
    has_forbidden,
    slug_for,
    strip_forbidden,
)
from feedpub.articles.scan import load_articles, parse_article
from feedpub.config import SiteConfig
from feedpub.errors import ArticleError

SITE = SiteConfig(base_url="https://news.example.org/", timezone="Europe/Berlin",
                  default_time="09:00")

SAMPLE = """\
 date 2024-03-05 Local Library Extends Weekend Hours

By: Jane Doe

March 4, 2024

The city library will open on Sundays from next month, the council said on Monday.

What Changes

Opening hours on Saturdays move to 9:00–18:00. “We listened,” the librarian said.
"""


def test_plain_text_example_from_the_format_description() -> None:
    article = parse_article(SAMPLE, "2024-03-05-library.txt", SITE)
    assert article.title == "Local Library Extends Weekend Hours"
    assert article.author == "Jane Doe"
    assert article.byline_date == date(2024, 3, 4)
    assert article.published == datetime(2024, 3, 5, 9, 0, tzinfo=SITE.tz)
    assert article.published.utcoffset() == timedelta(hours=1)
    assert article.html == (
        "<p>The city library will open on Sundays from next month, the council said on "
        "Monday.</p>\n<h2>What Changes</h2>\n<p>Opening hours on Saturdays move to "
        "9:00–18:00. “We listened,” the librarian said.</p>"
    )
    assert article.id == "tag:news.example.org,2024-03-05:library"
    assert article.summary.startswith("The city library will open")


def test_header_may_carry_a_time_of_day() -> None:
    local = parse_article("date 2024-03-05T14:30 Title\n\nBody.\n", "t.txt", SITE)
    assert local.published == datetime(2024, 3, 5, 14, 30, tzinfo=SITE.tz)
    offset = parse_article("date 2024-03-05T14:30+00:00 Title\n", "t.txt", SITE)
    assert offset.published == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert offset.id == "tag:news.example.org,2024-03-05:t"
    with pytest.raises(ArticleError, match="not a valid date and time"):
        parse_article("date 2024-03-05T25:00 Title\n", "t.txt", SITE)


@pytest.mark.parametrize("line", ["March 4, 2024", "4 March 2024", "2024/03/04"])
def test_human_readable_byline_dates(line: str) -> None:
    text = f"date 2024-03-05 Title\n\n{line}\n\nBody text here.\n"
    assert parse_article(text, "a.txt", SITE).byline_date == date(2024, 3, 4)


def test_tags_and_crlf_bom_trailing_whitespace() -> None:
    text = ("\ufeffdate 2024-03-05 Title \t\r\n\r\nTags: City, transport , city\t\r\n\r\n"
            "First line\r\ncontinues here.  \r\n")
    article = parse_article(text, "a.txt", SITE)
    assert article.title == "Title"
    assert article.tags == ("City", "transport")
    assert article.html == "<p>First line continues here.</p>"


def test_text_is_escaped_and_unicode_passes_through() -> None:
    body = 'Tom & Jerry <script>alert("x")</script> — café 🎉 שלום עולם.'
    article = parse_article(f"date 2024-03-05 A <b>bold</b> & title\n\n{body}\n", "a.txt", SITE)
    assert article.title == "A <b>bold</b> & title"
    assert "<script>" not in article.html
    raw = ("---\ntitle: T\ndate: 2024-03-05\n---\n"
           "<a href=\"javascript:x()\">l</a> <img src=x onerror=y>\n")
    sanitized = parse_article(raw, "r.md", SITE).html
    assert "javascript:" not in sanitized and "onerror" not in sanitized
    assert "&lt;script&gt;" in article.html
    assert "café 🎉 שלום עולם." in article.html


def test_editing_title_and_body_keeps_the_id() -> None:
    one = parse_article("date 2024-03-05 First title\n\nBody.\n", "2024-03-05-x.txt", SITE)
    two = parse_article("date 2024-03-05 Second title\n\nOther.\n", "2024-03-05-x.txt", SITE)
    assert one.id == two.id
    assert one.updated is None and two.updated is None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "empty"),
        ("\n\n   \n", 1, "empty"),
        ("Title without header\n\nBody.\n", 1, "no 'date' header"),
        ("date 2024-02-30 Impossible\n", 1, "not a real calendar date"),
        ("date 2024-03-05\n\nBody.\n", 1, "no title"),
        ("date\n", 1, "no date"),
        ("\n\ndate 05/03/2024 Title\n", 3, "YYYY-MM-DD"),
    ],
)
def test_bad_plain_text_names_file_line_and_fix(text: str, line: int, words: str) -> None:
    with pytest.raises(ArticleError) as info:
        parse_article(text, "bad.txt", SITE)
    assert info.value.source == "bad.txt"
    assert info.value.line == line
    assert words in str(info.value)
    assert info.value.fix


def test_control_characters_are_removed_with_a_warning() -> None:
    article = parse_article("date 2024-03-05 Bell\x07 title\n\nA\x00B\x1b C.\n", "c.txt", SITE)
    assert article.title == "Bell title"
    assert article.html == "<p>AB C.</p>"
    warning = "removed characters that feeds must not contain (control characters, " \
              "noncharacters or U+FFFD)"
    assert article.warnings == (f"c.txt:1: {warning}", f"c.txt:3: {warning}")
    assert clean_text("tab\tand\nnewline") == ("tab\tand\nnewline", [])


def test_c1_controls_and_noncharacters_are_removed_with_a_warning() -> None:
    text = ("date 2024-03-05 Smart\x93quotes\x94 and NEL\x85\n\n"
            "DEL\x7f C1\x80\x9f non\ufdd0\ufffe\U0001fffe\U0010ffff replacement\ufffd.\n")
    article = parse_article(text, "c1.txt", SITE)
    assert article.title == "Smartquotes and NEL"
    assert article.html == "<p>DEL C1 non replacement.</p>"
    assert [w.split(": ")[0] for w in article.warnings] == ["c1.txt:1", "c1.txt:3"]
    kept = "é ü ÿ \xa0 € \ufdcf \ufdf0 \U0001f389 \U0001fffd"
    assert clean_text(kept) == (kept, [])


MARKDOWN = """\
---
title: "Markdown & more"
date: 2024-03-05T14:30:00+01:00
author: Ann Author
tags: [a, b]
summary: Short summary.
updated: 2024-03-07
---
Hello **world** <span onclick="evil()">x</span>
<script>alert(1)</script>

[link](javascript:alert(1)) and [ok](/relative/page.html)
"""


def test_markdown_front_matter_and_sanitizing() -> None:
    article = parse_article(MARKDOWN, "m.md", SITE)
    assert article.title == "Markdown & more"
    assert article.published == datetime(2024, 3, 5, 13, 30, tzinfo=UTC)
    assert article.updated == datetime(2024, 3, 7, 9, 0, tzinfo=SITE.tz)
    assert article.tags == ("a", "b")
    assert article.summary == "Short summary."
    assert article.format == "markdown"
    assert "<strong>world</strong>" in article.html
    for bad in ("<script", "onclick", 'href="javascript:'):
        assert bad not in article.html
    assert 'href="/relative/page.html"' in article.html


def test_markdown_custom_id_and_draft() -> None:
    text = "---\ntitle: T\ndate: 2024-03-05\nid: urn:uuid:1234\ndraft: true\n---\nBody\n"
    article = parse_article(text, "d.md", SITE)
    assert article.id == "urn:uuid:1234"
    assert article.draft is True


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("no front matter\n", 1, "front matter"),
        ("---\ntitle: T\ndate: 2024-03-05\n", 1, "not closed"),
        ("---\ndate: 2024-03-05\n---\nx\n", 2, "no 'title'"),
        ("---\ntitle: T\n---\nx\n", 2, "no 'date'"),
        ("---\ntitle: T\ndate: 2024-02-30\n---\nx\n", 3, "not a real calendar date"),
        ("---\ntitle: T\ndate: 2024-03-05\ntitel: x\n---\n", 4, "unknown front-matter key"),
        ("---\ntitle: [unclosed\ndate: 2024-03-05\n---\n", 3, "not valid YAML"),
        ("---\ntitle: T\ndate: soon\n---\n", 3, "not a date"),
    ],
)
def test_bad_markdown_names_file_line_and_fix(text: str, line: int, words: str) -> None:
    with pytest.raises(ArticleError) as info:
        parse_article(text, "bad.md", SITE)
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith(f"bad.md:{line}: ")


def test_load_articles_keeps_good_files_and_reports_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "2024-01-01-good.txt").write_text("date 2024-01-01 Good\n\nBody.\n")
    (tmp_path / "2024-01-02-same-day-b.txt").write_text("date 2024-01-02 B\n\nBody.\n")
    (tmp_path / "2024-01-02-same-day-a.txt").write_text("date 2024-01-02 A\n\nBody.\n")
    (tmp_path / "latin1.txt").write_bytes("date 2024-01-03 Caf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / ".hidden.txt").write_text("not an article")
    (tmp_path / "notes.rst").write_text("ignored")
    result = load_articles(tmp_path, SITE)
    assert [a.title for a in result.articles] == ["A", "B", "Good"]
    assert len({a.id for a in result.articles}) == 3
    messages = sorted(str(e) for e in result.errors)
    assert messages[0].startswith("empty.txt:1: the file is empty")
    assert messages[1].startswith("latin1.txt:1: bytes are not valid UTF-8 at byte offset 19")
    assert "save the file as UTF-8" in messages[1]


def test_duplicate_slugs_are_reported(tmp_path: Path) -> None:
    (tmp_path / "post.txt").write_text("date 2024-01-01 One\n\nBody.\n")
    (tmp_path / "post.md").write_text("---\ntitle: Two\ndate: 2024-01-01\n---\nBody\n")
    result = load_articles(tmp_path, SITE)
    assert len(result.articles) == 1
    assert "already used by post.md" in str(result.errors[0])


def test_drafts_and_future_entries_are_not_published(tmp_path: Path) -> None:
    (tmp_path / "now.txt").write_text("date 2024-01-01 Now\n\nBody.\n")
    (tmp_path / "later.txt").write_text("date 2099-01-01 Later\n\nBody.\n")
    (tmp_path / "draft.md").write_text("---\ntitle: D\ndate: 2024-01-01\ndraft: yes\n---\nB\n")
    result = load_articles(tmp_path, SITE)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert [a.title for a in result.published(now)] == ["Now"]
    assert [a.title for a in result.published(datetime(2099, 1, 2, tzinfo=UTC))] == [
        "Later", "Now"]


@settings(max_examples=150, deadline=None)
@given(title=st.text(min_size=1, max_size=80), body=st.text(max_size=400))
def test_any_unicode_parses_or_fails_cleanly(title: str, body: str) -> None:
    text = f"date 2024-03-05 {title}\n\n{body}\n"
    try:
        article = parse_article(text, "p.txt", SITE)
    except ArticleError as exc:  # e.g. a title made only of whitespace
        assert exc.line is not None and exc.fix
        return
    for value in (article.title, article.html, article.summary):
        assert clean_text(value)[1] == []  # nothing XML forbids survives
    etree.fromstring(f"<div>{article.html}</div>".encode())  # well-formed markup


def test_draft_line_keeps_a_plain_text_entry_unpublished() -> None:
    text = "date 2024-03-05 Title\n\nDraft: yes\n\nBy: Ann\n\nTags: a, b\n\nBody.\n"
    article = parse_article(text, "d.txt", SITE)
    assert article.draft is True
    assert (article.author, article.tags, article.html) == ("Ann", ("a", "b"), "<p>Body.</p>")
    assert parse_article(text.replace("yes", "no"), "d.txt", SITE).draft is False
    assert parse_article(text.replace("Draft: yes\n\n", ""), "d.txt", SITE).draft is False
    with pytest.raises(ArticleError) as info:
        parse_article(text.replace("yes", "soon"), "d.txt", SITE)
    assert info.value.line == 3 and "'Draft: soon' must be yes or no" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("---\ntitle: T\ndate: 0001-01-01T00:30:00+14:00\n---\nx\n", 3),
        ("---\ntitle: T\ndate: 2024-01-01\nupdated: 9999-12-31T23:59:00-14:00\n---\nx\n", 4),
        ("---\ntitle: T\ndate: 1899-12-31\n---\nx\n", 3),
        ("date 0001-01-01 Title\n", 1),
        ("date 9999-12-31T23:30-14:00 Title\n", 1),
    ],
)
def test_dates_out_of_range_are_errors_naming_the_range(text: str, line: int) -> None:
    source = "old.md" if text.startswith("---") else "old.txt"
    with pytest.raises(ArticleError) as info:
        parse_article(text, source, SITE)
    assert info.value.line == line
    assert "dates from 1900 to 9998 are accepted" in str(info.value)


def test_old_dates_in_local_mean_time_are_given_in_utc() -> None:
    # Amsterdam kept local mean time (+00:19:32) until 1937: no valid RFC 3339 offset.
    site = SiteConfig(base_url="https://news.example.org/", timezone="Europe/Amsterdam")
    article = parse_article("date 1920-05-01 Old news\n\nBody.\n", "1920-05-01-old.txt", site)
    assert article.published.utcoffset() == timedelta(0)
    assert article.published == datetime(1920, 5, 1, 9, 0, tzinfo=site.tz)
    assert article.id == "tag:news.example.org,1920-05-01:old"
    plain = parse_article("date 2024-03-05 New\n", "n.txt", site)
    assert plain.published.utcoffset() == timedelta(hours=1)  # whole minutes: kept as is


def test_same_day_entries_without_a_time_get_distinct_stable_times(tmp_path: Path) -> None:
    def write(name: str, text: str) -> None:
        (tmp_path / name).write_text(text, encoding="utf-8")

    write("2024-01-02-b.txt", "date 2024-01-02 B\n\nBody.\n")
    write("2024-01-02-a.txt", "date 2024-01-02 A\n\nBody.\n")
    write("2024-01-02-c.md", "---\ntitle: C\ndate: 2024-01-02\n---\nBody\n")
    write("2024-01-02-timed.txt", "date 2024-01-02T07:00 Timed\n\nBody.\n")
    write("2024-01-03-d.txt", "date 2024-01-03 D\n\nBody.\n")
    first = load_articles(tmp_path, SITE).articles
    nine = datetime(2024, 1, 2, 9, 0, tzinfo=SITE.tz)
    assert [(a.title, a.published) for a in first] == [
        ("D", datetime(2024, 1, 3, 9, 0, tzinfo=SITE.tz)),  # alone on its day: unchanged
        ("A", nine + timedelta(seconds=2)), ("B", nine + timedelta(seconds=1)), ("C", nine),
        ("Timed", datetime(2024, 1, 2, 7, 0, tzinfo=SITE.tz)),
    ]
    assert [a.id for a in first][1] == "tag:news.example.org,2024-01-02:a"
    write("2024-01-01-e.txt", "date 2024-01-01 E\n\nBody.\n")  # other days change
    write("2024-01-03-f.txt", "date 2024-01-03 F\n\nBody.\n")
    again = {a.title: a for a in load_articles(tmp_path, SITE).articles}
    for article in first[1:]:
        assert again[article.title].published == article.published
        assert again[article.title].id == article.id


def test_a_draft_on_the_same_day_does_not_move_published_entries(tmp_path: Path) -> None:
    (tmp_path / "2024-01-02-b.txt").write_text("date 2024-01-02 B\n\nBody.\n")
    (tmp_path / "2024-01-02-c.txt").write_text("date 2024-01-02 C\n\nBody.\n")
    before = {a.title: a.published for a in load_articles(tmp_path, SITE).articles}
    # what `feedpub new` writes: an untimed entry for the same day, kept as a draft
    (tmp_path / "2024-01-02-a.txt").write_text(
        "date 2024-01-02 A\n\nDraft: yes\n\nBody.\n")
    after = {a.title: a.published for a in load_articles(tmp_path, SITE).articles}
    assert {t: after[t] for t in before} == before
    assert after["A"] == datetime(2024, 1, 2, 9, 0, tzinfo=SITE.tz)
    # once published, it takes part: the day's untimed entries move (documented)
    (tmp_path / "2024-01-02-a.txt").write_text("date 2024-01-02 A\n\nBody.\n")
    published = {a.title: a.published for a in load_articles(tmp_path, SITE).articles}
    nine = datetime(2024, 1, 2, 9, 0, tzinfo=SITE.tz)
    assert published == {"A": nine + timedelta(seconds=2), "B": nine + timedelta(seconds=1),
                         "C": nine}


def test_tags_differing_only_in_case_take_the_most_used_spelling(tmp_path: Path) -> None:
    (tmp_path / "1.txt").write_text("date 2024-01-01 One\n\nTags: food, Market\n\nBody.\n")
    (tmp_path / "2.txt").write_text("date 2024-01-02 Two\n\nTags: Food\n\nBody.\n")
    (tmp_path / "3.txt").write_text("date 2024-01-03 Three\n\nTags: food, market\n\nBody.\n")
    result = load_articles(tmp_path, SITE)
    assert [a.tags for a in result.articles] == [("food", "Market"), ("food",),
                                                 ("food", "Market")]


def test_a_dangling_symlink_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("date 2024-01-01 Good\n\nBody.\n")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    result = load_articles(tmp_path, SITE)
    assert [a.title for a in result.articles] == ["Good"]
    (error,) = result.errors
    assert error.source == "gone.txt"
    assert "symbolic link" in str(error) and "missing.txt" in str(error)
    assert error.fix


# Forbidden characters, and allowed ones whose UTF-8 starts with the same byte (nbsp, Hangul,
# BOM, emoji), which the fast check must pass on to the full one.
_EDGES = ("\x00\x1f\x7f\x80\x9f\ufdd0\ufffd\uffff\U0001fffe\U0001ffff\U0010ffff\U00020000é😀"
          "\ud800\udfff\xa0\xbd\xbf\ud55c\ufeff\t\n")


@settings(max_examples=300)
@given(st.text(st.characters(blacklist_categories=("Cs",))) | st.text(st.sampled_from(_EDGES)))
def test_the_fast_forbidden_check_agrees_with_the_full_set(text: str) -> None:
    assert has_forbidden(text) == bool(FORBIDDEN_CHARS.search(text))
    assert strip_forbidden(text) == FORBIDDEN_CHARS.sub("", text)


# Article paths as the store lists them: folders and names that do not start with "." or "_".
_COMPONENT = st.from_regex(r"[a-z é-][a-z é._-]{0,6}", fullmatch=True)


@given(st.lists(_COMPONENT, min_size=1, max_size=3))
def test_slugs_strip_the_suffix_as_a_path_would(parts: list[str]) -> None:
    source = "/".join(parts)
    stem = str(PurePosixPath(source).with_suffix(""))
    expected = re.sub(r"[^\w.-]+", "-", stem.replace("/", "-"), flags=re.ASCII).strip("-.")
    assert slug_for(source) == (expected.lower() or "article")


def test_only_parse_article_marks_a_body_as_plain() -> None:
    # Later stages skip link and character checks for such bodies: only text that
    # parse_article has cleaned, in the plain-text format, may be marked.
    text = "date 2024-03-05 Title\n\nBody with <a href='/x'>markup</a> as text.\r\n"
    article = parse_article(text, "a.txt", SITE)
    assert article.plain_body
    assert "<a" not in article.html and "\r" not in article.html
    markdown = "---\ntitle: T\ndate: 2024-03-05\n---\nBody [x](/x)\n"
    assert not parse_article(markdown, "a.md", SITE).plain_body
    from feedpub.articles.plain import parse_plain

    assert not parse_plain("date 2024-03-05 T\n\nBody\x01\n", "a.txt", SITE).plain_body


# Text in other scripts, whose UTF-8 starts with the bytes the fast check looks at first
# (C2, ED Hangul, EF full-width and variation selectors, F0 emoji), with and without a
# forbidden character among it.
_SCRIPTS = ("Café naïve Ærø \xa0½ «déjà»", "東京都の図書館（無料）", "한국어 안내문",
            "القاهرة الجديدة", "Emoji 🎉👩\u200d🏫❤️🇪🇺", "𠀀𪜀 CJK extension B", "Ελληνικά Москва")


@pytest.mark.parametrize("text", _SCRIPTS)
def test_text_in_any_script_is_kept_whole(text: str) -> None:
    article = parse_article(f"date 2024-03-05 {text}\n\n{text}.\n", "s.txt", SITE)
    assert article.title == text
    assert article.warnings == ()
    assert not has_forbidden(text * 50)


@pytest.mark.parametrize("bad", ["\x01", "\x85", "\ud800", "\ufdd0", "\ufffd", "\uffff",
                                 "\U0001fffe", "\U0010ffff"])
@pytest.mark.parametrize("text", _SCRIPTS)
def test_a_forbidden_character_among_any_script_is_removed_with_a_warning(
        text: str, bad: str) -> None:
    body = f"{text} {text}{bad}{text}"
    assert has_forbidden(body)
    article = parse_article(f"date 2024-03-05 {text}\n\n{text}\n\n{body}.\n", "s.txt", SITE)
    assert f"{text} {text}{text}." in article.html  # the rest kept, in order
    assert bad not in article.html
    assert article.warnings == ("s.txt:5: removed characters that feeds must not contain "
                                "(control characters, noncharacters or U+FFFD)",)
