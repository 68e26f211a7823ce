"""The build job end to end: CLI exit codes, incremental rebuilds, determinism, --strict."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import feedparser
from click.testing import CliRunner
from lxml import etree

from feedpub.articles.records import HEAVY, heavy_record
from feedpub.articles.scan import parse_article
from feedpub.cli import cli
from feedpub.config import load_config
from feedpub.jobs.publish import build_feeds, published_articles

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
    assert "2 published, 0 draft(s), 0 scheduled, 0 skipped" in output
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


def test_a_build_hands_what_it_made_to_retain_and_writes_the_same_files(make_site) -> None:
    cfg = make_site(GOOD)
    plain = build_feeds(cfg, force=True)
    first = _snapshot(cfg.public_dir)
    shutil.rmtree(cfg.public_dir)
    kept: list[object] = []
    report = build_feeds(cfg, force=True, retain=kept)
    assert report.written and sorted(report.written) == sorted(plain.written)
    assert _snapshot(cfg.public_dir) == first
    # The articles and the plans stay referenced for the caller (a command that exits at once).
    articles = [item for item in kept if hasattr(item, "articles")]
    assert articles and len(articles[0].articles) == 2  # type: ignore[attr-defined]
    assert any(isinstance(item, list) and item and hasattr(item[0], "render") for item in kept)


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


def test_a_missing_articles_folder_is_an_error_and_leaves_the_site_alone(make_site,
                                                                       tmp_path) -> None:
    cfg = make_site(GOOD)
    assert _run(cfg.root, "build")[0] == 0
    before = _snapshot(cfg.public_dir)
    cfg.articles_dir.rename(tmp_path / "aside")  # an unmounted volume, a typo in the path
    code, output = _run(cfg.root, "build")
    assert code != 0
    assert str(cfg.articles_dir) in output and "does not exist" in output
    assert "[paths] articles" in output  # the fix
    assert _snapshot(cfg.public_dir) == before  # not replaced by an empty site
    (tmp_path / "aside").rename(cfg.articles_dir)
    assert _run(cfg.root, "build")[0] == 0 and _snapshot(cfg.public_dir) == before


def test_strict_writes_nothing(make_site) -> None:
    cfg = make_site({**GOOD, "broken.txt": "no header here\n"})
    code, output = _run(cfg.root, "build", "--strict")
    assert code == 1
    assert "--strict: nothing was written" in output
    assert not cfg.public_dir.exists()
    (cfg.articles_dir / "broken.txt").unlink()
    assert _run(cfg.root, "build")[0] == 0
    before = _snapshot(cfg.public_dir)
    path = cfg.articles_dir / "2024-03-06-market.md"  # a good edit next to a bad file
    path.write_text(path.read_text().replace("Market news", "Market notes"), encoding="utf-8")
    (cfg.articles_dir / "broken.txt").write_text("no header here\n", encoding="utf-8")
    for args in (("build", "--strict"), ("build", "--strict", "--force")):
        code, output = _run(cfg.root, *args)
        assert code == 1 and "nothing was written" in output
        assert _snapshot(cfg.public_dir) == before


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
    source = created.relative_to(cfg.articles_dir).as_posix()
    article = parse_article(text, source, cfg.site)
    assert article.title == "Ça va? A new entry"
    assert article.author == "Test Editor" and article.tags == ("city", "news")
    assert article.draft  # the placeholder text is not published until edited
    assert not article.html.startswith("<p>By:") and "Tags:" not in article.html
    assert article.id not in {a.id for a in published_articles(cfg)}
    untagged = Path(_run(cfg.root, "new", "No tags")[1].strip())
    plain = parse_article(untagged.read_text(encoding="utf-8"), untagged.name, cfg.site)
    assert (plain.author, plain.tags, plain.draft) == ("Test Editor", (), True)
    without_draft = text.replace("Draft: yes\n\n", "")
    assert not parse_article(without_draft, source, cfg.site).draft
    code, again = _run(cfg.root, "new", "Ça va? A new entry")
    assert Path(again.strip()).name.endswith("-ca-va-a-new-entry-2.txt")
    code, listing = _run(cfg.root, "articles", "--json")
    data = json.loads(listing)
    titles = [row["title"] for row in data["articles"]]
    assert "Ça va? A new entry" in titles and "Market news" in titles
    code, table = _run(cfg.root, "articles")
    assert "2024-03-06  Market news  [city]  2024-03-06-market.md" in table


def test_articles_marks_drafts_and_scheduled_entries_and_gives_errors_as_objects(
        make_site) -> None:
    cfg = make_site({**GOOD, "2099-01-01-later.txt": "date 2099-01-01T10:30 Later\n\nB.\n",
                     "draft.txt": "date 2024-01-01 Sketch\n\nDraft: yes\n\nB.\n",
                     "bad.txt": "date 2024-02-30 Bad\n"})
    code, table = _run(cfg.root, "articles")
    assert "Later [scheduled 2099-01-01T10:30+01:00]" in table
    assert "Sketch [draft]" in table
    assert "Market news  [city]" in table
    data = json.loads(_run(cfg.root, "articles", "--json")[1].split("\nerror:")[0])
    rows = {row["title"]: row for row in data["articles"]}
    assert rows["Later"]["scheduled"] and not rows["Later"]["draft"]
    assert rows["Sketch"]["draft"] and not rows["Sketch"]["scheduled"]
    assert not rows["Market news"]["scheduled"]
    assert data["errors"] == [{"file": "bad.txt", "line": 1,
                               "message": "2024-02-30 is not a real calendar date "
                                          "(day is out of range for month)",
                               "fix": "correct the day or month"}]


def test_warnings_print_once_survive_an_unchanged_rebuild_and_hide_with_quiet(
        make_site) -> None:
    cfg = make_site({**GOOD, "2024-03-07-bell.txt": "date 2024-03-07 Bell\x07\n\nB.\n"})
    warning = "2024-03-07-bell.txt:1: removed characters"
    # A real process: its logging goes to the same stderr as the command's own messages.
    proc = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                           str(cfg.root / "config.toml"), "build"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr.count(warning) == 1, proc.stderr
    shutil.rmtree(cfg.public_dir)
    code, output = _run(cfg.root, "build")
    assert code == 0 and output.count(warning) == 1
    code, output = _run(cfg.root, "build")
    assert "up to date" in output and output.count(warning) == 1
    code, output = _run(cfg.root, "-q", "build", "--force")
    assert code == 0 and output == ""
    code, output = _run(cfg.root, "-q", "check")
    assert code == 0 and output == ""
    (cfg.articles_dir / "bad.txt").write_text("no header\n", encoding="utf-8")
    code, output = _run(cfg.root, "-q", "build")
    assert code == 1 and "bad.txt:1:" in output and "warning" not in output


def test_shipped_sample_site_builds_cleanly(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "articles", tmp_path / "articles")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    cfg = load_config(tmp_path / "config.toml")
    report = build_feeds(cfg)
    assert report.ok and report.articles >= 8
    assert not report.warnings


def test_published_articles_reuses_the_build_cache_but_sees_edits(make_site) -> None:
    cfg = make_site(GOOD)
    build_feeds(cfg)
    assert [a.title for a in published_articles(cfg)] == ["Market news",
                                                         "Library & Museum <Hours>"]
    path = cfg.articles_dir / "2024-03-06-market.md"
    path.write_text(path.read_text().replace("Market news", "Market notes"), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    assert published_articles(cfg)[0].title == "Market notes"


def test_config_change_and_force_remove_files_the_last_build_wrote(make_site) -> None:
    cfg = make_site(GOOD)
    build_feeds(cfg)
    assert (cfg.public_dir / "tags/culture.xml").exists()
    cfg = make_site(extra="""
        [feeds]
        tag_feeds = false
        """)
    report = build_feeds(cfg)
    assert "tags/culture.xml" in report.removed and "tags/city.atom" in report.removed
    assert not [p for p in (cfg.public_dir / "tags").iterdir() if p.suffix != ".html"]
    # --force discards the cache too, but not the list of files to clean up.
    (cfg.articles_dir / "2024-03-05-library.txt").unlink()
    report = build_feeds(cfg, force=True)
    assert "posts/2024-03-05-library.html" in report.removed
    assert not (cfg.public_dir / "posts/2024-03-05-library.html").exists()
    assert (cfg.public_dir / "posts/2024-03-06-market.html").exists()


def test_files_listed_by_an_older_build_manifest_are_removed_too(make_site) -> None:
    import pickle

    cfg = make_site(GOOD)
    # What a build of the first cache version left: its files and a manifest that lists
    # them as {path: key}. This build reads nothing else of it, but still cleans up.
    for path in ("tags/gone.xml", "posts/old-slug.html", "feed.xml"):
        (cfg.public_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (cfg.public_dir / path).write_text("old", encoding="utf-8")
    (cfg.public_dir / "kept-by-hand.txt").write_text("mine", encoding="utf-8")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"version": 1, "fingerprint": "x", "stats": {}, "published_ids": (),
                "next_publish": None, "errors": [],
                "outputs": {"tags/gone.xml": "k1", "posts/old-slug.html": "k2",
                            "feed.xml": "k3", "../outside.txt": "k4"}}
    (cfg.data_dir / "build-manifest.pickle").write_bytes(pickle.dumps(manifest))
    (cfg.root / "outside.txt").write_text("not ours", encoding="utf-8")
    report = build_feeds(cfg)
    assert sorted(report.removed) == ["posts/old-slug.html", "tags/gone.xml"]
    assert not (cfg.public_dir / "tags/gone.xml").exists()
    assert (cfg.public_dir / "feed.xml").read_text(encoding="utf-8") != "old"  # rebuilt
    assert (cfg.public_dir / "kept-by-hand.txt").exists()  # never listed: left alone
    assert (cfg.root / "outside.txt").exists()


def test_an_unreadable_article_is_an_error_in_build_and_check(make_site) -> None:
    cfg = make_site(GOOD)
    (cfg.articles_dir / "gone.txt").symlink_to(cfg.articles_dir / "deleted.txt")
    for _ in range(2):  # the second build is unchanged and must still fail
        code, output = _run(cfg.root, "build")
        assert code == 1
        assert "gone.txt: it is a symbolic link to" in output and "deleted.txt" in output
        assert "1 article(s) skipped" in output
    code, output = _run(cfg.root, "check")
    assert code == 1 and "problem: gone.txt: it is a symbolic link" in output
    (cfg.articles_dir / "deleted.txt").write_text("date 2024-03-07 Back\n\nB.\n")
    (cfg.articles_dir / "gone.txt").unlink()
    assert _run(cfg.root, "build")[0] == 0


def test_tags_differing_in_case_keep_one_feed_url_on_the_site(make_site) -> None:
    cfg = make_site(GOOD)
    build_feeds(cfg)
    before = (cfg.public_dir / "tags/city.xml").read_bytes()
    (cfg.articles_dir / "2024-03-07-tram.txt").write_text(
        "date 2024-03-07 Tram\n\nTags: City\n\nBody.\n", encoding="utf-8")
    report = build_feeds(cfg)
    assert report.ok
    assert sorted(p.name for p in (cfg.public_dir / "tags").iterdir()) == [  # pages too
        "city.atom", "city.html", "city.xml", "culture.atom", "culture.html", "culture.xml"]
    rss = feedparser.parse((cfg.public_dir / "tags/city.xml").read_bytes())
    assert rss.feed.title == "Test Site: city" and len(rss.entries) == 3
    assert (cfg.public_dir / "tags/city.xml").read_bytes() != before
    home = (cfg.public_dir / "index.html").read_text(encoding="utf-8")
    assert home.count('href="tags/city.xml"') == 1 and "City" not in home


def test_a_build_process_ends_with_its_output_flushed_and_its_exit_status(make_site) -> None:
    # `feedpub build` ends its process without the interpreter's teardown: what it printed
    # to pipes (block-buffered) must still arrive, and the status must be the command's.
    cfg = make_site({**GOOD, "bad.txt": "date 2024-02-30 Bad\n\nBody.\n"})
    command = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"),
               "build"]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"{len(GOOD)} published, 0 draft(s)"), proc.stdout
    assert proc.stdout.endswith(" file(s) written.\n"), proc.stdout
    assert "bad.txt:1" in proc.stderr and proc.stderr.endswith("skipped because of errors.\n")
    (cfg.articles_dir / "bad.txt").unlink()
    proc = subprocess.run([*command, "-q"], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (cfg.public_dir / "feed.xml").exists()


def test_a_profiled_build_process_still_writes_its_profile(make_site, tmp_path) -> None:
    # The quick exit is skipped under a profiler or tracemalloc, which report at exit.
    cfg = make_site(GOOD)
    out = tmp_path / "build.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "feedpub",
                           "--config", str(cfg.root / "config.toml"), "build", "-q"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0 and (cfg.public_dir / "feed.xml").exists()
    proc = subprocess.run([sys.executable, "-X", "tracemalloc", "-c",
                           "import atexit, sys; atexit.register(print, 'at exit'); "
                           "sys.argv = ['feedpub', '--config', sys.argv[1], 'build', '-q']; "
                           "from feedpub.cli import main; main()",
                           str(cfg.root / "config.toml")],
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, "at exit\n"), proc.stderr


def test_an_index_record_leaves_no_utf8_copy_inside_the_article_text(make_site) -> None:
    # Pickling a non-ASCII str directly would keep its UTF-8 form inside it (CPython counts
    # it in getsizeof): for every body of a large site, tens of MB more in the build process.
    cfg = make_site(GOOD)
    article = parse_article("date 2024-03-05 Café 🎉\n\nBy: Zoë\n\nA body with an emoji 🎉, "
                            "some Greek (Ελλάδα) and more text after it.\n", "a.txt", cfg.site)
    fields = [getattr(article, name) for name in HEAVY]
    sizes = [sys.getsizeof(value) for value in fields]
    record = heavy_record(article)
    assert [sys.getsizeof(value) for value in fields] == sizes
    assert pickle.loads(record) == tuple(fields)
    assert pickle.dumps(tuple(fields), protocol=pickle.HIGHEST_PROTOCOL) == record
