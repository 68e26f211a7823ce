"""The manifest's large values in part files (`articles.parts`): named again with the few
entries changed, written anew when entries come or go, checked when read."""

from __future__ import annotations

import os

from tests.test_incremental import NOW, SMALL, _cold, _tree

from feedpub.articles.cache import listed_count, listed_stats, load_manifest, manifest_head
from feedpub.articles.scan import article_stats
from feedpub.jobs.publish import build_feeds


def _parts(cfg) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.name for p in cfg.data_dir.glob("build-manifest-*.data")}


def _site(make_site):  # type: ignore[no-untyped-def]
    files = {f"2025-01-0{i}-n{i}.txt": f"date 2025-01-0{i} N{i}\n\nBody {i}.\n"
             for i in range(1, 8)}
    cfg = make_site(files, config_text=SMALL)
    build_feeds(cfg, now=NOW, workers=1)
    return cfg


def test_an_edit_names_the_same_part_files_with_its_changes(make_site, tmp_path) -> None:
    cfg = _site(make_site)
    first = _parts(cfg)
    assert len(first) == 3  # stats, outputs, published ids
    head = manifest_head(cfg)  # what the scanning process reads, without the other parts
    assert listed_stats(cfg, head) == article_stats(cfg.articles_dir)
    assert 3 <= listed_count(head) <= 14  # about 7 files, from the size of the stats part
    path = cfg.articles_dir / "2025-01-03-n3.txt"
    path.write_text(path.read_text() + "\nEdited.\n")
    os.utime(path, ns=(1_900_000_000_000_000_000,) * 2)
    report = build_feeds(cfg, now=NOW, workers=1)
    assert report.written and _parts(cfg) == first  # nothing written anew
    manifest = load_manifest(cfg)
    assert manifest.stats == article_stats(cfg.articles_dir)
    assert manifest.stats["2025-01-03-n3.txt"][0] == 1_900_000_000_000_000_000
    cold = _cold(cfg, tmp_path / "cold")
    assert set(manifest.outputs) <= set(cold) and "posts/2025-01-03-n3.html" in manifest.outputs
    assert all(size == len(cold[path]) for path, (_, size) in manifest.outputs.items())
    assert build_feeds(cfg, now=NOW, workers=1).up_to_date


def test_a_new_article_writes_new_parts_and_the_old_ones_go(make_site) -> None:
    cfg = _site(make_site)
    first = _parts(cfg)
    (cfg.articles_dir / "2025-01-09-new.txt").write_text("date 2025-01-09 New\n\nNew.\n")
    build_feeds(cfg, now=NOW, workers=1)
    now = _parts(cfg)
    assert len(now) == 3 and now.isdisjoint(first)  # every value changed its entries
    manifest = load_manifest(cfg)
    assert "2025-01-09-new.txt" in manifest.stats and len(manifest.published_ids) == 8


def test_a_damaged_part_file_means_a_full_build(make_site, tmp_path) -> None:
    cfg = _site(make_site)
    for name in _parts(cfg):
        path = cfg.data_dir / name
        path.write_bytes(path.read_bytes()[:-5])  # cut short
    assert load_manifest(cfg).stats == {} == listed_stats(cfg, manifest_head(cfg))
    path = cfg.articles_dir / "2025-01-03-n3.txt"
    path.write_text(path.read_text() + "\nEdited.\n")
    report = build_feeds(cfg, now=NOW, workers=1)
    assert not report.partial and report.articles == 7
    assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / "cold")
    assert load_manifest(cfg).stats == article_stats(cfg.articles_dir)
    for name in _parts(cfg):
        (cfg.data_dir / name).unlink()  # missing
    assert load_manifest(cfg).stats == {}


def test_a_damaged_outputs_part_with_unchanged_articles_builds_them_all(make_site,
                                                                         tmp_path) -> None:
    """The stats part still reads (the scan finds the files as it lists them), but another
    part is cut short: the manifest counts as none, and the build must still see the files."""
    from feedpub.articles.parts import PartRef

    for key in ("outputs", "published_ids"):
        cfg = _site(make_site)
        ref = manifest_head(cfg)[key]
        assert isinstance(ref, PartRef)
        path = cfg.data_dir / ref.name
        path.write_bytes(path.read_bytes()[:-5])
        assert listed_stats(cfg, manifest_head(cfg)) == article_stats(cfg.articles_dir)
        report = build_feeds(cfg, now=NOW, workers=1)
        assert report.articles == 7, key
        assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / f"cold-{key}")


def test_a_manifest_with_its_values_inline_and_an_index_without_a_selection_still_serve(
        make_site, tmp_path) -> None:
    """As the last release left them: the manifest keeps its values itself (no part files)
    and the article index keeps no `planned` selection. An edit then, and the next one, each
    equal a cold build."""
    import pickle

    from feedpub.articles.cache import cache_paths
    from feedpub.articles.index import index_path
    from feedpub.articles.parts import PartRef

    cfg = _site(make_site)
    manifest = load_manifest(cfg)
    head = manifest_head(cfg)
    for key in ("stats", "outputs", "published_ids"):
        assert isinstance(head[key], PartRef)
        head[key] = getattr(manifest, key)
    cache_paths(cfg)[0].write_bytes(pickle.dumps(head))
    for name in _parts(cfg):
        (cfg.data_dir / name).unlink()
    index = pickle.loads(index_path(cfg).read_bytes())
    del index["plan"]["planned"]
    index_path(cfg).write_bytes(pickle.dumps(index))
    assert load_manifest(cfg).stats == article_stats(cfg.articles_dir)
    assert build_feeds(cfg, now=NOW, workers=1).up_to_date
    for step in range(2):
        path = cfg.articles_dir / "2025-01-03-n3.txt"
        path.write_text(path.read_text() + f"\nEdited {step}.\n")
        os.utime(path, ns=(1_900_000_000_000_000_000 + step,) * 2)
        report = build_feeds(cfg, now=NOW, workers=1)
        assert report.partial and report.articles == 7
        assert _tree(cfg.public_dir) == _cold(cfg, tmp_path / f"cold-{step}")
        assert len(_parts(cfg)) == 3
