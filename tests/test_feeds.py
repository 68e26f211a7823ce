"""The feed builder: formats, round trips, links, archives, tag feeds, keys and determinism.

Every produced file is parsed with feedparser (RSS, Atom) or json (JSON Feed) and lxml; Atom
files are validated against the RFC 4287 RELAX NG schema shipped in src/feedpub/schemas/atom.rng.
"""

from __future__ import annotations

import dataclasses
import html
import json
import locale
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import nh3
import pytest
from lxml import etree

import feedpub
from feedpub.articles.model import Article
from feedpub.config import Config
from feedpub.errors import FeedError
from feedpub.feeds.plan import FEED_CONTENT_TYPES, tag_slugs
from feedpub.feeds.writers import plan_feeds

BASE = "https://news.example.org/"
ATOM = "http://www.w3.org/2005/Atom"
FH = "http://purl.org/syndication/history/1.0"
NS = {"a": ATOM, "fh": FH, "content": "http://purl.org/rss/1.0/modules/content/",
      "dc": "http://purl.org/dc/elements/1.1/"}
SCHEMA_PATH = Path(feedpub.__file__).parent / "schemas" / "atom.rng"
SCHEMA = etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))
START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)

TRICKY_TITLE = "Fish & Chips <3 > \"quoted\" 'single' — café Ünïcödé 😀 שלום عربي"
TRICKY_HTML = ("<p>Tom &amp; Jerry &lt;3 &gt; \"quotes\" café 😀 "
               "<em>שלום</em> <a href=\"https://elsewhere.example.com/x?a=1&amp;b=2\">ext</a></p>")


def art(n: int, **changes: Any) -> Article:
    """Article number n, published n days after START (higher n = newer)."""
    fields: dict[str, Any] = dict(
        id=f"tag:news.example.org,2024:post-{n}", slug=f"post-{n:03d}", title=f"Post {n}",
        published=START + timedelta(days=n), html=f"<p>Body of post {n}.</p>",
        source=f"post-{n:03d}.md", summary=f"Summary {n}",
    )
    fields.update(changes)
    fields["html_utf8"] = fields.pop("html").encode("utf-8", "surrogatepass")
    return Article(**fields)


def newest_first(articles: Sequence[Article]) -> list[Article]:
    return sorted(articles, key=lambda a: (-a.published.timestamp(), a.slug))


def series(count: int, **changes: Any) -> list[Article]:
    return newest_first([art(n, **changes) for n in range(1, count + 1)])


def build(articles: Sequence[Article], cfg: Config) -> dict[str, bytes]:
    files = plan_feeds(articles, cfg)
    paths = [f.path for f in files]
    assert len(paths) == len(set(paths)), "two planned files share a path"
    return {f.path: f.render() for f in files}


def keys(articles: Sequence[Article], cfg: Config) -> dict[str, str]:
    return {f.path: f.key for f in plan_feeds(articles, cfg)}


@pytest.fixture
def cfg(make_site: Any) -> Config:
    return make_site(extra="""
        [feeds]
        size = 5
        archive_size = 4
        """)


def rss_parse(data: bytes) -> Any:
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    return parsed


def atom_parse(data: bytes) -> Any:
    root = etree.fromstring(data)
    assert SCHEMA.validate(root), SCHEMA.error_log
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def check_all(files: dict[str, bytes]) -> None:
    """Every file parses; Atom validates against RFC 4287; JSON has the JSON Feed shape."""
    for path, data in files.items():
        if path.endswith(".json"):
            doc = json.loads(data)
            assert doc["version"] == "https://jsonfeed.org/version/1.1"
            assert doc["title"] and isinstance(doc["items"], list)
            for url in (doc["home_page_url"], doc["feed_url"], doc.get("next_url", BASE)):
                assert url.startswith(BASE)
            for item in doc["items"]:
                assert isinstance(item["id"], str) and item["id"]
                assert item["url"].startswith(BASE) and isinstance(item["content_html"], str)
                for key in ("date_published", "date_modified"):
                    assert datetime.fromisoformat(item[key]).tzinfo is not None
                assert all(isinstance(a["name"], str) for a in item["authors"])
        elif path.endswith(".atom") or path == "atom.xml":
            atom_parse(data)
        else:
            rss_parse(data)


