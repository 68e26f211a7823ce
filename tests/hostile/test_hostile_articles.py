"""Hostile article files, generated here (no fixtures on disk): each is one skipped article,
named with its file and line; the good articles are still published and every output parses
and validates.

The build runs as `feedpub build` in a child process, as an operator runs it, so a
traceback or a crash anywhere in the pipeline shows in its output or exit code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from feedpub.articles.scan import parse_article
from feedpub.config import SiteConfig
from feedpub.errors import ArticleError
from test_feeds import atom_parse, rss_parse

SITE = SiteConfig(base_url="https://news.example.org/", timezone="Europe/Berlin")

GOOD = {
    "2024-03-01-good.txt": "date 2024-03-01 A good entry\n\nTags: news\n\nAll is well.\n",
    "2024-03-02-fine.md": "---\ntitle: Fine too\ndate: 2024-03-02\n---\n\nA *fine* entry.\n",
}


def _md(front: str, body: str = "Body.\n") -> str:
    return f"---\ntitle: T\ndate: 2024-03-05\n{front}---\n\n{body}"


# name -> (content, line the error must name)
BAD: dict[str, tuple[str | bytes, int]] = {
    "deep-flow.md": (_md("tags: " + "[" * 100_000 + "\n"), 4),
    "deep-block.md": (_md("".join(" " * i + f"k{i}:\n" for i in range(150))), 103),
    "deep-html.md": (_md("", "Intro.\n\n" + "<div>" * 100_000 + "x\n"), 8),
    "markup-flood.md": (_md("", "Intro.\n\n" + "*a" * 200_000 + "\n"), 8),
    "offset-hours.txt": ("date 1900-01-01T00:00+23:59 Far east\n\nBody.\n", 1),
    "offset-seconds.md": (_md("updated: 2024-03-05T10:00:00+01:00:30\n"), 4),
    "invalid-utf8.txt": (b"date 2024-03-05 Bytes\n\nCaf\xe9 \xff\xfe\n", 3),
    "python-object.md": ("---\ntitle: !!python/object/apply:os.system ['id']\n"
                         "date: 2024-03-05\n---\n\nBody.\n", 2),
    "no-header.txt": ("just text\n\n" + "x" * 10_000 + "\n", 1),
}


def _write_site(root: Path, extra_config: str = "") -> Path:
    (root / "config.toml").write_text(
        '[site]\ntitle = "Hostile"\nbase_url = "https://news.example.org/"\n'
        'timezone = "Europe/Berlin"\n' + extra_config, encoding="utf-8")
    folder = root / "articles"
    folder.mkdir()
    for name, body in GOOD.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def _build(root: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                           str(root / "config.toml"), "build"],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _check_outputs(public: Path) -> list[str]:
    """Parse and validate every feed; return the entry titles of the main Atom feed."""
    for path in public.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        elif path.suffix == ".atom" or path.name == "atom.xml":
            atom_parse(path.read_bytes())
        elif path.suffix == ".xml" and path.name != "sitemap.xml":
            rss_parse(path.read_bytes())
    return [e.title for e in atom_parse((public / "atom.xml").read_bytes()).entries]


def test_every_hostile_article_is_one_skipped_article(tmp_path: Path) -> None:
    folder = _write_site(tmp_path)
    for name, (body, _) in BAD.items():
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        (folder / name).write_bytes(data)
    # Links: one to a secret outside, one to an outside folder, a loop, a self-loop,
    # a path name with "..".
    secret = tmp_path / "secret.txt"
    secret.write_text("date 2024-03-09 FEEDPUB_SECRET_KEY=hunter2\n\nleaked\n")
    (folder / "outside.txt").symlink_to(secret)
    (folder / "etc").symlink_to("/etc")
    (folder / "loop").symlink_to("../articles")
    (folder / "self.txt").symlink_to("self.txt")
    (folder / "2024-03-06-a..b...txt").write_text("date 2024-03-06 Dots in the name\n\nFine.\n")

    code, output = _build(tmp_path)
    assert code == 1, output
    assert "Traceback" not in output
    assert "hunter2" not in output and "leaked" not in output
    for name, (_, line) in BAD.items():
        assert re.search(rf"{re.escape(name)}:{line}: ", output), (name, output)
    for name in ("outside.txt", "etc", "loop", "self.txt"):
        assert re.search(rf"(?m){re.escape(name)}: .*symbolic link", output), (name, output)
    titles = _check_outputs(tmp_path / "public")
    assert set(titles) == {"A good entry", "Fine too", "Dots in the name"}

    # The daemon's rebuilds: the next build (cache warm) reports the same and publishes a
    # new good article.
    (folder / "2024-03-07-new.txt").write_text("date 2024-03-07 Newer\n\nNew.\n")
    code, again = _build(tmp_path)
    assert code == 1 and "Traceback" not in again
    assert "Newer" in _check_outputs(tmp_path / "public")


def test_classic_hostile_text_still_gives_valid_feeds(tmp_path: Path) -> None:
    folder = _write_site(tmp_path)
    controls = "".join(chr(c) for c in range(32) if c not in (9, 10, 13))
    (folder / "2024-03-03-classics.txt").write_text(
        f"date 2024-03-03 Tricky ]]> \u202egnp.exe <b>&amp;\n\nTags: a]]>b, \u202ertl\n\n"
        f"Controls {controls}\x7f\x85 end ]]> and </description> too.\n", encoding="utf-8")
    (folder / "2024-03-04-laughs.md").write_text(
        "---\ntitle: Laughs\ndate: 2024-03-04\nid: &a [lol, lol, lol, lol, lol, lol]\n"
        "author: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "updated: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "summary: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ntags: *d\n---\n\nHa.\n",
        encoding="utf-8")
    code, output = _build(tmp_path)
    assert "Traceback" not in output
    assert "2024-03-04-laughs.md:6: 'updated' must be a single value" in output
    titles = _check_outputs(tmp_path / "public")
    assert "Tricky ]]> \u202egnp.exe <b>&amp;" in titles, titles
    assert code == 1


def test_a_file_over_max_bytes_is_refused_unread(tmp_path: Path) -> None:
    folder = _write_site(tmp_path, "[articles]\nmax_bytes = 1000\n")
    (folder / "big.txt").write_text("date 2024-03-05 Big\n\n" + "word " * 1000)
    code, output = _build(tmp_path)
    assert code == 1 and "big.txt:1: the file is 5,021 bytes, more than the limit of 1,000" \
        in output
    assert set(_check_outputs(tmp_path / "public")) == {"A good entry", "Fine too"}


@pytest.mark.parametrize("value", ["+14:00", "-14:00", "+05:45", "-00:30"])
def test_offsets_feeds_can_carry_are_accepted(value: str) -> None:
    article = parse_article(f"date 2024-03-05T10:00{value} Title\n\nBody.\n", "a.txt", SITE)
    assert article.published.utcoffset() is not None


@pytest.mark.parametrize("value", ["+14:01", "-23:59", "+01:00:30"])
def test_offsets_past_14_hours_or_with_seconds_are_refused(value: str) -> None:
    with pytest.raises(ArticleError, match=r"a.txt:1: the time zone offset .* out of range"):
        parse_article(f"date 2024-03-05T10:00{value} Title\n\nBody.\n", "a.txt", SITE)


def test_nesting_up_to_the_limit_is_accepted_past_it_refused() -> None:
    ok = _md("", "<div>" * 100 + "deep" + "</div>" * 100 + "\n")
    assert "deep" in parse_article(ok, "ok.md", SITE).html
    with pytest.raises(ArticleError, match=r"deep.md:6: the HTML is nested more than 100"):
        parse_article(_md("", "<div>" * 101 + "\n"), "deep.md", SITE)
    # Elements whose end tag may be left out do not nest: a long list stays fine.
    items = "<ul>" + "<li>item" * 500 + "</ul>\n"
    assert parse_article(_md("", items), "list.md", SITE).html.count("<li>") == 500


def test_a_hostile_megabyte_is_refused_with_its_line() -> None:
    # How long it takes is measured by bench/hostile.py, not asserted here.
    body = _md("", "Intro.\n\n" + "<div>" * 200_000 + "\n")
    assert len(body) > 1_000_000
    with pytest.raises(ArticleError, match=r"big.md:8: the HTML is nested more than 100"):
        parse_article(body, "big.md", SITE)


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="needs O_NOFOLLOW")
def test_a_path_with_dotdot_is_refused(tmp_path: Path) -> None:
    from feedpub.articles.scan import read_article

    (tmp_path / "secret.txt").write_text("date 2024-01-01 Secret\n\nx\n")
    (tmp_path / "articles").mkdir()
    with pytest.raises(ArticleError, match="leads out of the articles folder"):
        read_article(tmp_path / "articles", "../secret.txt", SITE)
