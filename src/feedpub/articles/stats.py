"""The (mtime, size) of many files at once, for the scan of the articles folder.

Every build stats every article file: how else would it see which ones changed? On a site of
10,000 articles that is 10,000 system calls, about 3 µs each plus the Python around them:
half of what a build after one edit spends once its modules are loaded. With more files than
`_SPLIT`, a forked child stats the second half while this process stats the first, and sends
its figures back through a pipe as packed integers. Forking is left out where it is not safe
(more than one thread running: a lock another thread holds would stay locked in the child)
or not available; then this process stats them all.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Sequence

Stat = tuple[int, int]
MISSING: Stat = (-1, -1)  # a file that cannot be stat'ed (reading it says why)
_SPLIT = 4000  # fewer files than this are stat'ed here: a fork costs about a millisecond


def stat_files(paths: Sequence[str]) -> list[Stat]:
    """(st_mtime_ns, st_size) of each of `paths` (links followed), MISSING for a file that
    cannot be stat'ed, in the order given."""
    if len(paths) < _SPLIT or not hasattr(os, "fork") or threading.active_count() > 1:
        return _stats(paths)
    half = len(paths) // 2
    theirs = paths[half:]
    reader, writer = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        return _stats(paths)
    if pid == 0:  # pragma: no cover - the child: its figures into the pipe, then exit
        code = 1
        try:
            os.close(reader)
            data = array("q", [n for stat in _stats(theirs) for n in stat]).tobytes()
            with os.fdopen(writer, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    try:
        mine = _stats(paths[:half])
        with os.fdopen(reader, "rb") as handle:
            data = handle.read()
        reader = -1
    finally:
        if reader >= 0:
            os.close(reader)
        _, status = os.waitpid(pid, 0)
    numbers = array("q")
    if os.waitstatus_to_exitcode(status) != 0 or len(data) != 2 * numbers.itemsize * len(theirs):
        return [*mine, *_stats(theirs)]  # the child failed: do its part here
    numbers.frombytes(data)
    return [*mine, *zip(numbers[::2], numbers[1::2], strict=True)]


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