def atom_links(data: bytes) -> dict[str, str]:
    root = etree.fromstring(data)
    return {link.get("rel", "alternate"): link.get("href")
            for link in root.findall("a:link", NS)}


def rss_links(data: bytes) -> dict[str, str]:
    channel = etree.fromstring(data).find("channel")
    return {link.get("rel"): link.get("href") for link in channel.findall("a:link", NS)}


def entry_ids(path: str, data: bytes) -> list[str]:
    if path.endswith(".json"):
        return [item["id"] for item in json.loads(data)["items"]]
    root = etree.fromstring(data)
    if root.tag == f"{{{ATOM}}}feed":
        return [e.findtext("a:id", namespaces=NS) for e in root.findall("a:entry", NS)]
    return [i.findtext("guid") for i in root.iter("item")]


# --- the file set -------------------------------------------------------------------------

def test_plans_subscription_archive_and_tag_files(cfg: Config) -> None:
    articles = series(6)
    articles = [dataclasses.replace(a, tags=("News",)) if a.slug == "post-006" else a
                for a in articles]
    paths = {f.path for f in plan_feeds(articles, cfg)}
    assert paths == {
        "feed.xml", "atom.xml", "feed.json",
        "archive/1.xml", "archive/1.atom", "archive/1.json",
        "archive/2.xml", "archive/2.atom", "archive/2.json",
        "tags/news.xml", "tags/news.atom",
    }


def test_feed_content_types_cover_every_suffix(cfg: Config) -> None:
    assert FEED_CONTENT_TYPES == {".xml": "application/rss+xml",
                                  ".atom": "application/atom+xml",
                                  ".json": "application/feed+json"}
    articles = series(2, tags=("x",))
    assert {Path(f.path).suffix for f in plan_feeds(articles, cfg)} <= set(FEED_CONTENT_TYPES)


def test_subscription_feeds_hold_the_newest_size_entries(cfg: Config) -> None:
    articles = series(9)
    files = build(articles, cfg)
    check_all(files)
    expected = [a.id for a in articles[:5]]
    for name in ("feed.xml", "atom.xml", "feed.json"):
        assert entry_ids(name, files[name]) == expected, name


# --- round trips --------------------------------------------------------------------------

def tricky_article() -> Article:
    berlin = ZoneInfo("Europe/Berlin")
    return art(1, title=TRICKY_TITLE, html=TRICKY_HTML, summary="A < B & \"C\" — ünï 😀",
               author="Zoë O'Brien & <Co>", tags=("C++ & Co", "Café", "日本語"),
               published=datetime(2024, 3, 5, 9, 30, tzinfo=berlin),
               updated=datetime(2024, 3, 7, 18, 15, 5, tzinfo=berlin))


def test_rss_round_trips_every_field(cfg: Config) -> None:
    article = tricky_article()
    data = build([article], cfg)["feed.xml"]
    parsed = rss_parse(data)
    (entry,) = parsed.entries
    assert entry.title == TRICKY_TITLE
    assert entry.link == BASE + "posts/post-001.html"
    assert entry.id == article.id
    assert entry.guidislink is False
    assert entry.author == "Zoë O'Brien & <Co>"
    assert [t.term for t in entry.tags] == ["C++ & Co", "Café", "日本語"]
    assert entry.content[0].value == TRICKY_HTML
    published = datetime(*entry.published_parsed[:6], tzinfo=UTC)
    assert published == article.published
    assert datetime(*entry.updated_parsed[:6], tzinfo=UTC) == article.updated  # atom:updated
    # The raw XML carries the exact HTML body and the escaped summary.
    item = etree.fromstring(data).find("channel/item")
    assert item.findtext("content:encoded", namespaces=NS) == TRICKY_HTML
    assert item.findtext("description") == "A &lt; B &amp; \"C\" — ünï 😀"
    assert item.find("guid").get("isPermaLink") == "false"
    assert item.findtext("dc:creator", namespaces=NS) == "Zoë O'Brien & <Co>"
    channel = etree.fromstring(data).find("channel")
    assert channel.findtext("lastBuildDate") == "Thu, 07 Mar 2024 18:15:05 +0100"
    assert channel.findtext("managingEditor") == "editor@news.example.org (Test Editor)"


