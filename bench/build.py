"""Build benchmark: `feedpub build` against Pelican on the same synthetic articles.

Usage (from the repository root):

    .venv/bin/python bench/build.py                  # N = 1,000 and 10,000, 5 runs each
    .venv/bin/python bench/build.py --quick          # N = 200, 1 run: a smoke test
    .venv/bin/python bench/build.py --sizes 10000 --runs 5 --no-pelican --profile
    .venv/bin/python bench/build.py --sizes 10000 --old bench/.work/old/.venv/bin/python

Every figure is the wall time of a whole CLI process started as a subprocess, and its peak
memory. Cold builds, interleaved run by run: feedpub's full site and its feeds only
(`[site] pages = false`), Pelican's full site and its feeds only (in its own venv under
bench/.work/; see `_pelican`), and optionally an older feedpub (`--old`). Then feedpub's
rebuilds: nothing changed, a single article edited, a single article only touched. The
script prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
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
    fresh_memory,
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


FEEDS_ONLY = "pages = false\n"
# A second feedpub site over the same articles (paths are relative to its config file).
SHARED_ARTICLES = '\n[paths]\narticles = "../feedpub/articles"\n'


def feedpub_cmd(python: str, site: Path) -> list[str]:
    return [python, "-m", "feedpub", "--config", str(site / "config.toml"), "build"]


def clean_feedpub(site: Path) -> None:
    """A fresh site: only config.toml and articles/ stay (the rest is set aside, not deleted:
    see `_measure.set_aside`)."""
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


def run_jobs(size: int, jobs: list[Job], runs: int, logs: Path,
             warm: list[Path] | None = None) -> list[Series]:
    """Measure `runs` runs of each job, interleaved (run 1 of each, then run 2, ...).

    Interleaving spreads any change in background load evenly over the tools compared.
    `before_each(i)` is not measured, and the file system is synced after it: deleting the
    last run's output leaves the kernel work (journal, discard) that would otherwise land in
    the measured run. With `warm` (`--fresh-memory`), the kernel's caches are dropped and the
    files under those folders read back before each run (`_measure.fresh_memory`). A job
    stops at its first failed run.
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
            if warm is not None and not fresh_memory(warm, NOT_WARMED):
                print("  --fresh-memory: cannot drop the kernel's caches (not root); "
                      "measuring without", flush=True)
                warm = None
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


def _describe(folder: Path, feeds: list[Path], size: int, pages: bool) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    html = sum(1 for p in files if p.suffix == ".html")
    posts = len(list((folder / "posts").glob("*.html"))) if (folder / "posts").exists() else 0
    listed = ", ".join(entries(p) for p in sorted(feeds))
    text = (f"{len(files)} files, {total / 1e6:.1f} MB, {html} .html of which {posts} "
            f"posts/*.html; entries: {listed}")
    if posts != (size if pages else 0):
        text += f"  (WARNING: expected {size if pages else 0} article pages)"
    return text


def describe_feedpub_output(public: Path, size: int, pages: bool = True) -> str:
    if not public.exists():
        return "no public/ folder"
    feeds = [p for p in public.iterdir() if p.suffix in (".xml", ".json") and p.is_file()]
    archive = sorted((public / "archive").glob("*.xml")) if (public / "archive").exists() else []
    text = _describe(public, feeds, size, pages)
    if archive:
        total = sum(int(entries(p).rsplit(" ", 1)[1]) for p in archive
                    if entries(p).rsplit(" ", 1)[1].isdigit())
        text += f"; RSS archive pages: {len(archive)} files, {total} entries"
    return text


def describe_pelican_output(output: Path, size: int, pages: bool = True) -> str:
    if not output.exists():
        return "no output/ folder"
    feeds = sorted((output / "feeds").glob("*"))
    return _describe(output, feeds, size, pages)


@dataclasses.dataclass(frozen=True)
class Sites:
    """The folders of one corpus size: feedpub's (full, feeds only, older version) and
    Pelican's (one per mode, sharing `pelican_content`)."""

    base: Path

    @property
    def feedpub(self) -> Path:
        return self.base / "feedpub"

    @property
    def feeds_only(self) -> Path:
        return self.base / "feedpub-feeds"

    @property
    def old(self) -> Path:
        return self.base / "feedpub-old"

    @property
    def pelican_content(self) -> Path:
        return self.base / "pelican-content"

    def pelican(self, mode: str) -> Path:
        return self.base / f"pelican-{mode}"


def _clean_pelican(folder: Path, _: int) -> None:
    _pelican.clean(folder)


def cold_jobs(sites: Sites, python: str, pelican: Path | None, old: str | None) -> list[Job]:
    """Every cold build of one size, in the order they are interleaved."""
    jobs = [Job("feedpub", "cold build", feedpub_cmd(python, sites.feedpub), sites.feedpub,
                lambda i: clean_feedpub(sites.feedpub)),
            Job("feedpub", "cold, feeds only", feedpub_cmd(python, sites.feeds_only),
                sites.feeds_only, lambda i: clean_feedpub(sites.feeds_only))]
    if pelican is not None:
        for mode, scenario in (("full", "cold build"), ("feeds", "cold, feeds only")):
            folder = sites.pelican(mode)
            jobs.append(Job("pelican", scenario, _pelican.command(pelican, sites.pelican_content),
                            folder, functools.partial(_clean_pelican, folder)))
    if old is not None:
        jobs.append(Job("old", "cold build", feedpub_cmd(old, sites.old), sites.old,
                        lambda i: clean_feedpub(sites.old)))
    return jobs


def describe(job: Job, size: int) -> str:
    if job.tool == "pelican":
        return describe_pelican_output(job.cwd / "output", size,
                                       pages=job.scenario == "cold build")
    return describe_feedpub_output(job.cwd / "public", size, pages=job.scenario == "cold build")


