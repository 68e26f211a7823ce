"""Run the parts of a large build at the same time, one forked process per part.

Parsing and rendering thousands of files is CPU work that one Python process does on one
core. `run_parts` calls the first part here and each other part in a child made with
`os.fork()`: the child starts with this process's memory (articles, plans, templates), so
nothing but its result crosses back, pickled through a pipe.

Forking is safe only while this process runs a single thread (a lock held by another thread
would stay locked in the child forever), so with more threads, or without `os.fork`, every
part runs here, one after another. The daemon, which has threads, builds that way.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar, cast

from ..errors import FeedpubError

R = TypeVar("R")


class WorkerError(FeedpubError):
    """A worker process ended without a result (killed, out of memory, crashed)."""


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """True when parts may run in forked children: POSIX, and only one thread running."""
    return hasattr(os, "fork") and threading.active_count() == 1


def split_by_cost(costs: Sequence[int], parts: int) -> list[range]:
    """Cut positions 0..len(costs) into at most `parts` consecutive ranges of about equal total
    cost. Consecutive, so that neighbours which share work (the formats of one archive page)
    stay in one part."""
    total = sum(costs)
    if parts <= 1 or not costs or total <= 0:
        return [range(len(costs))] if costs else []
    ranges: list[range] = []
    start, running = 0, 0
    for index, cost in enumerate(costs):
        running += cost
        if running * parts >= total * (len(ranges) + 1) and len(ranges) < parts - 1:
            ranges.append(range(start, index + 1))
            start = index + 1
    if start < len(costs):
        ranges.append(range(start, len(costs)))
    return ranges


def run_parts(parts: Sequence[Callable[[], R]]) -> list[R]:
    """Call every part at the same time (see the module docstring); results in part order.

    An exception raised by a part is raised here; a child that dies without a result raises
    WorkerError. Children never outlive this call.
    """
    if len(parts) <= 1 or not can_fork():
        return [part() for part in parts]
    children: list[tuple[int, int]] = []
    try:
        for part in parts[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                os.close(read_fd)
                for _, other in children:
                    os.close(other)
                _serve(part, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        results = [parts[0]()]
        while children:
            results.append(cast(R, _collect(*children.pop(0))))
        return results
    finally:
        for pid, read_fd in children:  # only after an error: stop and reap what is left
            with contextlib.suppress(OSError):
                os.close(read_fd)
            _stop(pid)


def _stop(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def _serve(part: Callable[[], object], write_fd: int) -> NoReturn:  # pragma: no cover - child
    """In the child: run the part, send (ok, value) to the parent, exit without cleanup
    (no atexit handlers, no flushing of buffers the parent also holds)."""
    code = 0
    try:
        try:
            payload = pickle.dumps((True, part()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            try:
                payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                payload = pickle.dumps((False, WorkerError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    except BaseException:  # noqa: BLE001 - the parent reports a child without a result
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, read_fd: int) -> object:
    """The result the child `pid` sends through `read_fd`, after it has exited."""
    try:
        with os.fdopen(read_fd, "rb") as source:
            data = source.read()
    except BaseException:
        _stop(pid)
        raise
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not data:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise WorkerError(f"a build worker (pid {pid}) {how} before sending its result; "
                          "run the build again, or with --jobs 1 to use one process")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value
