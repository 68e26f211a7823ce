"""A `feedpub build` stopped at any point of saving what it knows (the outputs, the article
index, the manifest and its part files): the next build writes the files of a cold build."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from tests.test_incremental import NOW, SMALL, _cold, _tree

from feedpub.jobs.publish import build_feeds


class Stopped(Exception):
    pass


def stop_at(monkeypatch: pytest.MonkeyPatch, point: tuple[str, str, int, bool],
            ) -> Callable[[], None]:
    """Make call number `point[2]` of `point[0].point[1]` raise Stopped (after making the
    call, with `point[3]`); return what puts the function back."""
    module_name, name, number, after = point
    module = importlib.import_module(module_name)
    original: Callable[..., Any] = getattr(module, name)
    calls = [0]

    def stopping(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == number:
            if after:
                original(*args, **kwargs)
            raise Stopped(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, stopping)
    return lambda: monkeypatch.setattr(module, name, original)


# (module, name, which call stops, whether the call is made first); a full build stopped
# while it keeps its articles is tests/test_article_store.py's
POINTS = [
    ("feedpub.articles.cache", "store_part", 1, False),
    ("feedpub.articles.cache", "store_part", 2, False),
    ("feedpub.articles.cache", "store_part", 3, True),
    ("feedpub.articles.cache", "remove_stale_parts", 1, False),
    ("feedpub.articles.cache", "remove_stale_parts", 1, True),
    ("feedpub.jobs.incremental", "save_index", 1, False),
    ("feedpub.jobs.incremental", "save_index", 1, True),
    ("feedpub.jobs.incremental", "remove_stale_records", 1, False),
    ("feedpub.jobs.incremental", "mark_writing", 1, True),
    ("feedpub.jobs.stages", "atomic_write", 2, True),
    ("feedpub.articles.index", "_dump", 1, False),
    ("feedpub.articles.index", "_dump", 1, True),
]
CHANGES = ["body", "title", "add", "delete", "summary", "redate"]


def _change(folder: Any, kind: str, step: int) -> None:
    tick = 1_900_000_000_000_000_000 + step * 1000
    if kind == "add":
        path = folder / f"2025-01-2{step}-added.txt"
        path.write_text(f"date 2025-01-2{step} Added {step}\n\nTags: city\n\nNew {step}.\n")
    elif kind == "delete":
        path = folder / "2025-01-02-n2.txt"
        if path.exists():
            path.unlink()
        return
    elif kind == "summary":
        path = folder / "2025-01-05-md.md"
        path.write_text(path.read_text().replace("summary: ", f"summary: {step} "))
    else:
        path = folder / "2025-01-04-n4.txt"
        text = path.read_text()
        if kind == "body":
            text = text.replace("Body", f"Body {step}")
        elif kind == "title":
            text = text.replace("N4", f"N4-{step}", 1)
        else:
            text = text.replace("2025-01-04", "2025-01-1" + str(step % 10), 1)
        path.write_text(text)
    os.utime(path, ns=(tick, tick))


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("point", POINTS, ids=[f"{m.rsplit('.', 1)[1]}.{n}-{c}{'-after' * a}"
                                               for m, n, c, a in POINTS])
def test_a_build_stopped_while_saving_is_followed_by_a_right_one(
        make_site, tmp_path, monkeypatch, point, change) -> None:
    files = {f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nTags: city\n\nBody {i}.\n"
             for i in range(1, 9) if i != 5}
    files["2025-01-05-md.md"] = ("---\ntitle: Md\ndate: 2025-01-05T10:00+01:00\n"
                                 "summary: Short\n---\nBody md.\n")
    cfg = make_site(files, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    _change(cfg.articles_dir, "body", 0)
    build_feeds(cfg, now=NOW, workers=1)  # an edit: the manifest names its parts again
    restore = stop_at(monkeypatch, point)
    _change(cfg.articles_dir, change, 1)
    with pytest.raises(Stopped):
        build_feeds(cfg, now=NOW, workers=1)
    restore()
    build_feeds(cfg, now=NOW, workers=1)
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold-1"), point
    _change(cfg.articles_dir, "body", 2)  # and the build after that
    build_feeds(cfg, now=NOW, workers=1)
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold-2"), point
    assert build_feeds(cfg, now=NOW, workers=1).up_to_date
