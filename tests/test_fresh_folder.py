"""A cold build fills a hidden folder that becomes public/ in one rename (`fresh_folder`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import feedparser
import pytest

from feedpub.fsutil import fresh_folder, write_new
from feedpub.jobs.publish import build_feeds
from web_helpers import ARTICLES


def _listing(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in folder.rglob("*") if p.is_file()}


def test_a_cold_build_writes_the_same_files_as_a_build_over_an_existing_folder(
        make_site) -> None:
    cfg = make_site(ARTICLES)
    public = cfg.public_dir
    build_feeds(cfg)  # cold: no public/ yet
    cold = _listing(public)
    assert not [p for p in public.parent.iterdir() if p.name.startswith(f".{public.name}.")]
    assert {mode for _, mode in cold.values()} == {0o644}
    assert feedparser.parse(cold["feed.xml"][0]).entries
    for path in public.rglob("*"):  # an empty public/ is written in place, file by file
        if path.is_file():
            path.unlink()
    build_feeds(cfg, force=True)
    assert _listing(public) == cold


def test_the_folder_appears_whole_and_only_when_the_block_succeeds(tmp_path: Path) -> None:
    target = tmp_path / "public"
    with fresh_folder(target) as staging:
        assert staging is not None and staging.parent == tmp_path
        write_new(os.fspath(staging / "posts" / "a.html"), b"<p>a</p>")
        assert not target.exists()
    assert (target / "posts" / "a.html").read_bytes() == b"<p>a</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public"]
    with fresh_folder(target) as staging:  # it exists now: written in place
        assert staging is None


def test_a_failed_block_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "public"
    with pytest.raises(RuntimeError), fresh_folder(target) as staging:
        assert staging is not None
        write_new(os.fspath(staging / "feed.xml"), b"x")
        raise RuntimeError("render failed")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_made_meanwhile_gets_the_files_moved_in(tmp_path: Path) -> None:
    target = tmp_path / "public"
    with fresh_folder(target) as staging:
        assert staging is not None
        write_new(os.fspath(staging / "feed.xml"), b"new")
        write_new(os.fspath(staging / "tags" / "a.xml"), b"tag")
        (target / "newsletter").mkdir(parents=True)  # another writer was quicker
        (target / "newsletter" / "index.html").write_bytes(b"kept")
        (target / "feed.xml").write_bytes(b"old")
    assert _listing(target) == {"feed.xml": (b"new", 0o644), "tags/a.xml": (b"tag", 0o644),
                                "newsletter/index.html": (b"kept", _listing(target)[
                                    "newsletter/index.html"][1])}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public"]


def test_write_new_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    write_new(os.fspath(path), b"one")
    with pytest.raises(FileExistsError):
        write_new(os.fspath(path), b"two")
    assert path.read_bytes() == b"one"
