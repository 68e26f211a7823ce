"""`feedpub init`: a new site from the shipped reference config; never overwrites."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import feedparser
from click.testing import CliRunner

from feedpub.cli import cli
from feedpub.config import Config, load_config
from feedpub.jobs.scaffold import reference_config

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_reference_config_is_the_repository_config() -> None:
    assert reference_config() == (ROOT / "config.toml").read_text(encoding="utf-8")


def test_init_writes_a_site_that_builds(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["init", str(site), "--title", "Harbour \"News\"",
                                      "--url", "http://127.0.0.1:8093", "--from",
                                      "letters@news.example.org"])
    assert result.exit_code == 0, result.output
    cfg = load_config(site / "config.toml")
    assert cfg.site.title == 'Harbour "News"'
    assert cfg.site.base_url == "http://127.0.0.1:8093/"
    assert cfg.digest.from_address == "letters@news.example.org"
    text = (site / "config.toml").read_text(encoding="utf-8")
    reference = reference_config()
    changed = [line for line in text.splitlines() if line not in reference.splitlines()]
    assert len(changed) == 4 and all("#" in line for line in changed), changed  # comments kept
    assert cfg.web.port == 8093  # a local address: `feedpub run` listens where it says
    assert "public/" in (site / ".gitignore").read_text() and "data/" in (
        site / ".gitignore").read_text()
    assert list((site / "templates").iterdir()) == [site / "templates" / "README.txt"]
    (article,) = (site / "articles").iterdir()
    assert article.read_text().startswith("date 20") and "T" in article.read_text().split()[1]
    done = subprocess.run([sys.executable, "-m", "feedpub", "build"], cwd=site,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 published" in done.stdout
    feed = feedparser.parse((site / "public" / "feed.xml").read_bytes())
    assert [e.title for e in feed.entries] == ['Welcome to Harbour "News"']


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "mine.txt").write_text("date 2024-03-05 Mine\n\nText.\n")
    result = CliRunner().invoke(cli, ["init", str(tmp_path), "--title", "T", "--url",
                                      "https://news.example.org/", "--from", "a@example.org"])
    assert result.exit_code == 2
    assert "not creating a site over existing files" in result.output
    assert not (tmp_path / "config.toml").exists()
    assert [p.name for p in (tmp_path / "articles").iterdir()] == ["mine.txt"]
    (tmp_path / "articles" / "mine.txt").unlink()
    (tmp_path / "config.toml").write_text("# mine\n")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 2 and "config.toml" in result.output
    assert (tmp_path / "config.toml").read_text() == "# mine\n"


def test_init_checks_the_answers_before_writing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "s"), "--title", "T", "--url",
                                      "news.example.org", "--from", "a@example.org"])
    assert result.exit_code == 2 and "site.base_url" in result.output
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "s"), "--title", "T", "--url",
                                      "https://news.example.org/", "--from", "nobody"])
    assert result.exit_code == 2 and "digest.from_address" in result.output
    assert not (tmp_path / "s").exists()


def test_init_without_answers_uses_the_defaults_when_nobody_can_be_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path)], input="")
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "config.toml").site == Config().site
