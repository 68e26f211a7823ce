"""The (mtime, size) of many files at once, for the scan of the articles folder.

Every build stats every article file: how else would it see which ones changed? On a site of
10,000 articles that is 10,000 system calls, about 3 µs each plus the Python around them:
about as much as a build after one edit spends on everything else once its modules are
loaded. Two ways to spend it beside other work, on another core:

- `Pending(work)` runs `work()` in a forked child while this process goes on (a build loads
  its manifest and the modules it will need meanwhile), and reads the pickled result back
  when asked for it;
- `stat_files`, with more files than `_SPLIT`, has a forked child stat the second half while
  this process stats the first.

Forking is left out where it is not safe (more than one thread running: a lock another
thread holds would stay locked in the child) or not available, and a child that fails is
made up for: this process then does the work itself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, TypeVar, cast

Stat = tuple[int, int]
MISSING: Stat = (-1, -1)  # a file that cannot be stat'ed (reading it says why)
T = TypeVar("T")
_SPLIT = 4000  # fewer files than this are stat'ed here: a fork costs about a millisecond


def may_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


class Pending(Generic[T]):
    """`work()` (its result picklable) run by a forked child while this process goes on;
    run here instead, when the result is asked for, without `fork` or where this process
    may not fork."""

    def __init__(self, work: Callable[[], T], *, fork: bool = True) -> None:
        self._work = work
        self._pid = 0
        self._fd = -1
        if not fork or not may_fork():
            return
        reader, writer = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(reader)
            os.close(writer)
            return
        if pid == 0:  # pragma: no cover - the child: the pickled result, then exit
            code = 1
            try:
                os.close(reader)
                data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(writer, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(writer)
        self._pid, self._fd = pid, reader

    def ready(self) -> bool:
        """Whether `result` would not wait (for long): the child has begun to send it."""
        if self._fd < 0:
            return True
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable)

    def result(self) -> T:
        if self._fd < 0:
            return self._work()
        try:
            with os.fdopen(self._fd, "rb") as handle:
                data = handle.read()
        finally:
            self._fd = -1
            _, status = os.waitpid(self._pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            with contextlib.suppress(Exception):
                return cast(T, pickle.loads(data))
        return self._work()  # the child failed: here, where its error (if any) is raised

    def __enter__(self) -> Pending[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        """A child whose result was not taken (an error came first) is stopped and reaped."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self._pid, 0)


def stat_files(paths: Sequence[str], *, split: bool = True) -> list[Stat]:
    """(st_mtime_ns, st_size) of each of `paths` (links followed), MISSING for a file that
    cannot be stat'ed, in the order given. `split`: half of them in a forked child, when
    there are many (in a process that has another core to itself)."""
    half = len(paths) // 2
    with Pending(partial(_stats, paths[half:]),
                 fork=split and len(paths) >= _SPLIT) as theirs:
        mine = _stats(paths[:half])
        return [*mine, *theirs.result()]


def _stats(paths: Sequence[str]) -> list[Stat]:
    found: list[Stat] = []
    stat = os.stat
    for path in paths:
        try:
            info = stat(path)
        except OSError:
            found.append(MISSING)
            continue
        found.append((info.st_mtime_ns, info.st_size))
    return found

