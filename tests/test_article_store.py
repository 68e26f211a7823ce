"""Where the next build finds the last build's parsed articles: the article index after
`feedpub build`, the article cache after `feedpub run` (which keeps no index); each body is
stored once."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from tests.test_build_stopped import Stopped, stop_at
from tests.test_incremental import NOW, SMALL, _cold, _tree

from feedpub.articles.cache import cache_paths
from feedpub.articles.index import INDEX_NAME, StoredArticle
from feedpub.cli import cli
from feedpub.jobs.publish import build_feeds, load_site

FILES = {f"2025-01-{i:02d}-n{i}.txt": f"date 2025-01-{i:02d} N{i}\n\nTags: city\n\nBody {i} 🎉.\n"
         for i in range(1, 13)}


def _records(cfg) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(name for name in os.listdir(cfg.data_dir) if name.startswith("build-records-"))


def test_the_cli_keeps_its_articles_in_the_index_only(make_site, tmp_path) -> None:
    """`feedpub build` writes the article index and no article cache; a full build after it
    (an output was deleted) and `load_site` (the digests) read no article file again, and
    the full build equals a cold one."""
    cfg = make_site(FILES, config_text=SMALL)
    assert build_feeds(cfg, now=NOW, workers=1).reparsed == len(FILES)
    articles = cache_paths(cfg)[1]
    assert (cfg.data_dir / INDEX_NAME).exists() and len(_records(cfg)) == 1
    assert not articles.exists()

    loaded = load_site(cfg)
    assert len(loaded.articles) == len(FILES) and not loaded.errors
    assert all(type(article) is StoredArticle for article in loaded.articles)
    assert "Body 3 🎉." in next(a.html for a in loaded.articles if a.title == "N3")

    (cfg.public_dir / "posts" / "2025-01-03-n3.html").unlink()  # the index cannot serve
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.reparsed == 0 and "posts/2025-01-03-n3.html" in report.written
    assert not articles.exists() and len(_records(cfg)) == 1  # the old records file went
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")


def test_a_changed_file_is_read_again_and_the_rest_come_from_the_index(make_site,
                                                                       tmp_path) -> None:
    cfg = make_site(FILES, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    path = cfg.articles_dir / "2025-01-05-n5.txt"
    path.write_text(path.read_text().replace("Body 5", "Body five"), encoding="utf-8")
    os.utime(path, ns=(1_900_000_000_000_000_000,) * 2)
    (cfg.public_dir / "index.html").unlink()  # a full build, not one from the index
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.reparsed == 1 and not report.partial
    assert "Body five" in (cfg.public_dir / "posts" / "2025-01-05-n5.html").read_text()
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")


def test_the_daemon_keeps_the_article_cache_and_the_cli_takes_over(make_site,
                                                                   tmp_path) -> None:
    """`feedpub run` writes the article cache (its manifest names no index); a `feedpub
    build` after it reuses those articles, then keeps them in the index and removes the
    cache, which would only be stale."""
    from feedpub.jobs.live import LiveSite

    cfg = make_site(FILES, config_text=SMALL)
    LiveSite(cfg).build(None, now=NOW)
    articles = cache_paths(cfg)[1]
    assert articles.exists() and not (cfg.data_dir / INDEX_NAME).exists()
    (cfg.public_dir / "index.html").unlink()
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.reparsed == 0 and "index.html" in report.written
    assert not articles.exists() and (cfg.data_dir / INDEX_NAME).exists()
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")

    # The daemon started again reads the index the CLI left, and writes its cache anew.
    site = LiveSite(cfg)
    site.build(None, now=NOW)
    assert articles.exists()
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold-2")


def test_a_damaged_index_means_the_files_are_read_again(make_site, tmp_path) -> None:
    cfg = make_site(FILES, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    (cfg.data_dir / _records(cfg)[0]).write_bytes(b"")  # records cut: the index is unusable
    (cfg.public_dir / "index.html").unlink()
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.reparsed == len(FILES)
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")


@pytest.mark.parametrize("point", [
    ("feedpub.articles.records", "write_all", 1, False),
    ("feedpub.articles.records", "write_all", 2, True),
    ("feedpub.jobs.fromindex", "save_index", 1, False),
    ("feedpub.jobs.fromindex", "save_index", 1, True),
    ("feedpub.jobs.publish", "save_manifest", 1, True),
    ("feedpub.articles.index", "remove_stale_records", 1, False),
], ids=lambda point: f"{point[1]}-{point[2]}{'-after' * point[3]}")
@pytest.mark.parametrize("cold", [True, False], ids=["cold", "after-a-build"])
def test_a_full_build_stopped_while_keeping_its_articles(make_site, tmp_path, monkeypatch,
                                                         point, cold) -> None:
    """Stopped while the records are written, the index saved or the manifest saved: the
    next build equals a cold one and the digests read the kept articles; after the next
    edit, one records file is left."""
    cfg = make_site(FILES, config_text=SMALL)
    if not cold:
        build_feeds(cfg, now=NOW, workers=1)
        (cfg.public_dir / "index.html").unlink()  # the next build is a full one
    restore = stop_at(monkeypatch, point)
    monkeypatch.setattr("feedpub.jobs.stages._PARSE_CHUNK", 5)  # records written in 3 parts
    with pytest.raises(Stopped):
        build_feeds(cfg, now=NOW, workers=1)
    restore()
    build_feeds(cfg, now=NOW, workers=1)
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")
    loaded = load_site(cfg)  # the digests read the kept articles, not the files
    assert all(type(article) is StoredArticle for article in loaded.articles)
    path = cfg.articles_dir / "2025-01-05-n5.txt"
    path.write_text(path.read_text().replace("Body 5", "Body five"), encoding="utf-8")
    os.utime(path, ns=(1_900_000_000_000_000_000,) * 2)
    report = build_feeds(cfg, now=NOW, workers=1)  # an edit, from the index
    assert report.partial and report.reparsed == 1
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold-2")
    assert len(_records(cfg)) == 1  # a records file no index names is gone by now


def test_a_garbled_records_file_is_reported_with_its_fix(make_site, tmp_path) -> None:
    """Records overwritten with other bytes of the same length (a disk error) cannot be
    told from the index's sizes: reading one names the file and the fix, and `feedpub build
    --force` reads every article file again."""
    cfg = make_site(FILES, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    records = cfg.data_dir / _records(cfg)[0]
    records.write_bytes(b"\x00" * records.stat().st_size)
    (cfg.public_dir / "index.html").unlink()  # a full build, reusing the index
    run = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "build"])
    assert run.exit_code == 1, run.output
    assert f"{records}: the article record at byte 0 is damaged" in run.output
    assert "feedpub build --force" in run.output
    run = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "build",
                                   "--force"])
    assert run.exit_code == 0, run.output
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")
    assert all(type(a) is StoredArticle and a.html for a in load_site(cfg).articles)
