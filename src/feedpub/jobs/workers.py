"""Share the chunks of a large build among forked worker processes.

Parsing and rendering thousands of files is CPU work that one Python process does on one
core. `map_chunks` runs `work(i)` for every chunk `i` in this process and in children made
with `os.fork()`. A child starts with this process's memory (articles, plans, templates), so
nothing but its results crosses back, pickled to a temporary file as each chunk is done,
where this process reads them between its own chunks. The chunk numbers wait in a shared
pipe and each process takes the next one when it has finished the last: the work is balanced
however the chunks' costs vary and whichever process the machine slows down.

Forking is safe only while this process runs a single thread (a lock held by another thread
would stay locked in the child forever), so with more threads, or without `os.fork`, every
chunk runs here, one after another. The daemon, which has threads, builds that way.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, NoReturn, TypeVar, cast

from ..errors import FeedpubError

R = TypeVar("R")
_ID = 4  # bytes per chunk number in the queue; reads of this size from a pipe are atomic
# The queue is written before any worker starts, so it must fit a pipe's buffer (64 KiB on
# Linux, less elsewhere): 1,024 chunk numbers take 4 KiB.
MAX_CHUNKS = 1024


class WorkerError(FeedpubError):
    """A worker process ended without a result (killed, out of memory, crashed)."""


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """True when chunks may run in forked children: POSIX, and only one thread running."""
    return hasattr(os, "fork") and threading.active_count() == 1


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a one-shot batch job.

    A large build allocates about a million objects that live until it ends and makes
    almost no reference cycles, so every full collection walks them all for nothing (about
    4% of a build's time). Pausing is process-wide: with other threads running (the daemon,
    whose web server keeps allocating), the collector is left alone.
    """
    if not gc.isenabled() or threading.active_count() > 1:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def split_by_cost(costs: Sequence[int], parts: int) -> list[range]:
    """Cut positions 0..len(costs) into at most `parts` consecutive ranges of about equal total
    cost. Consecutive, so that neighbours which share work (the formats of one archive page)
    stay in one chunk."""
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


def map_chunks(work: Callable[[int], R], count: int, workers: int,
               done: Callable[[int], None] | None = None,
               first: Callable[[], None] | None = None,
               receive: Callable[[R], R] | None = None,
               order: Sequence[int] | None = None) -> list[R]:
    """[work(0), ..., work(count - 1)], run by up to `workers` processes at once.

    The chunks are handed out in `order` (default: 0 to count - 1), one at a time to the
    process that asks next; give the costliest first, so that no process is left with a
    long one at the end while the others wait.

    `done(n)` is called here as chunks finish, with about how many have. `first()` is called
    here before this process takes any chunk, while the children already work: other work of
    the job that does not depend on the chunks, balanced by the shared queue. A result that a
    child sends is replaced by `receive(result)`, called here as the result arrives (between
    this process's own chunks, so that what it does is shared out too). An exception raised
    by `work` is raised here; a child that dies without a result raises WorkerError. Children
    never outlive this call.
    """
    if count > MAX_CHUNKS:
        raise ValueError(f"at most {MAX_CHUNKS} chunks, not {count}")
    workers = min(workers, count)
    if workers <= 1 or not can_fork():
        if first is not None:
            first()
        here: dict[int, R] = {}
        for mine, index in enumerate(range(count) if order is None else order, start=1):
            here[index] = work(index)
            if done is not None:
                done(mine)
        return [here[index] for index in range(count)]
    queue, feed = os.pipe()
    children: list[_Child] = []
    files = contextlib.ExitStack()
    # Objects that exist now are left out of garbage collection until the chunks are done:
    # a collection in a child would write to every object's header and so copy nearly every
    # page it shares with this process (and here it would scan them all again for nothing).
    gc.freeze()
    try:
        with os.fdopen(feed, "wb") as writer:
            writer.write(b"".join(i.to_bytes(_ID, "little")
                                  for i in (range(count) if order is None else order)))
        for _ in range(workers - 1):
            # Each child writes its results to a file as it goes, so neither it nor this
            # process ever holds all of them in one piece.
            sink = cast(BinaryIO, files.enter_context(tempfile.TemporaryFile()))  # noqa: SIM115
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                _serve(((i, work(i)) for i in _take(queue)), sink)
            children.append(_Child(pid, sink.fileno()))
        if first is not None:
            first()
        found: dict[int, R] = {}
        for mine, index in enumerate(_take(queue), start=1):
            found[index] = work(index)
            for child in children:
                _receive(child, found, receive)
            if done is not None:
                done(min(mine * workers, count))
        while children:
            child = children[0]
            _wait(child)
            _receive(child, found, receive)
            if not child.ended:
                raise WorkerError(f"a build worker (pid {child.pid}) ended without all its "
                                  "results; run the build again, or with --jobs 1")
            children.pop(0)
        return [found[index] for index in range(count)]
    finally:
        os.close(queue)
        for child in children:  # only after an error: stop and reap what is left
            if not child.reaped:
                _stop(child.pid)
        files.close()
        gc.unfreeze()


