"""The benchmark's summary: table of medians, Pelican / feedpub ratios, targets, raw JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from _measure import Series

TARGET_SIZE = 10_000
TARGET_RATIO = 15.0  # Pelican / feedpub, wall time, full site and feeds only alike
TARGET_MEMORY_RATIO = 1.5  # feedpub's peak memory / Pelican's, same mode
TARGET_OLD_RATIO = 1.10  # feedpub / the older feedpub (--old), cold full build
TARGET_REBUILD_S = 1.0
TARGET_MEMORY_MB = 300.0
COLD = ("cold build", "cold, feeds only")


def find(results: list[Series], size: int, tool: str, scenario: str) -> Series | None:
    for series in results:
        if (series.size, series.tool, series.scenario) == (size, tool, scenario) and series.ok:
            return series
    return None


def report(results: list[Series], sizes: list[int]) -> None:
    print("\n=== Results: medians (wall time of the whole CLI process) ===")
    head = (f"{'N':>6}  {'tool':8} {'scenario':22} {'median s':>9} {'peak MB':>8} "
            f"{'cpu s':>7}  all runs (s)")
    print(head)
    print("-" * len(head))
    for s in results:
        runs = " ".join(f"{x.wall:.3f}" for x in s.samples)
        status = "" if s.ok else "  FAILED"
        print(f"{s.size:>6}  {s.tool:8} {s.scenario:22} {s.wall:9.3f} {s.peak_rss:8.1f} "
              f"{s.cpu:7.2f}  {runs}{status}")
        if s.note:
            print(f"{'':17}({s.note})")
    print("\n=== Cold builds, Pelican / feedpub (medians of interleaved runs; CPU time is less "
          "disturbed by other load) ===")
    for size in sizes:
        for scenario in COLD:
            ours, theirs = (find(results, size, t, scenario) for t in ("feedpub", "pelican"))
            if ours and theirs:
                print(f"  N={size:>6} {scenario:17}: wall {theirs.wall:.2f} s / {ours.wall:.2f} s"
                      f" = {theirs.wall / ours.wall:.1f}x;  CPU {theirs.cpu:.2f} s / "
                      f"{ours.cpu:.2f} s = {theirs.cpu / ours.cpu:.1f}x;  peak memory "
                      f"{ours.peak_rss:.0f} MB / {theirs.peak_rss:.0f} MB = "
                      f"{ours.peak_rss / theirs.peak_rss:.2f}x of Pelican's")
            else:
                print(f"  N={size:>6} {scenario:17}: n/a (a side was not run or failed)")
        ours, old = (find(results, size, t, "cold build") for t in ("feedpub", "old"))
        if ours and old:
            print(f"  N={size:>6} against --old     : wall {ours.wall:.2f} s / {old.wall:.2f} s "
                  f"= {ours.wall / old.wall:.2f}x of the older build's time;  CPU "
                  f"{ours.cpu:.2f} s / {old.cpu:.2f} s = {ours.cpu / old.cpu:.2f}x")
    targets(results, sizes)


def verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def targets(results: list[Series], sizes: list[int]) -> None:
    size = TARGET_SIZE if TARGET_SIZE in sizes else max(sizes)
    where = "" if size == TARGET_SIZE else f" (targets are set at N={TARGET_SIZE})"
    print(f"\n=== Targets at N={size}{where} ===")
    for scenario in COLD:
        ours = find(results, size, "feedpub", scenario)
        theirs = find(results, size, "pelican", scenario)
        ratio = theirs.wall / ours.wall if ours and theirs else None
        print(f"  {verdict(None if ratio is None else ratio >= TARGET_RATIO)}  {scenario}: at "
              f"least {TARGET_RATIO:.0f}x faster than Pelican: "
              + (f"{ratio:.1f}x" if ratio is not None else "not measured"))
        memory = ours.peak_rss / theirs.peak_rss if ours and theirs else None
        print(f"  {verdict(None if memory is None else memory <= TARGET_MEMORY_RATIO)}  "
              f"{scenario}: peak memory at most {TARGET_MEMORY_RATIO}x Pelican's: "
              + (f"{memory:.2f}x" if memory is not None else "not measured"))
    ours, old = (find(results, size, t, "cold build") for t in ("feedpub", "old"))
    ratio = ours.wall / old.wall if ours and old else None
    print(f"  {verdict(None if ratio is None else ratio <= TARGET_OLD_RATIO)}  cold build at "
          f"most {TARGET_OLD_RATIO:.2f}x the older feedpub's (--old): "
          + (f"{ratio:.2f}x" if ratio is not None else "not measured"))
    rebuild = find(results, size, "feedpub", "no-change rebuild")
    print(f"  {verdict(None if rebuild is None else rebuild.wall < TARGET_REBUILD_S)}  "
          f"no-change rebuild under {TARGET_REBUILD_S:.0f} s: "
          + (f"{rebuild.wall:.3f} s" if rebuild else "not measured"))
    mine = [s for s in results if s.size == size and s.tool == "feedpub" and s.ok]
    peak = max((s.peak_rss for s in mine), default=None)
    tree = max((s.peak_tree_rss for s in mine), default=None)
    print(f"  {verdict(None if peak is None else peak < TARGET_MEMORY_MB)}  peak memory under "
          f"{TARGET_MEMORY_MB:.0f} MB (highest of all feedpub runs, PSS of the process tree): "
          + (f"{peak:.1f} MB (summed RSS, shared pages counted in each process: {tree:.1f} MB)"
             if peak is not None and tree is not None else "not measured"))


def save(results: list[Series], path: Path, meta: dict[str, object]) -> None:
    data = {
        "meta": meta,
        "series": [
            {"size": s.size, "tool": s.tool, "scenario": s.scenario, "note": s.note,
             "median_s": s.wall if s.samples else None,
             "peak_mb": s.peak_rss if s.samples else None,
             "runs": [{**asdict(x), "log": str(x.log)} for x in s.samples]}
            for s in results
        ],
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    print(f"\nraw figures: {path}")
