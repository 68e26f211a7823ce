"""`feedpub build` after a text edit (`jobs.edits`) on sites the usual edit must also serve."""

from __future__ import annotations

import os

from tests.test_incremental import NOW, SMALL, _cold, _tree

import feedpub.jobs.incremental as incremental
from feedpub.jobs.publish import build_feeds


def test_a_text_edit_without_pages_is_planned_as_an_edit_after_a_full_build(
        make_site, tmp_path, monkeypatch) -> None:
    """With `[site] pages = false` the first edit after a full build takes the edit path
    (the full build keeps no site shape for pages it does not write), and equals a cold build."""
    files = {f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nTags: city\n\nBody {i}.\n"
             for i in range(1, 8)}
    cfg = make_site(files, config_text=SMALL.replace("per_page = 3",
                                                     "per_page = 3\npages = false"))
    build_feeds(cfg, now=NOW, workers=1)
    planned: list[bool] = []
    edit = incremental.replan_edit

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        quick = edit(*args, **kwargs)
        planned.append(quick is not None)
        return quick

    monkeypatch.setattr(incremental, "replan_edit", spy)
    path = cfg.articles_dir / "2025-01-04-n4.txt"
    path.write_text(path.read_text().replace("Body 4.", "Body four."))
    os.utime(path, ns=(1_900_000_000_000_000_000,) * 2)
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.partial and planned == [True]
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")