class _Child:
    """A worker process and how far this process has read the results it wrote."""

    def __init__(self, pid: int, results: int) -> None:
        self.pid = pid
        self.results = results  # the file descriptor of its results file
        self.read = 0  # bytes of it taken so far
        self.ended = False  # its end record was read
        self.reaped = False


def _take(queue: int) -> Iterator[int]:
    """The next chunk numbers from the shared queue, until it is empty."""
    while data := os.read(queue, _ID):
        yield int.from_bytes(data, "little")


def _stop(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


_LENGTH = 8  # bytes of the length that precedes each record in a results file


def _serve(items: Iterator[tuple[int, object]], out: BinaryIO) -> NoReturn:  # pragma: no cover
    """In the child: write ("item", (i, result)) records to `out`, each as soon as it is
    made, then ("end", None), or ("error", exception); exit without cleanup (no atexit
    handlers, no flushing of buffers the parent also holds)."""
    code = 0
    try:
        try:
            for item in items:
                _record(out, ("item", item))
            _record(out, ("end", None))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            try:
                record = pickle.dumps(("error", exc), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                record = pickle.dumps(("error", WorkerError(f"{type(exc).__name__}: {exc}")))
            out.write(len(record).to_bytes(_LENGTH, "little") + record)
            out.flush()
    except BaseException:  # noqa: BLE001 - the parent reports a child without a result
        code = 1
    finally:
        os._exit(code)


def _record(out: BinaryIO, value: object) -> None:  # pragma: no cover - in the child
    """Write `value` pickled after its length, and flush it: the parent reads a record once
    the file holds all of it."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(data).to_bytes(_LENGTH, "little"))
    out.write(data)
    out.flush()


def _receive(child: _Child, found: dict[int, R], receive: Callable[[R], R] | None) -> None:
    """Take the records `child` has written in full so far: its results go into `found`
    (through `receive`), an error it sent is raised."""
    fd = child.results
    size = os.fstat(fd).st_size
    while not child.ended and child.read + _LENGTH <= size:
        length = int.from_bytes(os.pread(fd, _LENGTH, child.read), "little")
        if child.read + _LENGTH + length > size:
            return  # still being written
        data = os.pread(fd, length, child.read + _LENGTH)
        if len(data) != length:
            raise WorkerError(f"a build worker (pid {child.pid}) left a damaged result; "
                              "run the build again, or with --jobs 1")
        child.read += _LENGTH + length
        kind, value = pickle.loads(data)
        if kind == "end":
            child.ended = True
        elif kind == "error":
            raise value
        else:
            index, result = cast(tuple[int, R], value)
            found[index] = result if receive is None else receive(result)


def _wait(child: _Child) -> None:
    """Wait for `child` to exit; WorkerError unless it exited normally."""
    try:
        _, status = os.waitpid(child.pid, 0)
    except BaseException:
        _stop(child.pid)
        raise
    finally:
        child.reaped = True
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise WorkerError(f"a build worker (pid {child.pid}) {how} before sending its "
                          "result; run the build again, or with --jobs 1 to use one process")
