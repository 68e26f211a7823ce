"""A build reads nothing outside the site: an audit hook sees every file the process opens
while `build_feeds` runs, with links in articles/ to a secret file and to /etc."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import feedpub
from feedpub.config import load_config
from feedpub.jobs.publish import build_feeds

_OPENED: list[str] | None = None
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _hook(event: str, args: tuple[object, ...]) -> None:
    """Record where each open leads: the target of a link, unless the open refuses to
    follow one (O_NOFOLLOW fails on a link without touching its target)."""
    if _OPENED is None or event != "open" or not isinstance(args[0], str | bytes | Path):
        return
    path = os.fsdecode(args[0])
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    _OPENED.append(os.path.abspath(path) if flags & _NOFOLLOW else os.path.realpath(path))


sys.addaudithook(_hook)


def test_a_build_opens_no_file_outside_articles_templates_config_and_outputs(
        tmp_path: Path) -> None:
    global _OPENED
    site = tmp_path / "site"
    articles = site / "articles"
    articles.mkdir(parents=True)
    (site / "config.toml").write_text('[site]\nbase_url = "https://news.example.org/"\n')
    (articles / "2024-01-01-good.txt").write_text("date 2024-01-01 Good\n\nBody.\n")
    (articles / "2024-01-02-fine.md").write_text("---\ntitle: Fine\ndate: 2024-01-02\n---\n\nA.\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("date 2024-01-03 Secret\n\nFEEDPUB_SECRET_KEY=x\n")
    (articles / "secret.txt").symlink_to(secret)
    (articles / "system").symlink_to("/etc")
    (articles / "loop").symlink_to("../articles")
    cfg = load_config(site / "config.toml")
    build_feeds(cfg, workers=1)  # loads every module first: imports are not the build's reads
    shutil.rmtree(cfg.public_dir)
    shutil.rmtree(cfg.data_dir)

    _OPENED = []
    try:
        report = build_feeds(cfg, workers=1)
    finally:
        opened, _OPENED = _OPENED, None
    assert {e.source for e in report.skipped} == {"secret.txt", "system", "loop"}
    assert report.articles == 2
    allowed = [os.path.realpath(p) for p in (
        articles, cfg.templates_dir, site / "config.toml", cfg.public_dir, cfg.data_dir,
        sys.prefix, sys.base_prefix, Path(feedpub.__file__).parent)]
    # A first build writes into a hidden folder beside public/, then renames it (fresh_folder).
    allowed.append(os.path.join(os.path.realpath(site), f".{cfg.public_dir.name}.new-"))
    outside = [p for p in opened if not any(p.startswith(root) for root in allowed)]
    assert any(p.endswith("2024-01-01-good.txt") for p in opened)
    assert outside == [], outside
    assert not any(str(secret) in p or p.startswith("/etc") for p in opened)
