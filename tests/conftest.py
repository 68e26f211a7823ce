"""Shared fixtures: a temporary site folder with its own config.toml, on SQLite or PostgreSQL.

A test module that sets `BOTH_DATABASES = True` runs each of its tests that uses a site twice:
on a SQLite file and on a fresh PostgreSQL database made for the test (and dropped after) on
the server named by FEEDPUB_TEST_POSTGRES (default: the local server, user postgres).
"""

from __future__ import annotations

import contextlib
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

POSTGRES_SERVER = os.environ.get("FEEDPUB_TEST_POSTGRES",
                                 "postgresql://postgres@127.0.0.1:5432/postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "BOTH_DATABASES", False) and "database" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


def _postgres_unreachable(reason: str) -> None:
    message = (f"PostgreSQL at {POSTGRES_SERVER} is not reachable ({reason}); start it "
               "(pg_ctlcluster 15 main start) or point FEEDPUB_TEST_POSTGRES at a server "
               "where the user may create databases")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; its URL; dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        _postgres_unreachable("psycopg is not installed: pip install -e '.[test]'")
    name = f"feedpub_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        _postgres_unreachable(str(exc).strip())
    base = POSTGRES_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the default SQLite file; else the URL of a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, whatever the module runs on."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def make_site(tmp_path: Path, database: str | None) -> SiteFactory:
    """Build a site folder: config.toml (BASE_CONFIG plus `extra`) and the given articles."""

    def factory(articles: dict[str, str | bytes] | None = None, extra: str = "",
                config_text: str | None = None) -> Config:
        text = BASE_CONFIG + textwrap.dedent(extra) if config_text is None else config_text
        if database is not None and "[store]" not in text:
            text += f'\n[store]\nurl = "{database}"\n'
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


def _killed_at_the_end() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


@pytest.fixture
def daemons() -> Iterator[list[Any]]:
    """`feedpub run` processes a test started (objects with a `proc`): killed at the end."""
    yield from _killed_at_the_end()


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """`feedpub` worker and node processes a test started: killed at the end."""
    yield from _killed_at_the_end()
