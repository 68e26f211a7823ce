"""Run one command in a fresh wrapper process and measure its wall time and peak memory.

The wrapper starts the command and every 10 ms sums, over the command's process tree, the
RSS of each process from /proc, and its PSS (every 100 ms while there is more than one).
After it ends it reads getrusage(RUSAGE_CHILDREN).ru_maxrss, the peak RSS of the largest
single process.

The memory figure of a run is the larger of that ru_maxrss and the peak summed PSS. PSS
(proportional set size) counts a page shared by k processes as 1/k in each, so forked workers
that share their parent's pages are not counted twice, as summed RSS would count them; for a
single process PSS and RSS differ only by shared libraries. Summed RSS is kept and shown too.
A fresh wrapper per run keeps the rusage figures of one run apart from the next.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

# Where the output of earlier runs goes before a cold run. Deleting many files shortly before a
# run makes that run far slower than the build itself: ext4 skips inodes freed in the last
# minute, and in the last five minutes while their inode table block is not yet written back
# (`recently_deleted`: RECENTCY_MIN, RECENTCY_DIRTY), when it allocates new ones, which costs
# every file created then a scan of the inode tables. Measured here: cold builds of 10,000
# articles at 2.5 times their CPU time for minutes after the trash of an earlier benchmark was
# deleted. Moving the old output aside is a rename; the trash is emptied only once the
# measured runs are over (`empty_trash`), and a benchmark that starts soon after waits.
TRASH = Path(__file__).resolve().parent / ".work" / "trash"
EMPTIED = TRASH.parent / "trash-emptied"  # when the trash was last emptied (Unix time)
SETTLE_S = 310  # RECENTCY_DIRTY (300 s) and a margin
_aside = itertools.count()


def set_aside(path: Path) -> None:
    """Move `path` (a file or folder, if it exists) into TRASH."""
    if path.exists() or path.is_symlink():
        TRASH.mkdir(parents=True, exist_ok=True)
        path.rename(TRASH / f"{os.getpid()}-{next(_aside)}-{path.name}")


def empty_trash() -> None:
    """Delete the trash and note when; `settle` makes later runs wait for the file system."""
    if TRASH.exists():
        shutil.rmtree(TRASH, ignore_errors=True)
        os.sync()  # write the inode tables back: the shorter of ext4's two windows applies
        EMPTIED.write_text(f"{time.time():.0f}\n", encoding="utf-8")


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def fresh_memory(warm: Sequence[Path], skip: Collection[Path] = ()) -> bool:
    """Have the kernel drop its clean caches (file pages, directory entries, inodes), then
    read every file under the folders `warm` back in, but for those under the folders
    `skip`; False (and nothing done) where this process may not (not root).

    On the 2-core virtual machines the figures come from, writing the same 246 MB in 11,150
    new files cost 0.15 s of system time right after the caches were dropped and 0.4 to
    1.5 s once several GB of earlier outputs were cached (and more right after a mass
    deletion), so a cold build's figure swung by a second with what ran before it. Dropping
    the caches before every measured run, for every tool alike, and warming what the tools
    read (interpreters, libraries, the articles) leaves the same cache state for each; the
    cost of memory touched for the first time still varies between benchmark runs.

    Read no more than the tools read: memory the virtual machine has not used before (or
    has handed back to its host) costs a run several times the system time of memory it has,
    and the dropped caches are memory it has. Reading the base interpreter's site-packages
    as well (685 MB of packages no tool's environment imports) took that memory from the
    run measured next: a cold build of 10,000 articles then took 2.1-2.7 s instead of 1.8 s,
    1.1-2.0 s of system time instead of 0.5 s.
    """
    skipped = {os.fspath(folder) for folder in skip}
    os.sync()
    try:
        DROP_CACHES.write_text("3\n", encoding="ascii")
    except OSError:
        return False
    for root in warm:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [name for name in subfolders
                             if os.path.join(folder, name) not in skipped]
            for name in names:
                try:
                    with open(os.path.join(folder, name), "rb") as handle:
                        while handle.read(1 << 20):
                            pass
                except OSError:
                    continue
    return True


def settle() -> None:
    """Wait until files deleted by `empty_trash` (of this or an earlier benchmark) no longer
    slow down creating new ones."""
    try:
        emptied = float(EMPTIED.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    left = emptied + SETTLE_S - time.time()
    if left > 0:
        print(f"waiting {left:.0f} s: old output was deleted {SETTLE_S - left:.0f} s ago, and "
              "creating files is slow on ext4 for minutes after many were deleted", flush=True)
        time.sleep(left)


_WRAPPER = r"""
import json, os, resource, subprocess, sys, time

def tree_pids(root):
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in pids:
            continue
        pids.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return pids

def field_kb(path, name):
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0

# Reading smaps_rollup walks the page tables (about 5 ms for a 250 MB process), which would
# take CPU from the command measured: PSS is read only while the tree has more than one
# process, at most every PSS_EVERY seconds. A lone process's PSS is taken as its RSS (PSS is
# never larger), which ru_maxrss records exactly anyway.
PSS_EVERY = 0.1
cmd, cwd, out_path, limit = json.loads(sys.argv[1])
with open(out_path, "wb") as out:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    tree_peak = pss_peak = 0
    pss_at = 0.0
    while proc.poll() is None:
        pids = tree_pids(proc.pid)
        rss = sum(field_kb(f"/proc/{pid}/status", "VmRSS:") for pid in pids)
        tree_peak = max(tree_peak, rss)
        if len(pids) == 1:
            pss_peak = max(pss_peak, rss)
        elif time.perf_counter() - pss_at >= PSS_EVERY:
            pss_at = time.perf_counter()
            pss_peak = max(pss_peak, sum(field_kb(f"/proc/{pid}/smaps_rollup", "Pss:")
                                         for pid in pids))
        if time.perf_counter() - start > limit:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.01)
    wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "tree_kb": tree_peak,
                  "pss_kb": pss_peak,
                  "rc": proc.returncode, "cpu": usage.ru_utime + usage.ru_stime}))
