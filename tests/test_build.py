"""The build job end to end: CLI exit codes, incremental rebuilds, determinism, --strict."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import feedparser
from click.testing import CliRunner
from lxml import etree

from feedpub.cli import cli
from feedpub.config import load_config
from feedpub.jobs.publish import build_feeds

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "2024-03-05-library.txt": """\
        date 2024-03-05 Library & Museum <Hours>

        By: Jane Doe

        Tags: city, culture

        The library will open on "Sundays" — café included 🎉.
        """,
    "2024-03-06-market.md": """\
        ---
        title: Market news
        date: 2024-03-06
        tags: [city]
        ---
        See [the map](/maps/market.html).
        """,
}


def _run(site: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(site / "config.toml"), *args])
    return result.exit_code, result.output


def _snapshot(public: Path) -> dict[str, bytes]:
    return {p.relative_to(public).as_posix(): p.read_bytes()
            for p in sorted(public.rglob("*")) if p.is_file()}


def test_build_writes_valid_feeds_and_rebuild_is_byte_identical(make_site) -> None:
    cfg = make_site(GOOD)
    code, output = _run(cfg.root, "build")
    assert code == 0, output
    assert "2 article(s) published" in output
    first = _snapshot(cfg.public_dir)
    for name in ("feed.xml", "atom.xml", "feed.json", "tags/city.xml", "tags/city.atom"):
        assert name in first
    rss = feedparser.parse(first["feed.xml"])
    assert rss.bozo == 0
    assert [e.title for e in rss.entries] == ["Market news", "Library & Museum <Hours>"]
    assert rss.entries[0].link == "https://news.example.org/posts/2024-03-06-market.html"
    assert 'href="https://news.example.org/maps/market.html"' in rss.entries[0].content[0].value
    atom = feedparser.parse(first["atom.xml"])
    assert atom.bozo == 0 and atom.entries[1].author == "Jane Doe"
    assert "café included 🎉" in atom.entries[1].content[0].value
    assert json.loads(first["feed.json"])["items"][0]["title"] == "Market news"
    etree.fromstring(first["atom.xml"])

    code, output = _run(cfg.root, "build")
    assert code == 0 and "up to date" in output
    shutil.rmtree(cfg.data_dir)  # no cache at all: a full rebuild must still be identical
    code, output = _run(cfg.root, "build")
    assert code == 0
    assert _snapshot(cfg.public_dir) == first


def test_rebuild_rereads_only_changed_files(make_site) -> None:
    cfg = make_site(GOOD)
    assert build_feeds(cfg).reparsed == 2
    again = build_feeds(cfg)
    assert again.up_to_date and again.reparsed == 0 and not again.written
    path = cfg.articles_dir / "2024-03-05-library.txt"
    path.write_text(path.read_text().replace("Library & Museum", "Library"), encoding="utf-8")
    os.utime(path, ns=(1, 1))
    changed = build_feeds(cfg)
    assert changed.reparsed == 1
    assert "feed.xml" in changed.written
    rss = feedparser.parse((cfg.public_dir / "feed.xml").read_bytes())
    assert rss.entries[1].title == "Library <Hours>"
    # the edit kept the entry's id and did not mark it updated
    assert rss.entries[1].id == "tag:news.example.org,2024-03-05:library"


def test_deleted_article_and_its_tag_feed_disappear(make_site) -> None:
    cfg = make_site(GOOD)
    build_feeds(cfg)
    (cfg.articles_dir / "2024-03-05-library.txt").unlink()
    report = build_feeds(cfg)
    assert "tags/culture.xml" in report.removed
    assert not (cfg.public_dir / "tags/culture.xml").exists()
    assert len(feedparser.parse((cfg.public_dir / "feed.xml").read_bytes()).entries) == 1


def test_bad_articles_are_skipped_and_reported(make_site) -> None:
    cfg = make_site({**GOOD, "broken.txt": "no header here\n",
                     "2024-02-30-bad.txt": "date 2024-02-30 Impossible\n"})
    code, output = _run(cfg.root, "build")
    assert code == 1
    assert "broken.txt:1: the first line has no 'date' header" in output
    assert "2024-02-30-bad.txt:1: 2024-02-30 is not a real calendar date" in output
    assert "2 article(s) skipped" in output
    assert len(feedparser.parse((cfg.public_dir / "feed.xml").read_bytes()).entries) == 2
    code, output = _run(cfg.root, "build")  # no change: still reported, still non-zero
    assert code == 1 and "2 article(s) skipped" in output


def test_strict_writes_nothing(make_site) -> None:
    cfg = make_site({**GOOD, "broken.txt": "no header here\n"})
    code, output = _run(cfg.root, "build", "--strict")
    assert code == 1
    assert "--strict: nothing was written" in output
    assert not cfg.public_dir.exists()


def test_check_reports_problems_and_passes_on_a_good_site(make_site) -> None:
    cfg = make_site(GOOD)
    code, output = _run(cfg.root, "check")
    assert code == 1 and "no feeds found" in output
    _run(cfg.root, "build")
    code, output = _run(cfg.root, "check")
    assert code == 0, output
    (cfg.public_dir / "atom.xml").write_text("<feed>", encoding="utf-8")
    (cfg.articles_dir / "x.txt").write_text("date 2024-13-01 Bad month\n", encoding="utf-8")
    code, output = _run(cfg.root, "check")
    assert code == 1
    assert "atom.xml: not well-formed XML" in output
    assert "x.txt:1:" in output


def test_articles_and_new_commands(make_site) -> None:
    cfg = make_site(GOOD)
    code, output = _run(cfg.root, "new", "Ça va? A new entry", "--tags", "city, news")
    assert code == 0
    created = Path(output.strip())
    assert created.name.endswith("-ca-va-a-new-entry.txt")
    text = created.read_text(encoding="utf-8")
    assert text.startswith("date ") and "Ça va? A new entry" in text
    assert "Tags: city, news" in text
    code, again = _run(cfg.root, "new", "Ça va? A new entry")
    assert Path(again.strip()).name.endswith("-ca-va-a-new-entry-2.txt")
    code, listing = _run(cfg.root, "articles", "--json")
    data = json.loads(listing)
    titles = [row["title"] for row in data["articles"]]
    assert "Ça va? A new entry" in titles and "Market news" in titles
    code, table = _run(cfg.root, "articles")
    assert "2024-03-06  Market news  [city]  2024-03-06-market.md" in table


def test_shipped_sample_site_builds_cleanly(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "articles", tmp_path / "articles")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    cfg = load_config(tmp_path / "config.toml")
    report = build_feeds(cfg)
    assert report.ok and report.articles >= 8
    assert not report.warnings


def test_published_articles_reuses_the_build_cache_but_sees_edits(make_site) -> None:
    from feedpub.jobs.publish import published_articles

    cfg = make_site(GOOD)
    build_feeds(cfg)
    assert [a.title for a in published_articles(cfg)] == ["Market news",
                                                         "Library & Museum <Hours>"]
    path = cfg.articles_dir / "2024-03-06-market.md"
    path.write_text(path.read_text().replace("Market news", "Market notes"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    assert published_articles(cfg)[0].title == "Market notes"
