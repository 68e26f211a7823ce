"""Golden files: the shipped sample articles build to exactly these feeds.

Regenerate after an intended output change with FEEDPUB_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedpub.config import parse_config
from feedpub.jobs.publish import build_feeds

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = ["feed.xml", "atom.xml", "feed.json", "archive/1.atom", "tags/food.xml"]
CONFIG = """
[site]
title = "Harbour Town News"
base_url = "https://news.example.org/"
description = "What happens around the harbour"
author = "Harbour Town Desk"
email = "desk@news.example.org"
timezone = "Europe/Berlin"

[feeds]
size = 5
archive_size = 4
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("golden")
    shutil.copytree(ROOT / "articles", site / "articles")
    cfg = parse_config(CONFIG, site)
    report = build_feeds(cfg, now=datetime(2026, 11, 25, tzinfo=UTC))
    assert report.ok and report.articles == 9
    return cfg.public_dir


@pytest.mark.parametrize("name", FILES)
def test_sample_feeds_match_golden_files(built: Path, name: str) -> None:
    produced = (built / name).read_bytes()
    golden = GOLDEN / name
    if os.environ.get("FEEDPUB_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(produced)
    assert produced == golden.read_bytes(), f"{name} differs from tests/golden/{name}"
    if not name.endswith(".json"):
        assert feedparser.parse(produced).bozo == 0
