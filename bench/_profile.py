"""Where feedpub's build spends time and memory: cProfile and tracemalloc reports.

Both run the real CLI in a subprocess (`-m feedpub --config X build`), so the profile covers
start-up and imports as well as the build itself.
"""

from __future__ import annotations

import pstats
import subprocess
from collections.abc import Callable
from pathlib import Path

_TRACEMALLOC = r"""
import runpy, sys, threading, time, tracemalloc

tracemalloc.start(1)
best = {"size": 0, "snap": None}
done = threading.Event()

def watch():
    while not done.wait(0.2):
        current = tracemalloc.get_traced_memory()[0]
        if current > best["size"] * 1.05:
            best["size"], best["snap"] = current, tracemalloc.take_snapshot()

thread = threading.Thread(target=watch, daemon=True)
thread.start()
sys.argv = ["feedpub", *sys.argv[1:]]
try:
    runpy.run_module("feedpub", run_name="__main__")
except SystemExit:
    pass
finally:
    done.set()
    thread.join()
    peak = tracemalloc.get_traced_memory()[1]
    print(f"tracemalloc peak: {peak / 2**20:.1f} MiB of Python objects "
          f"(largest sampled: {best['size'] / 2**20:.1f} MiB)")
    if best["snap"] is not None:
        print("largest allocation sites at the sampled peak:")
        for stat in best["snap"].statistics("lineno")[:20]:
            print(f"  {stat.size / 2**20:8.1f} MiB {stat.count:>9} blocks  {stat.traceback}")
"""


def _print_stats(path: Path, title: str) -> None:
    print(f"\n--- {title}: top functions by cumulative time ({path}) ---")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(30)
    print(f"--- {title}: top functions by own time ---")
    stats.sort_stats("tottime").print_stats(20)


def profile_build(python: str, site: Path, work: Path, clean: Callable[[], None],
                  edit: Callable[[], None]) -> None:
    """Profile a cold build, a no-change and a one-edited rebuild, then a cold build's memory."""
    args = ["--config", str(site / "config.toml"), "build"]
    print(f"\n=== Profile of feedpub at {site} ===", flush=True)
    clean()
    for name, title in (("profile-cold.prof", "cold build"),
                        ("profile-rebuild.prof", "no-change rebuild"),
                        ("profile-edited.prof", "rebuild, 1 edited")):
        if name == "profile-edited.prof":
            edit()
        out = work / name
        out.unlink(missing_ok=True)
        done = subprocess.run([python, "-m", "cProfile", "-o", str(out), "-m", "feedpub",
                               *args], cwd=site, check=False, capture_output=True, text=True)
        said = (done.stdout.strip().splitlines() or ["(nothing)"])[-1]
        print(f"\n{title}: exit status {done.returncode}; feedpub said: {said}")
        if out.exists():
            _print_stats(out, title)
        else:
            print(f"no profile written for the {title}")
    clean()
    print("\n--- memory of a cold build (tracemalloc; slower than a normal run) ---", flush=True)
    subprocess.run([python, "-c", _TRACEMALLOC, *args], cwd=site, check=False)
