"""The site kept in memory (`jobs.incremental.LiveSite`, what `feedpub run` uses): after any
sequence of edits, additions, deletions, renames, re-datings, tag changes, drafts and broken
files, public/ holds exactly the files a cold build of the same tree writes."""

from __future__ import annotations

import dataclasses
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedpub.articles.cache import BuildCache
from feedpub.config import Config
from feedpub.errors import ArticleError
from feedpub.jobs.live import LiveSite
from feedpub.jobs.publish import build_feeds
from feedpub.jobs.stages import _read_all

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SMALL = """
[site]
title = "Test Site"
base_url = "https://news.example.org/"
timezone = "Europe/Berlin"
per_page = 3

[feeds]
size = 4
archive_size = 5
"""
WORDS = ("river", "bridge", "market", "library", "tram", "garden", "school", "harbour")
MEDIA = ("one", "two")  # media files under articles/media/, attached by some entries
TAGS = ("city", "City", "transport", "culture", "weather", "new tag", "Ελλάδα", "C++")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _beside(cfg: Config, root: Path) -> Config:
    """`cfg` building the same articles into public/ and data/ folders under `root`."""
    paths = dataclasses.replace(cfg.paths, articles=cfg.articles_dir,
                                public=root / "public", data=root / "data")
    return dataclasses.replace(cfg, paths=paths, root=root)


def _cold(cfg: Config, root: Path) -> dict[str, bytes]:
    """A cold build of `cfg`'s articles into a folder of its own."""
    other = _beside(cfg, root)
    build_feeds(other, now=NOW, workers=1, force=True)
    return _tree(other.public_dir)