@pytest.mark.parametrize("body", ["<p>a]]>b ]]]]> c]]</p><p>]]></p>", "<p>one\r\ntwo\r</p>"])
def test_bodies_cdata_cannot_hold_as_they_are_round_trip(cfg: Config, body: str) -> None:
    # Bodies are CDATA sections: "]]>" must be split over two, and a carriage return (which
    # a parser reads as a line feed inside CDATA) needs the escaped form.
    files = build([art(1, html=body)], cfg)
    check_all(files)
    item = etree.fromstring(files["feed.xml"]).find("channel/item")
    assert item.findtext("content:encoded", namespaces=NS) == body
    entry = etree.fromstring(files["atom.xml"]).find("a:entry", NS)
    assert entry.findtext("a:content", namespaces=NS) == body
    assert json.loads(files["feed.json"])["items"][0]["content_html"] == body


def test_atom_round_trips_every_field(cfg: Config) -> None:
    article = tricky_article()
    data = build([article], cfg)["atom.xml"]
    parsed = atom_parse(data)
    (entry,) = parsed.entries
    assert entry.title == TRICKY_TITLE
    assert entry.title_detail.type == "text/plain"
    assert entry.link == BASE + "posts/post-001.html"
    assert entry.id == article.id
    assert entry.author == "Zoë O'Brien & <Co>"
    # The plain-text summary is written as escaped HTML: its text is exactly the summary.
    assert entry.summary_detail.type == "text/html"
    assert html.unescape(entry.summary) == "A < B & \"C\" — ünï 😀"
    assert [t.term for t in entry.tags] == ["C++ & Co", "Café", "日本語"]
    assert entry.content[0].type == "text/html"
    assert entry.content[0].value == TRICKY_HTML
    assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == article.published
    assert datetime(*entry.updated_parsed[:6], tzinfo=UTC) == article.updated
    raw = etree.fromstring(data).find("a:entry", NS)
    assert raw.findtext("a:content", namespaces=NS) == TRICKY_HTML
    assert raw.find("a:summary", NS).get("type") == "html"
    assert raw.findtext("a:summary", namespaces=NS) == "A &lt; B &amp; \"C\" — ünï 😀"
    assert raw.findtext("a:published", namespaces=NS) == "2024-03-05T09:30:00+01:00"
    assert raw.findtext("a:updated", namespaces=NS) == "2024-03-07T18:15:05+01:00"
    assert parsed.feed.updated == "2024-03-07T18:15:05+01:00"


def test_json_feed_round_trips_every_field(cfg: Config) -> None:
    article = tricky_article()
    doc = json.loads(build([article], cfg)["feed.json"])
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["title"] == "Test Site"
    assert doc["home_page_url"] == BASE
    assert doc["feed_url"] == BASE + "feed.json"
    assert doc["authors"] == [{"name": "Test Editor"}]
    (item,) = doc["items"]
    assert item["id"] == article.id
    assert item["url"] == BASE + "posts/post-001.html"
    assert item["title"] == TRICKY_TITLE
    assert item["content_html"] == TRICKY_HTML
    assert item["summary"] == "A < B & \"C\" — ünï 😀"
    assert item["authors"] == [{"name": "Zoë O'Brien & <Co>"}]
    assert item["tags"] == ["C++ & Co", "Café", "日本語"]
    assert datetime.fromisoformat(item["date_published"]) == article.published
    assert datetime.fromisoformat(item["date_modified"]) == article.updated


def test_author_falls_back_to_the_site_author(cfg: Config) -> None:
    files = build([art(1, author=None)], cfg)
    assert rss_parse(files["feed.xml"]).entries[0].author == "Test Editor"
    assert atom_parse(files["atom.xml"]).entries[0].author == "Test Editor"
    assert json.loads(files["feed.json"])["items"][0]["authors"] == [{"name": "Test Editor"}]