"""


@dataclass(frozen=True)
class Sample:
    """One measured run: wall seconds, peak RSS in MB, exit status and output file."""

    wall: float
    rss_mb: float  # ru_maxrss of the largest process
    tree_mb: float  # sampled peak of the tree's summed RSS (0 if too short to sample)
    pss_mb: float  # sampled peak of the tree's summed PSS (0 if too short to sample)
    cpu: float  # user + system seconds of the whole tree
    rc: int
    log: Path

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def memory_mb(self) -> float:
        """Peak memory of the run: the largest process, or the tree's PSS if larger."""
        return max(self.rss_mb, self.pss_mb)

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def measure(cmd: list[str], cwd: Path, log: Path, limit: float = 1200.0) -> Sample:
    """Run `cmd` in `cwd` under a fresh wrapper process; output goes to `log`.

    A command still running after `limit` seconds is killed (and reported as failed).
    """
    payload = json.dumps([cmd, str(cwd), str(log), limit])
    done = subprocess.run([sys.executable, "-c", _WRAPPER, payload], capture_output=True,
                          text=True, check=True)
    data = json.loads(done.stdout)
    return Sample(wall=data["wall"], rss_mb=data["maxrss_kb"] / 1024,
                  tree_mb=data["tree_kb"] / 1024, pss_mb=data["pss_kb"] / 1024, cpu=data["cpu"],
                  rc=data["rc"], log=log)


@dataclass(frozen=True)
class Series:
    """All runs of one scenario of one tool at one corpus size."""

    size: int
    tool: str
    scenario: str
    samples: tuple[Sample, ...]
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.ok for s in self.samples)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def rss(self) -> float:
        return statistics.median(s.rss_mb for s in self.samples)

    @property
    def peak_rss(self) -> float:
        """Highest memory of any run (`Sample.memory_mb`)."""
        return max(s.memory_mb for s in self.samples)

    @property
    def peak_tree_rss(self) -> float:
        """Highest summed RSS of the process tree of any run (shared pages counted twice)."""
        return max(max(s.rss_mb, s.tree_mb) for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file under `folder`, to count what a build rewrote."""
    if not folder.exists():
        return {}
    out: dict[str, tuple[int, int]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(folder))] = (st.st_mtime_ns, st.st_size)
    return out


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    """How many files were added, rewritten or removed between two snapshots."""
    keys = before.keys() | after.keys()
    return sum(1 for k in keys if before.get(k) != after.get(k))