class Writer:
    """Random changes to an article folder; each returns the paths it touched."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder = folder
        self.rng = rng
        self.tick = 1_700_000_000_000_000_000
        self.count = 0

    def names(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def text(self) -> str:
        rng = self.rng
        day = datetime(2025, 1, 1) + timedelta(days=rng.randrange(0, 500))
        when = day.strftime("%Y-%m-%d") + (f"T{rng.randrange(24):02d}:{rng.choice((0, 30)):02d}"
                                           if rng.random() < 0.4 else "")
        title = " ".join(rng.choice(WORDS).title() for _ in range(rng.randint(1, 4)))
        tags = ", ".join(rng.sample(TAGS, rng.randint(0, 3)))
        lines = [f"date {when} {title}", ""]
        if tags:
            lines += [f"Tags: {tags}", ""]
        if rng.random() < 0.1:
            lines += ["Draft: yes", ""]
        lines += [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))]
        return "\n".join(lines) + "\n"

    def write(self, name: str, text: str) -> str:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        self.tick += 10_000_000  # a new mtime for every write, however fast they come
        os.utime(path, ns=(self.tick, self.tick))
        return str(path)

    def media(self, name: str = "") -> list[str]:
        """Replace a media file under the articles folder with one of another length."""
        path = self.folder / "media" / f"{name or self.rng.choice(MEDIA)}.mp3"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * self.rng.randrange(1, 5000))
        return [str(path)]

    def step(self) -> tuple[str, list[str]]:
        rng, names = self.rng, self.names()
        roll = rng.random()
        if roll < 0.05:
            return "media", self.media()
        if not names or roll < 0.25:
            self.count += 1
            suffix = ".md" if rng.random() < 0.1 else ".txt"
            name = f"entry-{self.count}{suffix}" if rng.random() < 0.95 else rng.choice(
                [n.rsplit(".", 1)[0] + ".md" for n in names] or ["x.md"])  # a slug clash
            if name.endswith(".md"):  # half of them with an attachment whose length is read
                media = (f"attachments: [{{url: media/{rng.choice(MEDIA)}.mp3, "
                         "type: audio/mpeg}]\n" if rng.random() < 0.5 else "")
                return "add-md", [self.write(name, f"---\ntitle: Md {self.count}\ndate: "
                                             f"2025-02-03\n{media}---\nMarkdown body.\n")]
            return "add", [self.write(name, self.text())]
        name = rng.choice(names)
        path = self.folder / name
        if roll < 0.4:
            path.unlink()
            return "delete", [str(path)]
        if roll < 0.5:
            self.count += 1
            target = self.folder / f"renamed-{self.count}{path.suffix}"
            path.rename(target)
            return "rename", [str(path), str(target)]
        if name.endswith(".md"):
            return "touch-md", [self.write(name, path.read_text(encoding="utf-8") + "\nMore.\n")]
        lines = path.read_text(encoding="utf-8").split("\n")
        if roll < 0.6:  # re-date, often into the past (a closed archive page)
            head = lines[0].split(" ", 2)
            head[1] = (datetime(2024, 1, 1) + timedelta(days=rng.randrange(0, 900))
                       ).strftime("%Y-%m-%d")
            lines[0] = " ".join(head)
            return "redate", [self.write(name, "\n".join(lines))]
        if roll < 0.7:  # tags
            lines = [line for line in lines if not line.startswith("Tags:")]
            lines[1:1] = ["", "Tags: " + ", ".join(rng.sample(TAGS, rng.randint(1, 3)))]
            return "tags", [self.write(name, "\n".join(lines))]
        if roll < 0.75:  # a broken file, the rest still publishes
            return "break", [self.write(name, "no date line here\n")]
        if roll < 0.8:  # dated in the future: scheduled, not yet published
            return "future", [self.write(name, self.text().replace(
                "date 2025", "date 2027", 1).replace("date 2026", "date 2027", 1))]
        if roll < 0.85:  # a whole new text: title, date, tags
            return "rewrite", [self.write(name, self.text())]
        if roll < 0.9:  # the title only: the neighbours' links, the home and tag pages show it
            head = lines[0].split(" ", 2)
            lines[0] = " ".join([*head[:2], rng.choice(WORDS).title()])
            return "retitle", [self.write(name, "\n".join(lines))]
        lines[-2] = lines[-2] + " " + rng.choice(WORDS)  # the body only
        return "edit", [self.write(name, "\n".join(lines))]


@pytest.mark.parametrize("pages", [True, False], ids=["pages", "feeds-only"])
@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("FEEDPUB_SEEDS", "1 2 3").split()])
def test_random_changes_give_the_files_of_a_cold_build(make_site, tmp_path, seed,
                                                       pages) -> None:
    cfg = make_site(config_text=SMALL.replace("per_page = 3", "per_page = 3\npages = "
                                              + ("true" if pages else "false")))
    rng = random.Random(seed)
    writer = Writer(cfg.articles_dir, rng)
    for name in MEDIA:
        writer.media(name)  # both media files exist (an attachment of a missing one is an error)
    for _ in range(25):
        writer.step()
    site = LiveSite(cfg)
    site.build(None, now=NOW)
    cli = _beside(cfg, tmp_path / "cli")  # `feedpub build` after each step: from the index
    build_feeds(cli, now=NOW, workers=1)
    done: list[str] = []
    partial = 0
    for number in range(60):
        kind, paths = writer.step()
        done.append(kind)
        report = site.build(paths, now=NOW)
        from_disk = build_feeds(cli, now=NOW, workers=1)
        partial += report.partial + from_disk.partial
        expected = _cold(cfg, tmp_path / f"cold-{number}")
        for got in (_tree(cfg.public_dir), _tree(cli.public_dir)):
            assert got.keys() == expected.keys(), f"seed {seed}, steps {done}"
            wrong = [path for path in got if got[path] != expected[path]]
            assert not wrong, f"seed {seed}, steps {done}: {wrong[:5]}"
        if pages:
            assert report.articles == len([a for a in expected if a.startswith("posts/")])
        _check_arrangement(site)
        assert from_disk.articles == report.articles
    assert partial > 60  # most steps took the short way, in memory and from the index


def _check_arrangement(site: LiveSite) -> None:
    """The daemon's kept arrangement is the one all articles, read afresh, are given."""
    known = site._known
    if known is None or known.arranged is None:
        return
    full, _ = _read_all(site.cfg, dict(known.stats), BuildCache(), None)
    assert [(a.source, a.published, a.tags) for a in known.arranged.articles] == [
        (a.source, a.published, a.tags) for a in full.articles]


