"""Build benchmark: `feedpub build` against Pelican on the same synthetic articles.

Usage (from the repository root):

    .venv/bin/python bench/build.py                  # N = 1,000 and 10,000, 3 runs each
    .venv/bin/python bench/build.py --quick          # N = 200, 1 run: a smoke test
    .venv/bin/python bench/build.py --sizes 10000 --runs 5 --no-pelican --profile

Every figure is the wall time of a whole CLI process started as a subprocess, and its peak
memory. feedpub: a cold build (no public/, no data/), a rebuild with nothing changed, one
with a single article edited and one with a single article only touched. Pelican (in its own
venv under bench/.work/) runs cold every time. The script prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpus  # noqa: E402
import _pelican  # noqa: E402
import _profile  # noqa: E402
from _measure import (  # noqa: E402
    Sample,
    Series,
    changed,
    empty_trash,
    measure,
    set_aside,
    settle,
    snapshot,
)
from _report import report, save  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
BASE_URL = "https://bench.example.org/"
FEED_ITEMS = 20  # feedpub's default feeds.size; Pelican's FEED_MAX_ITEMS is set to match
CONFIG = f"""\
[site]
title = "Bench"
base_url = "{BASE_URL}"
"""


def default_python() -> str:
    """The interpreter that runs feedpub: the project venv's if present, else this one."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def feedpub_cmd(python: str, site: Path) -> list[str]:
    return [python, "-m", "feedpub", "--config", str(site / "config.toml"), "build"]


def clean_feedpub(site: Path) -> None:
    """A fresh site: only config.toml and articles/ stay (the rest is set aside)."""
    for entry in site.iterdir():
        if entry.name not in ("config.toml", "articles"):
            set_aside(entry)


@dataclasses.dataclass(frozen=True)
class Job:
    """One scenario of one tool: the command and what happens before and after each run."""

    tool: str
    scenario: str
    cmd: list[str]
    cwd: Path
    before_each: Callable[[int], None]
    after_each: Callable[[int, Sample], str] | None = None


def run_jobs(size: int, jobs: list[Job], runs: int, logs: Path) -> list[Series]:
    """Measure `runs` runs of each job, interleaved (run 1 of each, then run 2, ...).

    Interleaving spreads any change in background load evenly over the tools compared.
    `before_each(i)` is not measured, and the file system is synced after it: deleting the
    last run's output leaves the kernel work (journal, discard) that would otherwise land in
    the measured run. A job stops at its first failed run.
    """
    samples: dict[int, list[Sample]] = {k: [] for k in range(len(jobs))}
    notes: dict[int, list[str]] = {k: [] for k in range(len(jobs))}
    failed: set[int] = set()
    for i in range(runs):
        for k, job in enumerate(jobs):
            if k in failed:
                continue
            job.before_each(i)
            os.sync()
            name = "".join(c if c.isalnum() else "_" for c in job.scenario)
            log = logs / f"{job.tool}-{name}-{size}-{i}.log"
            sample = measure(job.cmd, job.cwd, log)
            samples[k].append(sample)
            if job.after_each is not None:
                notes[k].append(job.after_each(i, sample))
            print(f"  {job.tool:8} {job.scenario:24} run {i + 1}: {sample.wall:8.3f} s "
                  f"{sample.memory_mb:7.1f} MB (summed RSS "
                  f"{max(sample.rss_mb, sample.tree_mb):.1f})  rc={sample.rc}", flush=True)
            if not sample.ok:
                print(f"    FAILED, last lines of {log}:\n{sample.tail()}", flush=True)
                failed.add(k)
    return [Series(size, job.tool, job.scenario, tuple(samples[k]),
                   "; ".join(dict.fromkeys(n for n in notes[k] if n)))
            for k, job in enumerate(jobs)]