def test_empty_summary_is_left_out(cfg: Config) -> None:
    files = build([art(1, summary="")], cfg)
    entry = etree.fromstring(files["atom.xml"]).find("a:entry", NS)
    assert entry.find("a:summary", NS) is None
    assert "summary" not in json.loads(files["feed.json"])["items"][0]
    item = etree.fromstring(files["feed.xml"]).find("channel/item")
    assert item.findtext("description") == "<p>Body of post 1.</p>"  # the body stands in


def test_an_entry_without_a_body_has_no_blank_content(cfg: Config) -> None:
    files = build(newest_first([art(1, html="", summary=""),
                                art(2, html="")]), cfg)
    check_all(files)
    atom = etree.fromstring(files["atom.xml"])
    rss = etree.fromstring(files["feed.xml"])
    for entry, item in zip(atom.findall("a:entry", NS), rss.iter("item"), strict=True):
        assert entry.find("a:content", NS) is None
        assert item.find("content:encoded", NS) is None
        assert entry.find("a:link[@rel='alternate']", NS) is not None
    # A title-only entry uses its title as summary; a given summary stays.
    assert [e.findtext("a:summary", namespaces=NS) for e in atom.findall("a:entry", NS)] == [
        "Summary 2", "Post 1"]
    assert [i.findtext("description") for i in rss.iter("item")] == ["Summary 2", "Post 1"]
    items = json.loads(files["feed.json"])["items"]
    assert [(i["content_html"], i["summary"]) for i in items] == [("", "Summary 2"),
                                                                  ("", "Post 1")]


def test_offsets_with_seconds_are_written_in_utc(cfg: Config) -> None:
    lmt = datetime(1920, 1, 10, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))  # +00:19:32
    assert lmt.utcoffset().seconds % 60
    files = build([art(1, published=lmt)], cfg)
    check_all(files)
    entry = etree.fromstring(files["atom.xml"]).find("a:entry", NS)
    assert entry.findtext("a:published", namespaces=NS) == "1920-01-10T08:40:28+00:00"
    assert etree.fromstring(files["atom.xml"]).findtext("a:updated", namespaces=NS) == (
        "1920-01-10T08:40:28+00:00")
    assert etree.fromstring(files["feed.xml"]).findtext("channel/item/pubDate") == (
        "Sat, 10 Jan 1920 08:40:28 +0000")


# --- links --------------------------------------------------------------------------------

def test_relative_links_in_bodies_become_absolute(cfg: Config) -> None:
    html = ('<p><a href="/about.html">a</a> <img src="img/cat.png" alt="cat"> '
            '<a href="#note">n</a> <a href="https://other.example.com/">o</a> '
            '<a href="mailto:x@example.com">m</a></p>')
    files = build([art(1, html=html)], cfg)
    expected = ('<p><a href="https://news.example.org/about.html">a</a> '
                '<img src="https://news.example.org/img/cat.png" alt="cat"> '
                '<a href="https://news.example.org/posts/post-001.html#note">n</a> '
                '<a href="https://other.example.com/">o</a> '
                '<a href="mailto:x@example.com">m</a></p>')
    assert atom_parse(files["atom.xml"]).entries[0].content[0].value.startswith(
        '<p><a href="https://news.example.org/about.html">')
    atom_entry = etree.fromstring(files["atom.xml"]).find("a:entry", NS)
    assert atom_entry.findtext("a:content", namespaces=NS) == expected
    item = etree.fromstring(files["feed.xml"]).find("channel/item")
    assert item.findtext("content:encoded", namespaces=NS) == expected
    assert json.loads(files["feed.json"])["items"][0]["content_html"] == expected


def test_every_link_in_every_file_is_absolute(make_site: Any) -> None:
    cfg = make_site(extra="""
        [feeds]
        archive_size = 2
        websub_hub = "https://hub.example.net/"
        """)
    files = build(series(5, tags=("t",), html='<p><a href="x.html">x</a></p>'), cfg)
    for path, data in files.items():
        if path.endswith(".json"):
            doc = json.loads(data)
            urls = [doc["home_page_url"], doc["feed_url"], doc.get("next_url", BASE)]
            urls += [hub["url"] for hub in doc.get("hubs", [])]
            urls += [item["url"] for item in doc["items"]]
            bodies = [item["content_html"] for item in doc["items"]]
        else:
            root = etree.fromstring(data)
            urls = [el.get("href") for el in root.iter(f"{{{ATOM}}}link")]
            urls += [el.text for el in root.iter("link")]
            bodies = [el.text for el in root.iter(f"{{{ATOM}}}content",
                                                  f"{{{NS['content']}}}encoded")]
        assert urls and all(u.startswith(("https://", "http://")) for u in urls), path
        for body in bodies:
            assert 'href="https://news.example.org/x.html"' in body, path