def test_unknown_changes_scan_the_folder(make_site, tmp_path) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n"}, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(now=NOW)
    (cfg.articles_dir / "sub").mkdir()
    (cfg.articles_dir / "sub" / "2025-01-02-b.txt").write_text("date 2025-01-02 B\n\nTwo.\n")
    report = site.build([str(cfg.articles_dir / "sub")], now=NOW)  # a folder: scanned
    assert "posts/sub-2025-01-02-b.html" in report.written
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")


def test_the_articles_folder_moved_away_leaves_the_site_as_it_was(make_site,
                                                                  tmp_path) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n"}, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(now=NOW)
    before = _tree(cfg.public_dir)
    cfg.articles_dir.rename(tmp_path / "aside")
    with pytest.raises(ArticleError, match="does not exist"):
        site.build([str(cfg.articles_dir)], now=NOW)  # what the watcher reports
    assert _tree(cfg.public_dir) == before
    (tmp_path / "aside").rename(cfg.articles_dir)
    site.build([str(cfg.articles_dir)], now=NOW)
    assert _tree(cfg.public_dir) == before == _cold(cfg, tmp_path / "cold")


def test_an_edit_writes_only_what_shows_the_article(make_site) -> None:
    articles = {f"2025-01-{day:02d}-n{day}.txt": f"date 2025-01-{day:02d} N{day}\n\nBody {day}.\n"
                for day in range(1, 21)}
    cfg = make_site(articles, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(now=NOW)
    path = cfg.articles_dir / "2025-01-10-n10.txt"
    path.write_text("date 2025-01-10 N10\n\nBody 10, edited.\n")
    report = site.build([str(path)], now=NOW)
    # its page, the home page that lists it with its summary and the archive page that
    # holds it (three formats); the neighbours' pages show only its title, unchanged
    assert sorted(report.written) == ["archive/2.atom", "archive/2.json", "archive/2.xml",
                                      "page/4.html", "posts/2025-01-10-n10.html"]
    assert site.build([str(path)], now=NOW).up_to_date


def test_a_bad_article_is_reported_and_the_rest_publishes(make_site) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n",
                     "2025-01-02-b.txt": "date 2025-01-02 B\n\nTwo.\n"}, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(now=NOW)
    path = cfg.articles_dir / "2025-01-02-b.txt"
    path.write_text("no date\n")
    report = site.build([str(path)], now=NOW)
    assert [e.source for e in report.skipped] == ["2025-01-02-b.txt"]
    assert "posts/2025-01-02-b.html" in report.removed
    assert (cfg.public_dir / "posts/2025-01-01-a.html").exists()


def test_a_future_entry_appears_when_its_time_comes(make_site, tmp_path) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n",
                     "2026-03-02-b.txt": "date 2026-03-02T09:00 B\n\nLater.\n"}, config_text=SMALL)
    site = LiveSite(cfg)
    first = site.build(now=NOW)
    assert first.scheduled == 1 and first.next_publish is not None
    later = first.next_publish + timedelta(seconds=1)
    report = site.build([], now=later)  # the scheduled rebuild: nothing changed on disk
    assert "posts/2026-03-02-b.html" in report.written


def test_a_build_stopped_while_writing_leaves_no_claim_of_current_outputs(make_site) -> None:
    from feedpub.articles.cache import load_manifest, mark_writing

    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n"}, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    assert load_manifest(cfg).outputs["posts/2025-01-01-a.html"][0]
    mark_writing(cfg, ["posts/2025-01-01-a.html"])  # then the process was killed
    (cfg.public_dir / "posts/2025-01-01-a.html").write_bytes(b"half a page")
    assert load_manifest(cfg).outputs["posts/2025-01-01-a.html"] == ("", -1)
    report = build_feeds(cfg, now=NOW, workers=1)
    assert "posts/2025-01-01-a.html" in report.written
    assert b"One." in (cfg.public_dir / "posts/2025-01-01-a.html").read_bytes()
    assert load_manifest(cfg).outputs["posts/2025-01-01-a.html"][0]


