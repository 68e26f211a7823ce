"""Edit benchmark: what one changed article costs on a large site, from the CLI and in the daemon.

Usage (from the repository root):

    .venv/bin/python bench/edit.py                    # 10,000 articles, 5 runs, against main
    .venv/bin/python bench/edit.py --size 1000 --runs 3 --no-baseline
    .venv/bin/python bench/edit.py --quick            # 300 articles, 1 run: a smoke test

CLI: the wall time of `feedpub build` (a subprocess, `_measure.measure`) with nothing changed,
after editing one article, after adding one (the newest), after adding one dated in the past
and after deleting one, with the number of files that changed under public/.

Daemon: `feedpub run` on the built site; one article file is edited at a time, and the script
reports (a) the rebuild time the daemon logs (`event=build ... ms=`) and (b) saved -> served:
from the write until its page, polled over HTTP, shows the new text. Both with the default
`[schedule] debounce_ms` (500) and with 50.

The baseline is the same code at another commit (default: b9747d3, main before the in-memory
site), checked out with `git worktree` under bench/.work/ and run from its src/ with this
venv's packages; each run measures it and this tree in turn, so both see the same load.
The script prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _corpus  # noqa: E402
from _measure import Sample, changed, measure, snapshot  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work" / "edit"
BASELINE = "b9747d3"
POLL_S = 0.02  # how often the page is fetched while waiting for the edit to be served
CONFIG = """\
[site]
title = "Bench"
base_url = "https://bench.example.org/"
"""


@dataclass(frozen=True)
class Tree:
    """One version of feedpub to measure: its src/ folder and its own site."""

    name: str
    src: Path
    site: Path

    def env(self) -> dict[str, str]:
        # Compiled modules are kept (as an installed package has them): a process that
        # compiles every module it imports measures the compiler, not the build.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {**env, "PYTHONPATH": str(self.src), "PYTHONUNBUFFERED": "1"}

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "feedpub", "--config", str(self.site / "config.toml"),
                *args]


def baseline_src(commit: str) -> Path:
    """src/ of a `git worktree` of `commit` under bench/.work/ (made on first use)."""
    folder = HERE / ".work" / f"base-{commit}"
    if not folder.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder),
                        commit], check=True, capture_output=True)
    return folder / "src"


def make_site(tree: Tree, articles: Path) -> None:
    if tree.site.exists():
        shutil.rmtree(tree.site)
    tree.site.mkdir(parents=True)
    (tree.site / "config.toml").write_text(CONFIG, encoding="utf-8")
    shutil.copytree(articles, tree.site / "articles")


def run(tree: Tree, *args: str) -> str:
    done = subprocess.run(tree.cmd(*args), env=tree.env(), capture_output=True, text=True,
                          cwd=tree.site, check=True)
    return done.stdout


class Changes:
    """The article changes of the benchmark, the same for every tree."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.count = 0

    def edit(self, site: Path, run: int) -> str:
        """Append a word to one article (another one each run); returns the word."""
        name = self.names[(run * 997 + 123) % len(self.names)]
        word = f"edited{run}x{self.count}"
        self.count += 1
        path = site / "articles" / name
        path.write_text(path.read_text(encoding="utf-8") + f"\n{word}\n", encoding="utf-8")
        return word

    def page(self, run: int) -> str:
        name = self.names[(run * 997 + 123) % len(self.names)]
        return "posts/" + name.rsplit(".", 1)[0].lower() + ".html"

    @staticmethod
    def add(site: Path, run: int, day: str) -> None:
        (site / "articles" / f"{day}-bench-added-{run}.txt").write_text(
            f"date {day} Added For The Benchmark {run}\n\nTags: city\n\nA new article.\n",
            encoding="utf-8")

    @staticmethod
    def delete(site: Path, run: int) -> None:
        for path in (site / "articles").glob(f"*-bench-added-{run}.txt"):
            path.unlink()


@dataclass
class Figures:
    walls: list[float]
    written: list[int]

    def line(self, label: str, base: Figures | None) -> str:
        med = statistics.median(self.walls)
        text = (f"  {label:28} {med * 1000:8.0f} ms  (min {min(self.walls) * 1000:.0f}, "
                f"max {max(self.walls) * 1000:.0f})  files changed {sorted(set(self.written))}")
        if base is not None:
            text += f"  ratio to baseline {med / statistics.median(base.walls):.2f}"
        return text


