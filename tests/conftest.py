"""Shared fixtures: a temporary site folder with its own config.toml."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from feedpub.config import Config, load_config

BASE_CONFIG = """
[site]
title = "Test Site"
base_url = "https://news.example.org/"
description = "Test feed"
author = "Test Editor"
email = "editor@news.example.org"
timezone = "Europe/Berlin"

[digest]
from_address = "letters@news.example.org"
from_name = "Test Site"
"""

SiteFactory = Callable[..., Config]


@pytest.fixture
def make_site(tmp_path: Path) -> SiteFactory:
    """Build a site folder: config.toml (BASE_CONFIG plus `extra`) and the given articles."""

    def factory(articles: dict[str, str | bytes] | None = None, extra: str = "",
                config_text: str | None = None) -> Config:
        text = BASE_CONFIG + textwrap.dedent(extra) if config_text is None else config_text
        (tmp_path / "config.toml").write_text(text, encoding="utf-8")
        folder = tmp_path / "articles"
        folder.mkdir(exist_ok=True)
        for name, body in (articles or {}).items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(body, bytes):
                target.write_bytes(body)
            else:
                target.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
        return load_config(tmp_path / "config.toml")

    return factory


@pytest.fixture
def site(make_site: SiteFactory) -> Config:
    """An empty site with the base config."""
    return make_site()