def test_rss_and_atom_carry_self_and_alternate_links(cfg: Config) -> None:
    files = build(series(1), cfg)
    assert rss_links(files["feed.xml"])["self"] == BASE + "feed.xml"
    channel = etree.fromstring(files["feed.xml"]).find("channel")
    assert channel.findtext("link") == BASE
    links = atom_links(files["atom.xml"])
    assert links["self"] == BASE + "atom.xml"
    assert links["alternate"] == BASE


def test_websub_hub_appears_in_all_three_formats(make_site: Any) -> None:
    cfg = make_site(extra="""
        [feeds]
        websub_hub = "https://hub.example.net/"
        """)
    files = build(series(2, tags=("t",)), cfg)
    assert rss_links(files["feed.xml"])["hub"] == "https://hub.example.net/"
    assert atom_links(files["atom.xml"])["hub"] == "https://hub.example.net/"
    assert json.loads(files["feed.json"])["hubs"] == [
        {"type": "WebSub", "url": "https://hub.example.net/"}]
    assert rss_links(files["tags/t.xml"])["hub"] == "https://hub.example.net/"
    assert atom_links(files["tags/t.atom"])["hub"] == "https://hub.example.net/"
    check_all(files)


def test_no_hub_link_without_a_hub(cfg: Config) -> None:
    files = build(series(2), cfg)
    assert "hub" not in rss_links(files["feed.xml"])
    assert "hub" not in atom_links(files["atom.xml"])
    assert "hubs" not in json.loads(files["feed.json"])


def test_no_script_reaches_a_feed_from_a_sanitized_body(cfg: Config) -> None:
    dirty = ('<p onclick="steal()">Hi<script>alert(1)</script>'
             '<a href="javascript:alert(2)">x</a><img src="a.png" onerror="bad()"></p>')
    clean = nh3.clean(dirty)  # what the article parser stores
    files = build([art(1, html=clean)], cfg)
    for path, data in files.items():
        text = data.decode("utf-8").lower()
        for marker in ("<script", "&lt;script", "javascript:", "onclick", "onerror"):
            assert marker not in text, (path, marker)
    assert "Hi" in atom_parse(files["atom.xml"]).entries[0].content[0].value


# --- RFC 5005 archives --------------------------------------------------------------------

def test_archive_pages_chain_and_hold_every_entry_once(cfg: Config) -> None:
    articles = series(10)  # archive_size 4: pages 1, 2 full, page 3 open with 2 entries
    files = build(articles, cfg)
    check_all(files)
    for suffix in (".xml", ".atom", ".json"):
        seen = [i for n in (1, 2, 3) for i in entry_ids(f"archive/{n}{suffix}",
                                                          files[f"archive/{n}{suffix}"])]
        assert sorted(seen) == sorted(a.id for a in articles), suffix
        assert len(seen) == len(set(seen))
    oldest = [a.id for a in reversed(articles)]
    assert entry_ids("archive/1.atom", files["archive/1.atom"]) == oldest[0:4][::-1]
    assert entry_ids("archive/3.atom", files["archive/3.atom"]) == oldest[8:10][::-1]

    for suffix, current, links in ((".atom", "atom.xml", atom_links),
                                   (".xml", "feed.xml", rss_links)):
        page = {n: links(files[f"archive/{n}{suffix}"]) for n in (1, 2, 3)}
        assert "prev-archive" not in page[1]
        assert page[1]["next-archive"] == f"{BASE}archive/2{suffix}"
        assert page[2]["prev-archive"] == f"{BASE}archive/1{suffix}"
        assert page[2]["next-archive"] == f"{BASE}archive/3{suffix}"
        assert page[3]["prev-archive"] == f"{BASE}archive/2{suffix}"
        assert "next-archive" not in page[3]
        assert all(page[n]["current"] == BASE + current for n in (1, 2, 3))
        assert all(page[n]["self"] == f"{BASE}archive/{n}{suffix}" for n in (1, 2, 3))
        assert links(files[current])["prev-archive"] == f"{BASE}archive/3{suffix}"

    json_pages = {n: json.loads(files[f"archive/{n}.json"]) for n in (1, 2, 3)}
    assert json.loads(files["feed.json"])["next_url"] == BASE + "archive/3.json"
    assert json_pages[3]["next_url"] == BASE + "archive/2.json"
    assert json_pages[2]["next_url"] == BASE + "archive/1.json"
    assert "next_url" not in json_pages[1]