def test_drafts_mode_builds_drafts_incrementally(make_site, tmp_path) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n"}, config_text=SMALL)
    site = LiveSite(cfg, drafts=True)
    site.build(now=NOW)
    path = cfg.articles_dir / "2025-01-03-d.txt"
    path.write_text("date 2025-01-03 D\n\nDraft: yes\n\nNot yet.\n")
    report = site.build([str(path)], now=NOW)
    assert "posts/2025-01-03-d.html" in report.written and report.with_drafts


def test_the_daemon_serves_an_edit_and_a_rename(make_site, daemons) -> None:
    import time

    import httpx

    from process_helpers import Process

    articles = {f"2025-01-{day:02d}-n{day}.txt": f"date 2025-01-{day:02d} N{day}\n\nBody {day}.\n"
                for day in range(1, 13)}
    cfg = make_site(articles, config_text=SMALL + "\n[schedule]\ndebounce_ms = 50\n")
    daemon = Process(cfg, "run", "--host", "127.0.0.1", "--port", "0")
    daemons.append(daemon)
    url = daemon.wait_for(r"event=listening url=(\S+)").group(1)
    daemon.wait_for(r"event=build reason=startup")

    def served(path: str, text: str) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = httpx.get(url + path, timeout=5)
            if response.status_code == 200 and text in response.text:
                return True
            time.sleep(0.05)
        return False

    (cfg.articles_dir / "2025-01-05-n5.txt").write_text("date 2025-01-05 N5\n\nBody 5, edited.\n")
    assert served("posts/2025-01-05-n5.html", "Body 5, edited.")
    assert served("posts/2025-01-04-n4.html", "N5")  # the neighbour links to it
    (cfg.articles_dir / "2025-01-06-n6.txt").rename(cfg.articles_dir / "2025-01-06-six.txt")
    assert served("posts/2025-01-06-six.html", "Body 6.")
    assert served("posts/2025-01-05-n5.html", "2025-01-06-six.html")
    deadline = time.monotonic() + 20
    while httpx.get(url + "posts/2025-01-06-n6.html", timeout=5).status_code != 404:
        assert time.monotonic() < deadline, "the renamed article's old page is still served"
        time.sleep(0.05)
    assert daemon.stop() == 0


def test_a_damaged_or_missing_index_means_a_full_build(make_site, tmp_path) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n",
                     "2025-01-02-b.txt": "date 2025-01-02 B\n\nTwo.\n"}, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    index = cfg.data_dir / "build-index.pickle"
    for damage in ("truncate", "records", "kept", "kept-cut"):
        if damage == "truncate":
            index.write_bytes(index.read_bytes()[:100])
        elif damage == "records":
            for records in cfg.data_dir.glob("build-records-*.data"):
                records.unlink()
        else:
            kept = sorted(cfg.data_dir.glob("build-kept-*.data"))
            assert len(kept) >= 3  # the entries, the signatures, the arrangement
            for path in kept:
                if damage == "kept":
                    path.unlink()
                else:
                    path.write_bytes(path.read_bytes()[:-1])
        path = cfg.articles_dir / "2025-01-02-b.txt"
        path.write_text(path.read_text() + f"\n{damage}\n")
        report = build_feeds(cfg, now=NOW, workers=1)
        assert not report.partial and "posts/2025-01-02-b.html" in report.written
        assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / f"cold-{damage}")
    path = cfg.articles_dir / "2025-01-01-a.txt"
    path.write_text(path.read_text() + "\nagain\n")
    assert build_feeds(cfg, now=NOW, workers=1).partial  # the full build wrote a new index


