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


def test_the_daemon_plans_a_text_edit_from_the_last_plan(make_site, tmp_path) -> None:
    """`feedpub run`: from the first change after start-up, a body edit keeps the feed
    documents that do not carry the article (the same objects, not planned again), and a
    title edit also reaches the neighbours' pages; each build equals a cold one. A
    re-dating re-plans every document."""
    from feedpub.jobs.live import LiveSite

    files = {f"2025-01-{i:02d}-n{i}.txt": f"date 2025-01-{i:02d} N{i}\n\nTags: city\n\nBody {i}.\n"
             for i in range(1, 13)}
    cfg = make_site(files, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(None, now=NOW)
    known = site._known  # arranged, templates compiled: the first change waits for neither
    assert known is not None and known.arranged is not None and known.env is not None
    path = cfg.articles_dir / "2025-01-02-n2.txt"  # in the first archive page only
    for step, (old, new) in enumerate([("Body 2.", "Body two."), ("N2", "Two")]):
        before, docs = _tree(cfg.public_dir), dict(known.docs)
        path.write_text(path.read_text().replace(old, new))
        os.utime(path, ns=(1_900_000_000_000_000_000 + step,) * 2)
        report = site.build([str(path)], now=NOW)
        after = _tree(cfg.public_dir)
        assert report.partial and after == _cold(cfg, tmp_path / f"cold-{step}")
        kept = [p for p, doc in known.docs.items() if doc is docs[p]]
        assert "feed.xml" in kept and "archive/1.xml" not in kept
        changed = {name for name in after if after[name] != before.get(name)}
        assert ("posts/2025-01-01-n1.html" in changed) == (step == 1)  # a neighbour
    path.write_text(path.read_text().replace("2025-01-02", "2024-12-30"))
    os.utime(path, ns=(1_900_000_000_000_000_009,) * 2)
    site.build([str(path)], now=NOW)
    assert not any(doc is docs[p] for p, doc in known.docs.items())
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold-redated")
    again = LiveSite(cfg)  # a restart: nothing changed, what the last build knew is read
    assert again.build(None, now=NOW).up_to_date
    assert again._known is not None and again._known.arranged is not None
    assert again._known.env is not None


def test_a_cli_text_edit_makes_only_the_articles_it_shows(make_site, tmp_path,
                                                           monkeypatch) -> None:
    """`feedpub build` after a body edit keeps the last selection (`edits.Planned`): of 40
    articles it makes the few that the rewritten outputs show, and equals a cold build. An
    edit that adds an attachment selects the articles again, and equals a cold build too."""
    from feedpub.jobs.edits import Planned

    files = {f"2025-02-{i:02d}-n{i}.txt": f"date 2025-02-{i:02d} N{i}\n\nTags: city\n\nBody {i}.\n"
             for i in range(1, 28)}
    files.update({f"2025-01-{i:02d}-m{i}.txt": f"date 2025-01-{i:02d} M{i}\n\nBody m{i}.\n"
                  for i in range(1, 13)})
    files["2025-01-20-md.md"] = "---\ntitle: Md\ndate: 2025-01-20\n---\nBody md.\n"
    cfg = make_site(files, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    made: list[Planned] = []
    init = Planned.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Planned, "__init__", spy)
    path = cfg.articles_dir / "2025-01-05-m5.txt"  # an old one: one closed archive page
    path.write_text(path.read_text().replace("Body m5.", "Body m-five."))
    os.utime(path, ns=(1_900_000_000_000_000_000,) * 2)
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.partial and report.articles == 40 and len(made) == 1
    assert 0 < len(made[0]._made) <= 12  # an archive page's entries and the neighbours
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")
    path = cfg.articles_dir / "2025-01-20-md.md"
    path.write_text(path.read_text().replace("---\nBody", "attachments: [{url: https://cdn."
                                             "example.org/a.mp3, type: audio/mpeg, length: "
                                             "1234}]\n---\nBody"))
    os.utime(path, ns=(1_900_000_000_000_000_001,) * 2)
    report = build_feeds(cfg, now=NOW, workers=1)
    assert len(made) == 1 and report.articles == 40 and report.partial
    after = _tree(cfg.public_dir)
    assert after == _cold(cfg, tmp_path / "cold-2")
    assert any(b"a.mp3" in data for name, data in after.items() if name.startswith("archive/"))


def test_the_daemon_rewrites_the_sitemap_when_only_an_offset_changed(make_site,
                                                                      tmp_path) -> None:
    """`feedpub run` when the edit is planned by comparing signatures (a slug shared by two
    files keeps the daemon off the edit path): the same instant written with another offset
    is another date in the sitemap, as in a cold build."""
    from feedpub.jobs.live import LiveSite

    files = {f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nBody {i}.\n"
             for i in range(1, 6)}
    files["clash.md"] = "---\ntitle: Clash\ndate: 2025-01-07\n---\nOne.\n"
    files["clash.txt"] = "date 2025-01-08 Clash\n\nTwo.\n"  # the same slug: an error
    files["timed.md"] = "---\ntitle: Timed\ndate: 2025-01-06T09:00+01:00\n---\nBody.\n"
    cfg = make_site(files, config_text=SMALL)
    site = LiveSite(cfg)
    site.build(None, now=NOW)
    for step, (old, new) in enumerate([("date: 2025-01-06T09:00+01:00",
                                        "date: 2025-01-06T08:00+00:00"),
                                       ("---\nBody", "updated: 2025-02-01T10:00+00:00\n---\nBody"),
                                       ("T10:00+00:00", "T11:00+01:00")]):
        path = cfg.articles_dir / "timed.md"
        path.write_text(path.read_text().replace(old, new))
        os.utime(path, ns=(1_900_000_000_000_000_000 + step,) * 2)
        site.build([str(path)], now=NOW)
        assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / f"cold-{step}"), step