def test_only_full_pages_are_marked_archived(cfg: Config) -> None:
    files = build(series(10), cfg)
    for n, archived in ((1, True), (2, True), (3, False)):
        atom = etree.fromstring(files[f"archive/{n}.atom"])
        assert (atom.find("fh:archive", NS) is not None) == archived
        rss = etree.fromstring(files[f"archive/{n}.xml"]).find("channel")
        assert (rss.find("fh:archive", NS) is not None) == archived
    assert etree.fromstring(files["atom.xml"]).find("fh:archive", NS) is None


def test_full_pages_never_change_when_newer_articles_arrive(cfg: Config) -> None:
    before = series(8)  # exactly two full pages and an empty open page 3
    files_before, keys_before = build(before, cfg), keys(before, cfg)
    assert entry_ids("archive/3.atom", files_before["archive/3.atom"]) == []
    check_all(files_before)
    for count in (9, 12, 13):
        after = series(count)
        files_after, keys_after = build(after, cfg), keys(after, cfg)
        for n in (1, 2):
            for suffix in (".xml", ".atom", ".json"):
                path = f"archive/{n}{suffix}"
                assert files_after[path] == files_before[path], (count, path)
                assert keys_after[path] == keys_before[path], (count, path)
        assert files_after["feed.xml"] != files_before["feed.xml"]
        assert keys_after["archive/3.atom"] != keys_before["archive/3.atom"]


def test_editing_an_entry_changes_only_the_files_that_show_it(cfg: Config) -> None:
    articles = series(10)
    before = keys(articles, cfg)
    edited = [dataclasses.replace(a, title="Edited", updated=a.published + timedelta(days=30))
              if a.slug == "post-002" else a for a in articles]
    after = keys(edited, cfg)
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {"archive/1.xml", "archive/1.atom", "archive/1.json"}
    files = build(edited, cfg)
    assert "Edited" in atom_parse(files["archive/1.atom"]).entries[2].title


def test_site_without_articles_has_valid_fixed_feeds(cfg: Config) -> None:
    files = build([], cfg)
    assert set(files) == {"feed.xml", "atom.xml", "feed.json"}
    check_all(files)
    assert etree.fromstring(files["atom.xml"]).findtext("a:updated", namespaces=NS) == (
        "2000-01-01T00:00:00+00:00")
    channel = etree.fromstring(files["feed.xml"]).find("channel")
    assert channel.findtext("lastBuildDate") == "Sat, 01 Jan 2000 00:00:00 +0000"
    assert json.loads(files["feed.json"])["items"] == []
    assert build([], cfg) == files


# --- tag feeds ----------------------------------------------------------------------------

def test_tag_slugs_transliterate_and_never_collide() -> None:
    slugs = tag_slugs(["Python", "Café Crème", "Straße", "C++", "C#", "日本語", "🎉", "python"])
    assert slugs["Café Crème"] == "cafe-creme"
    assert slugs["Straße"] == "strasse"
    assert slugs["日本語"].startswith("tag-") and slugs["🎉"].startswith("tag-")
    assert slugs["C++"] != slugs["C#"] and slugs["C++"].startswith("c-")
    assert slugs["Python"] == slugs["python"] == "python"  # case variants are one tag
    del slugs["python"]
    assert len(set(slugs.values())) == len(slugs)
    assert all(s == s.lower() and s.isascii() for s in slugs.values())
    assert tag_slugs(["C++", "C#", "Go"])["C++"] == slugs["C++"]  # stable under other tags
    assert tag_slugs(["Go"]) == {"Go": "go"}