def measured(tree: Tree, log: Path) -> Sample:
    """`measure` of `feedpub build` in `tree` (the wrapper passes its environment on)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree.src)
    try:
        return measure(tree.cmd("build"), tree.site, log)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved


def cli(trees: list[Tree], changes: Changes, runs: int, logs: Path,
        ) -> dict[str, dict[str, Figures]]:
    scenarios: list[tuple[str, Callable[[Path, int], object]]] = [
        ("no change", lambda site, i: None),
        ("edit one", changes.edit),
        ("add one (newest)", lambda site, i: changes.add(site, i, yesterday)),
        ("add one (dated 2013)", lambda site, i: changes.add(site, i + 100, "2013-05-05")),
        ("delete one", lambda site, i: (changes.delete(site, i), changes.delete(site, i + 100))),
    ]
    out: dict[str, dict[str, Figures]] = {t.name: {} for t in trees}
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    for i in range(runs):
        for label, change in scenarios:
            for tree in trees:
                change(tree.site, i)
                before = snapshot(tree.site / "public")
                os.sync()
                name = re.sub(r"\W+", "_", label)
                sample = measured(tree, logs / f"{tree.name}-{name}-{i}.log")
                count = changed(before, snapshot(tree.site / "public"))
                figures = out[tree.name].setdefault(label, Figures([], []))
                figures.walls.append(sample.wall)
                figures.written.append(count)
                print(f"  run {i + 1} {tree.name:9} {label:22} {sample.wall * 1000:7.0f} ms "
                      f"rc={sample.rc} files changed {count}", flush=True)
    return out


class Daemon:
    """`feedpub run --port 0` on a tree's site; its log lines are collected as they come."""

    def __init__(self, tree: Tree, log: Path) -> None:
        self.log = log
        self.handle = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(tree.cmd("run", "--host", "127.0.0.1", "--port", "0"),
                                     env=tree.env(), cwd=tree.site, stdout=self.handle,
                                     stderr=subprocess.STDOUT)
        self.url = self.wait(r"event=listening url=(\S+)", 120).group(1)
        self.wait(r"event=build reason=startup", 600)

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def wait(self, pattern: str, timeout: float, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines()[after:]:
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{pattern!r} not logged in {self.log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


def served(url: str, word: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if word.encode() in response.read():
                    return True
        except urllib.error.URLError:
            pass
        time.sleep(POLL_S)
    return False


def daemon(trees: list[Tree], changes: Changes, runs: int, debounce: int | None,
           logs: Path) -> dict[str, tuple[Figures, Figures]]:
    """Per tree: (logged rebuild times, saved -> served times)."""
    label = "default" if debounce is None else str(debounce)
    daemons = {}
    for tree in trees:
        text = CONFIG + (f"\n[schedule]\ndebounce_ms = {debounce}\n" if debounce else "")
        (tree.site / "config.toml").write_text(text, encoding="utf-8")
        daemons[tree.name] = Daemon(tree, logs / f"daemon-{tree.name}-{label}.log")
    out = {tree.name: (Figures([], []), Figures([], [])) for tree in trees}
    try:
        time.sleep(2)  # let the watchers start
        for i in range(runs):
            for tree in trees:
                running = daemons[tree.name]
                seen = len(running.lines())
                started = time.monotonic()
                word = changes.edit(tree.site, 1000 + i)
                ok = served(running.url + changes.page(1000 + i), word)
                took = time.monotonic() - started
                build = running.wait(r"event=build reason=articles_changed.*? written=(\d+).*? "
                                     r"ms=(\d+)", 60, after=seen)
                rebuild, written = int(build.group(2)) / 1000, int(build.group(1))
                out[tree.name][0].walls.append(rebuild)
                out[tree.name][0].written.append(written)
                out[tree.name][1].walls.append(took)
                out[tree.name][1].written.append(written)
                print(f"  run {i + 1} {tree.name:9} debounce {label:7} rebuild "
                      f"{rebuild * 1000:6.0f} ms, saved -> served {took * 1000:6.0f} ms "
                      f"({'ok' if ok else 'NOT SERVED'}), written {written}", flush=True)
                time.sleep(1)
    finally:
        for running in daemons.values():
            running.stop()
        for tree in trees:
            (tree.site / "config.toml").write_text(CONFIG, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare against")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--quick", action="store_true", help="300 articles, 1 run")
    parser.add_argument("--skip-daemon", action="store_true")
    args = parser.parse_args(argv)
    size, runs = (300, 1) if args.quick else (args.size, args.runs)
    WORK.mkdir(parents=True, exist_ok=True)
    logs = WORK / "logs"
    logs.mkdir(exist_ok=True)
    trees = [Tree("this", REPO / "src", WORK / "site-this")]
    if not args.no_baseline:
        trees.insert(0, Tree("baseline", baseline_src(args.baseline), WORK / "site-baseline"))
    corpus = WORK / f"articles-{size}"
    if not corpus.exists():
        _corpus.write_corpus(_corpus.make_corpus(size), corpus, None)
    names = sorted(p.name for p in corpus.iterdir())
    print(f"edit benchmark: {size:,} articles, {runs} run(s); load: {os.getloadavg()}")
    for tree in trees:
        make_site(tree, corpus)
        started = time.monotonic()
        run(tree, "build")
        print(f"  {tree.name}: cold build {time.monotonic() - started:.1f} s", flush=True)
    changes = Changes(names)
    results = cli(trees, changes, runs, logs)
    daemons = {}
    if not args.skip_daemon:
        for debounce in (None, 50):
            daemons[debounce] = daemon(trees, changes, runs, debounce, logs)
    print(f"\nmedians of {runs} run(s) at {size:,} articles; load after: {os.getloadavg()}")
    base_name = trees[0].name if len(trees) > 1 else None
    for tree in trees:
        print(f"{tree.name} ({tree.src}):")
        print("  CLI `feedpub build`, wall time of the process:")
        for label, figures in results[tree.name].items():
            base = results[base_name][label] if base_name and tree.name != base_name else None
            print("  " + figures.line(label, base))
        for debounce, by_tree in daemons.items():
            label = "default (500)" if debounce is None else str(debounce)
            rebuild, served_in = by_tree[tree.name]
            base_pair = by_tree[base_name] if base_name and tree.name != base_name else None
            print(f"  daemon, debounce_ms {label}:")
            print("  " + rebuild.line("rebuild (logged)", base_pair[0] if base_pair else None))
            print("  " + served_in.line("saved -> served", base_pair[1] if base_pair else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