def test_strict_from_the_index_writes_nothing_when_an_article_is_bad(make_site) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n"}, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    (cfg.articles_dir / "2025-01-01-a.txt").write_text("date 2025-01-01 A\n\nEdited.\n")
    (cfg.articles_dir / "broken.txt").write_text("no date\n")
    report = build_feeds(cfg, now=NOW, workers=1, strict=True)
    assert [e.source for e in report.skipped] == ["broken.txt"] and not report.written
    assert b"Edited." not in (cfg.public_dir / "posts/2025-01-01-a.html").read_bytes()


def test_a_deleted_output_is_written_again_by_the_next_build(make_site) -> None:
    cfg = make_site({"2025-01-01-a.txt": "date 2025-01-01 A\n\nOne.\n",
                     "2025-01-02-b.txt": "date 2025-01-02 B\n\nTwo.\n"}, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    (cfg.public_dir / "posts/2025-01-01-a.html").unlink()
    (cfg.articles_dir / "2025-01-02-b.txt").write_text("date 2025-01-02 B\n\nEdited.\n")
    report = build_feeds(cfg, now=NOW, workers=1)
    assert "posts/2025-01-01-a.html" in report.written


def test_the_index_keeps_only_the_files_it_names(make_site, tmp_path) -> None:
    """Kept values are written once and named again while unchanged; files no index names
    any more are removed once the manifest names the new index."""
    import pickle

    cfg = make_site({f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nBody {i}.\n"
                     for i in range(1, 6)}, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    first = {p.name for p in cfg.data_dir.glob("build-kept-*.data")}
    path = cfg.articles_dir / "2025-01-03-n3.txt"
    path.write_text(path.read_text() + "\nEdited.\n")
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.partial and report.written
    # A text edit: the entries, the arrangement and the signatures' base are named again.
    assert {p.name for p in cfg.data_dir.glob("build-kept-*.data")} == first
    path.write_text(path.read_text().replace("2025-01-03", "2024-12-30"))  # moves it
    build_feeds(cfg, now=NOW, workers=1)
    index = pickle.loads((cfg.data_dir / "build-index.pickle").read_bytes())
    named = {index["base"][0], *(v[0] for v in index["plan"].values()
                                 if type(v).__name__ == "_KeptName")}
    assert {p.name for p in cfg.data_dir.glob("build-kept-*.data")} == named
    assert named != first
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")


@pytest.mark.parametrize("change", ["title", "updated", "offset", "summary"])
def test_a_text_edit_rewrites_what_shows_it_and_nothing_else(make_site, tmp_path,
                                                             change) -> None:
    """The usual edit (`jobs.edits`): a new title reaches the neighbours' prev/next links, the
    home and tag pages; an `updated` date, or the same instant written with another offset,
    reaches the sitemap; each build equals a cold one, and pages far away stay."""
    files = {f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nTags: city\n\nBody {i}.\n"
             for i in range(1, 10) if i != 5}
    files["2025-01-05-n5.md"] = ("---\ntitle: N5\ndate: 2025-01-05T09:00+01:00\n"
                                 "tags: [city]\n---\nBody 5.\n")
    cfg = make_site(files, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    path = cfg.articles_dir / "2025-01-05-n5.md"
    text = path.read_text()
    path.write_text({
        "title": text.replace("title: N5", "title: Five"),
        "updated": text.replace("tags: [city]", "tags: [city]\nupdated: 2025-02-01"),
        "offset": text.replace("T09:00+01:00", "T08:00+00:00"),
        "summary": text.replace("Body 5.", "Body five, rewritten."),
    }[change])
    before = _tree(cfg.public_dir)
    report = build_feeds(cfg, now=NOW, workers=1)
    after = _tree(cfg.public_dir)
    assert report.partial and after == _cold(cfg, tmp_path / "cold")
    changed = {name for name in after if after[name] != before.get(name)}
    assert "posts/2025-01-05-n5.html" in changed
    assert "posts/2025-01-01-n1.html" not in changed  # far from the edit
    if change == "title":
        assert {"posts/2025-01-04-n4.html", "posts/2025-01-06-n6.html",
                "tags/city.html"} <= changed
    if change in ("updated", "offset"):
        assert "sitemap.xml" in changed