def test_a_tag_keeps_its_hashed_file_name_when_its_spelling_changes_case(cfg: Config) -> None:
    # "Ελλάδα" has no ASCII letter, so its name carries a hash; "C++"/"c#" collide on "c".
    first = [art(1, tags=("Ελλάδα", "C++")), art(2, tags=("c#",))]
    flipped = first + [art(n, tags=("ελλάδα", "c++")) for n in (3, 4)]
    before = {p for p in keys(newest_first(first), cfg) if p.startswith("tags/")}
    after = {p for p in keys(newest_first(flipped), cfg) if p.startswith("tags/")}
    assert before == after  # the majority spelling changed, the file names did not
    assert len(before) == 6 and any(p.startswith("tags/tag-") for p in before)
    assert tag_slugs(["Ελλάδα"]) == {"Ελλάδα": tag_slugs(["ελλάδα"])["ελλάδα"]}
    assert tag_slugs(["C++", "C#"])["C++"] == tag_slugs(["c++", "C#"])["c++"]


def test_tag_feeds_hold_the_newest_entries_of_their_tag(cfg: Config) -> None:
    articles = newest_first([art(n, tags=("Café",) if n % 2 else ("Other", "Café"))
                             for n in range(1, 13)] + [art(20, tags=("Solo",))])
    files = build(articles, cfg)
    check_all(files)
    tagged = [a.id for a in articles if "Café" in a.tags][:5]
    assert entry_ids("tags/cafe.xml", files["tags/cafe.xml"]) == tagged
    assert entry_ids("tags/cafe.atom", files["tags/cafe.atom"]) == tagged
    assert atom_parse(files["tags/cafe.atom"]).feed.title == "Test Site: Café"
    assert atom_links(files["tags/cafe.atom"])["self"] == BASE + "tags/cafe.atom"
    assert rss_links(files["tags/cafe.xml"])["self"] == BASE + "tags/cafe.xml"
    assert entry_ids("tags/solo.atom", files["tags/solo.atom"]) == [art(20).id]


def test_tags_differing_in_case_share_one_feed_in_the_common_spelling(cfg: Config) -> None:
    articles = newest_first([art(1, tags=("food",)), art(2, tags=("food", "Market")),
                             art(3, tags=("Food",)), art(4, tags=("market",))])
    files = build(articles, cfg)
    check_all(files)
    assert sorted(p for p in files if p.startswith("tags/")) == [
        "tags/food.atom", "tags/food.xml", "tags/market.atom", "tags/market.xml"]
    assert entry_ids("tags/food.xml", files["tags/food.xml"]) == [art(3).id, art(2).id,
                                                                   art(1).id]
    feed = atom_parse(files["tags/food.atom"])
    assert feed.feed.title == "Test Site: food"  # two of three articles spell it so
    # A tie goes to the spelling that sorts first; entries carry the one spelling too.
    assert atom_parse(files["tags/market.atom"]).feed.title == "Test Site: Market"
    terms = [[t.term for t in e.tags] for e in atom_parse(files["atom.xml"]).entries]
    assert terms == [["Market"], ["food"], ["food", "Market"], ["food"]]


def test_tag_feeds_can_be_switched_off(make_site: Any) -> None:
    cfg = make_site(extra="""
        [feeds]
        tag_feeds = false
        """)
    assert not any(f.path.startswith("tags/") for f in plan_feeds(series(3, tags=("a",)), cfg))


# --- determinism, keys, errors ------------------------------------------------------------

def test_two_plans_and_renders_are_byte_identical(cfg: Config) -> None:
    articles = series(9, tags=("a", "b"))
    assert build(articles, cfg) == build(list(articles), cfg)
    assert keys(articles, cfg) == keys(articles, cfg)