def warm_folders(sites: Sites, python: str, pelican: Path | None, old: str | None,
                 ) -> list[Path]:
    """What the cold builds read: the interpreters' libraries and environments, feedpub's
    source, the articles."""
    folders = [Path(sysconfig.get_paths()["stdlib"]), REPO / "src", REPO / "templates",
               sites.feedpub / "articles", sites.pelican_content]
    for exe in (python, str(pelican) if pelican else None, old):
        if exe:  # a venv's bin/python: the venv (lib/, and the links to the interpreter)
            folders.append(Path(os.path.abspath(exe)).parent.parent)
    return [folder for folder in dict.fromkeys(folders) if folder.is_dir()]


# Not read back before a run: the base interpreter's own packages, which no tool's
# environment imports (see `_measure.fresh_memory`).
NOT_WARMED = (Path(sysconfig.get_paths()["stdlib"]) / "site-packages",)


def bench_size(size: int, sites: Sites, python: str, pelican: Path | None, old: str | None,
               runs: int, logs: Path, fresh: bool = False) -> list[Series]:
    """Cold builds (every tool and mode interleaved), then feedpub's rebuilds."""
    site = sites.feedpub
    cmd = feedpub_cmd(python, site)
    public = site / "public"
    jobs = cold_jobs(sites, python, pelican, old)
    cold = run_jobs(size, jobs, runs, logs,
                    warm_folders(sites, python, pelican, old) if fresh else None)
    for k, job in enumerate(jobs):
        written = describe(job, size)
        print(f"  {job.tool} {job.scenario} output: {written}", flush=True)
        cold[k] = dataclasses.replace(cold[k], note=f"wrote {written}")
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


def prepare_sites(size: int, seed: int, with_pelican: bool, with_old: bool = False) -> Sites:
    """Write the corpus once for feedpub and once for Pelican, and every tool's site folder."""
    sites = Sites(WORK / f"build-{size}")
    set_aside(sites.base)
    sites.feedpub.mkdir(parents=True)
    (sites.feedpub / "config.toml").write_text(CONFIG, encoding="utf-8")
    sites.feeds_only.mkdir()
    (sites.feeds_only / "config.toml").write_text(CONFIG + FEEDS_ONLY + SHARED_ARTICLES,
                                                  encoding="utf-8")
    if with_old:
        sites.old.mkdir()
        (sites.old / "config.toml").write_text(CONFIG + SHARED_ARTICLES, encoding="utf-8")
    started = time.perf_counter()
    corpus = _corpus.make_corpus(size, seed)
    written = _corpus.write_corpus(corpus, sites.feedpub / "articles",
                                   sites.pelican_content if with_pelican else None)
    if with_pelican:
        for mode in _pelican.MODES:
            _pelican.write_settings(sites.pelican(mode), BASE_URL, mode)
    wide = sum(1 for a in corpus if _corpus.beyond_latin1(a))
    print(f"corpus N={size}: {written / 1e6:.1f} MB of plain text generated in "
          f"{time.perf_counter() - started:.1f} s (seed {seed}); {wide / size:.0%} of the "
          "articles carry text beyond Latin-1 (emoji, CJK, Arabic, ...)", flush=True)
    return sites


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario (median)")
    parser.add_argument("--no-pelican", action="store_true", help="skip the Pelican baseline")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=200, 1 run")
    parser.add_argument("--seed", type=int, default=20240305, help="corpus seed")
    parser.add_argument("--python", default=default_python(), help="interpreter for feedpub")
    parser.add_argument("--old", metavar="PYTHON",
                        help="also time the cold build of another feedpub installed for this "
                             "interpreter (e.g. an older commit's venv), interleaved")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile feedpub's cold build and no-change rebuild "
                             "(cProfile, tracemalloc) at the largest size")
    parser.add_argument("--profile-only", action="store_true",
                        help="make the corpus of the largest size and only profile feedpub")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to "
                             "fall below 1.0")
    parser.add_argument("--fresh-memory", action="store_true",
                        help="before each cold run, drop the kernel's caches and read the "
                             "tools' libraries and the articles back in (root only): every "
                             "run starts from the same memory state")
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
    site = prepare_sites(size, args.seed, with_pelican=False).feedpub
    articles = sorted((site / "articles").glob("*.txt"))
    _profile.profile_build(args.python, site, WORK, lambda: clean_feedpub(site),
                           lambda: edit_article(articles, 0))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Compiled modules are kept, as an installed package (and Pelican's venv) has them: a
    # process that compiles every module it imports measures the compiler, not the build.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.old:  # absolute, but not resolved: a venv's python is a symbolic link
        args.old = os.path.abspath(args.old)
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
    if args.old:
        old = subprocess.run([args.old, "-m", "feedpub", "--version"], capture_output=True,
                             text=True, cwd=REPO)
        print(f"old feedpub: {old.stdout.strip() or old.stderr.strip()} ({args.old})")
    print("before each cold run the previous output is moved aside (renamed into "
          f"{WORK / 'trash'}), not deleted; the trash is emptied after the measured runs")
    if args.fresh_memory:
        print("and the kernel's caches are dropped, then the tools' libraries and the articles "
              "read back in (--fresh-memory)")
    for size in sizes:
        sites = prepare_sites(size, args.seed, exe is not None, args.old is not None)
        settle()
        results += bench_size(size, sites, args.python, exe, args.old, runs, logs,
                              args.fresh_memory)
    empty_trash()
    report(results, sizes)
    save(results, args.json, {"sizes": sizes, "runs": runs, "seed": args.seed,
                              "fresh_memory": args.fresh_memory,
                              "python": args.python, "old": args.old,
                              "cpus": os.cpu_count(),
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