def edit_article(articles: list[Path], i: int) -> None:
    """Append a paragraph to one article (a different one for each `i`)."""
    path = articles[(len(articles) // 2 + 7919 * i) % len(articles)]
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n") + f"\n\nAn editor added this paragraph ({i}).\n",
                    encoding="utf-8")


def entries(path: Path) -> str:
    """'name: N entries' for an Atom or RSS file (parsed, so a broken feed shows), or JSON."""
    try:
        if path.suffix == ".json":
            count = len(json.loads(path.read_bytes()).get("items", []))
        else:
            root = etree.parse(str(path)).getroot()
            count = len(root.findall("{http://www.w3.org/2005/Atom}entry")
                        or root.findall("channel/item"))
    except (OSError, ValueError, etree.XMLSyntaxError) as exc:
        return f"{path.name}: unreadable ({exc})"
    return f"{path.name}: {count}"


def describe_feedpub_output(public: Path, size: int) -> str:
    if not public.exists():
        return "no public/ folder"
    files = [p for p in public.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    posts = len(list((public / "posts").glob("*.html"))) if (public / "posts").exists() else 0
    feeds = ", ".join(entries(p) for p in sorted(files)
                      if p.suffix in (".xml", ".json") and p.parent == public)
    text = f"{len(files)} files, {total / 1e6:.1f} MB, {posts} posts/*.html; entries: {feeds}"
    if posts != size:
        text += f"  (WARNING: expected {size} article pages)"
    return text


def describe_pelican_output(output: Path, size: int) -> str:
    if not output.exists():
        return "no output/ folder"
    files = [p for p in output.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    posts = len(list((output / "posts").glob("*.html"))) if (output / "posts").exists() else 0
    feeds = ", ".join(entries(p) for p in sorted((output / "feeds").glob("*")))
    text = f"{len(files)} files, {total / 1e6:.1f} MB, {posts} posts/*.html; entries: {feeds}"
    if posts != size:
        text += f"  (WARNING: expected {size} article pages)"
    return text


def bench_size(size: int, site: Path, python: str, pelican: tuple[Path, Path] | None,
               runs: int, logs: Path) -> list[Series]:
    """Cold builds (feedpub and Pelican interleaved), then feedpub's rebuilds."""
    cmd = feedpub_cmd(python, site)
    public = site / "public"
    jobs = [Job("feedpub", "cold build", cmd, site, lambda i: clean_feedpub(site))]
    if pelican is not None:
        exe, pel_site = pelican
        jobs.append(Job("pelican", "cold build", _pelican.command(exe), pel_site,
                        lambda i: _pelican.clean(pel_site)))
    cold = run_jobs(size, jobs, runs, logs)
    written = describe_feedpub_output(public, size)
    print(f"  feedpub output: {written}", flush=True)
    cold[0] = dataclasses.replace(cold[0], note=f"wrote {written}")
    if pelican is not None:
        written = describe_pelican_output(pelican[1] / "output", size)
        print(f"  pelican output: {written}", flush=True)
        cold[1] = dataclasses.replace(cold[1], note=f"wrote {written}")
    out = list(cold)
    if not cold[0].ok:
        return out
    articles = sorted((site / "articles").glob("*.txt"))
    state: dict[str, dict[str, tuple[int, int]]] = {}

    def remember(_: int) -> None:
        state["before"] = snapshot(public)

    def count(_: int, __: Sample) -> str:
        return f"{changed(state['before'], snapshot(public))} output files changed"

    def edit(i: int) -> None:
        edit_article(articles, i)
        remember(i)

    def touch(i: int) -> None:
        path = articles[(size // 3 + 104729 * i) % len(articles)]
        now = time.time() + i + 1
        os.utime(path, (now, now))
        remember(i)

    for scenario, prepare in (("no-change rebuild", remember), ("rebuild, 1 edited", edit),
                              ("rebuild, 1 touched", touch)):
        series = run_jobs(size, [Job("feedpub", scenario, cmd, site, prepare, count)], runs,
                          logs)
        out.extend(series)
        if not series[0].ok:
            break
    return out


def prepare_sites(size: int, seed: int, with_pelican: bool) -> tuple[Path, Path]:
    base = WORK / f"build-{size}"
    set_aside(base)
    fp_site, pel_site = base / "feedpub", base / "pelican"
    fp_site.mkdir(parents=True)
    (fp_site / "config.toml").write_text(CONFIG, encoding="utf-8")
    started = time.perf_counter()
    corpus = _corpus.make_corpus(size, seed)
    written = _corpus.write_corpus(corpus, fp_site / "articles",
                                   pel_site / "content" if with_pelican else None)
    if with_pelican:
        _pelican.write_settings(pel_site, BASE_URL, FEED_ITEMS)
    print(f"corpus N={size}: {written / 1e6:.1f} MB of plain text generated in "
          f"{time.perf_counter() - started:.1f} s (seed {seed})", flush=True)
    return fp_site, pel_site


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--no-pelican", action="store_true", help="skip the Pelican baseline")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=200, 1 run")
    parser.add_argument("--seed", type=int, default=20240305, help="corpus seed")
    parser.add_argument("--python", default=default_python(), help="interpreter for feedpub")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile feedpub's cold build and no-change rebuild "
                             "(cProfile, tracemalloc) at the largest size")
    parser.add_argument("--profile-only", action="store_true",
                        help="make the corpus of the largest size and only profile feedpub")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to "
                             "fall below 1.0")
    parser.add_argument("--json", type=Path, default=WORK / "build-results.json",
                        help="where to write all raw figures")
    return parser.parse_args(argv)


def lock_work_dir() -> int | None:
    """Hold bench/.work/ for this run: two runs at once would share sites and CPUs."""
    WORK.mkdir(parents=True, exist_ok=True)
    fd = os.open(WORK / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def wait_idle(limit: float) -> None:
    """Other work on the machine slows every figure; wait (bounded) for it to settle."""
    deadline = time.monotonic() + limit
    while os.getloadavg()[0] >= 1.0 and time.monotonic() < deadline:
        print(f"load average {os.getloadavg()[0]:.2f}; waiting for the machine to be idle",
              flush=True)
        time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))


def profile_only(args: argparse.Namespace, size: int) -> int:
    site, _ = prepare_sites(size, args.seed, with_pelican=False)
    articles = sorted((site / "articles").glob("*.txt"))
    _profile.profile_build(args.python, site, WORK, lambda: clean_feedpub(site),
                           lambda: edit_article(articles, 0))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [200] if args.quick else [int(x) for x in args.sizes.split(",") if x.strip()]
    runs = 1 if args.quick else max(1, args.runs)
    if lock_work_dir() is None:
        print(f"another build benchmark is using {WORK}; run this one when it has finished",
              file=sys.stderr)
        return 2
    wait_idle(args.wait_idle)
    if args.profile_only:
        return profile_only(args, max(sizes))
    logs = WORK / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    started = time.perf_counter()
    version = subprocess.run([args.python, "-m", "feedpub", "--version"], capture_output=True,
                             text=True, cwd=REPO)  # also warms the bytecode cache
    print(f"feedpub: {version.stdout.strip() or version.stderr.strip()} ({args.python})")
    exe = None if args.no_pelican else _pelican.ensure_venv(WORK / "pelican-venv")
    if exe is not None:
        print(f"pelican: {_pelican.version(exe)} ({exe})")
    print(f"sizes {sizes}, {runs} run(s) each, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} (other work on the machine makes figures noisier)\n",
          flush=True)
    results: list[Series] = []
    for size in sizes:
        fp_site, pel_site = prepare_sites(size, args.seed, exe is not None)
        settle()
        results += bench_size(size, fp_site, args.python,
                              None if exe is None else (exe, pel_site), runs, logs)
    empty_trash()
    report(results, sizes)
    save(results, args.json, {"sizes": sizes, "runs": runs, "seed": args.seed,
                              "python": args.python, "cpus": os.cpu_count(),
                              "pelican": _pelican.version(exe) if exe else None,
                              "elapsed_s": time.perf_counter() - started,
                              "load_average_end": os.getloadavg()[0]})
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.profile:
        site = WORK / f"build-{max(sizes)}" / "feedpub"
        articles = sorted((site / "articles").glob("*.txt"))
        _profile.profile_build(args.python, site, WORK, lambda: clean_feedpub(site),
                               lambda: edit_article(articles, 99))
        empty_trash()
    print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