def test_feed_dates_come_from_entries_not_the_clock(cfg: Config) -> None:
    articles = series(3)
    edited_old = dataclasses.replace(articles[-1], updated=START + timedelta(days=99))
    files = build([*articles[:-1], edited_old], cfg)
    parsed = atom_parse(files["atom.xml"])
    assert parsed.feed.updated == (START + timedelta(days=99)).isoformat()
    channel = etree.fromstring(files["feed.xml"]).find("channel")
    assert channel.findtext("lastBuildDate") == "Tue, 09 Apr 2024 09:00:00 +0000"


def test_keys_change_with_config_that_shows_in_the_files(make_site: Any) -> None:
    articles = series(3)
    plain = keys(articles, make_site())
    titled = keys(articles, make_site(extra='[feeds]\nwebsub_hub = "https://hub.example.net/"\n'))
    assert plain["feed.xml"] != titled["feed.xml"]
    assert plain["archive/1.xml"] == titled["archive/1.xml"]  # archives carry no hub


def test_parallel_renders_are_identical_and_leave_the_locale_alone(cfg: Config) -> None:
    files = plan_feeds(series(12, tags=("x",)), cfg)
    before = locale.setlocale(locale.LC_ALL)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = list(pool.map(lambda f: f.render(), files * 3))
    assert first == [f.render() for f in files * 3]
    assert locale.setlocale(locale.LC_ALL) == before


def test_duplicate_entry_ids_are_refused_with_both_files_named(cfg: Config) -> None:
    twin = art(2, id=art(1).id, source="other.md")
    with pytest.raises(FeedError, match="already used") as caught:
        plan_feeds([twin, art(1)], cfg)
    assert "other.md" in str(caught.value) and "post-001.md" in str(caught.value)


def test_dates_without_a_time_zone_are_refused_naming_the_file(cfg: Config) -> None:
    naive = art(1, updated=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(FeedError, match=r"post-001\.md: the updated .* has no time zone"):
        plan_feeds([naive], cfg)


def test_empty_site_title_is_refused_naming_the_key(make_site: Any) -> None:
    cfg = make_site(extra="")
    cfg = dataclasses.replace(cfg, site=dataclasses.replace(cfg.site, title="  "))
    with pytest.raises(FeedError, match="site.title"):
        plan_feeds([art(1)], cfg)


def test_blank_title_uses_the_slug_and_bad_characters_are_dropped(cfg: Config) -> None:
    files = build([art(1, title=" \x00 ", html="<p>a\x0bb\ud800c</p>", tags=("\x01",))], cfg)
    check_all(files)
    assert atom_parse(files["atom.xml"]).entries[0].title == "post-001"
    assert json.loads(files["feed.json"])["items"][0]["content_html"] == "<p>abc</p>"


@pytest.mark.parametrize("body, expected", [
    ('<p><A HREF="x.html">a</A></p>', '<p><a href="https://news.example.org/x.html">a</a></p>'),
    ("<p><a href='x.html'>a</a></p>", '<p><a href="https://news.example.org/x.html">a</a></p>'),
    ('<p><a href = x.html>a</a></p>', '<p><a href="https://news.example.org/x.html">a</a></p>'),
    ('<p><a href="//cdn.example.net/x">a</a></p>', '<p><a href="https://cdn.example.net/x">a</a></p>'),
    ('<p style="background: url(bg.png)">a</p>',
     '<p style="background: url(https://news.example.org/bg.png)">a</p>'),
    ('<p>x = 1, <a href="https://a.example/">a</a><br/></p>',
     '<p>x = 1, <a href="https://a.example/">a</a><br/></p>'),  # nothing relative: untouched
])
def test_relative_link_detection_errs_towards_rewriting(cfg: Config, body: str,
                                                        expected: str) -> None:
    files = build([art(1, html=body)], cfg)
    assert json.loads(files["feed.json"])["items"][0]["content_html"] == expected


def test_rss_head_without_the_prefixes_entries_use_is_refused(cfg: Config, monkeypatch) -> None:
    from feedpub.feeds import xml as feeds

    rss = next(f for f in plan_feeds([art(1)], cfg) if f.path == "feed.xml")
    assert b"<content:encoded>" in rss.render()  # entries use the declared prefixes
    monkeypatch.setattr(feeds, "_RSS_PREFIXES", (b'xmlns:media="http://example.org/m"',))
    with pytest.raises(FeedError, match="namespace prefixes"):
        rss.render()
