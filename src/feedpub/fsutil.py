"""Atomic file writes: a reader sees the old file or the new one, never half of either;
a new folder filled out of sight, then moved in whole (`fresh_folder`); and the changes of
a watched folder gathered into bursts (`bursts`, `Burst`)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_serial = itertools.count()


def _create_temp(path: str, mode: int) -> tuple[int, str]:
    """A new empty file beside `path` (its folders made if missing), opened for writing.

    The name joins the process id and a counter, which is cheaper than tempfile's random
    names: a build creates thousands. A name left by a crashed process of the same pid falls
    back to `tempfile.mkstemp`.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_serial)}.tmp")
    try:
        try:
            fd = os.open(tmp, _OPEN_FLAGS, mode)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, _OPEN_FLAGS, mode)
    except FileExistsError:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, mode)  # the exact mode, whatever the umask
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


@contextlib.contextmanager
def _replacing(tmp: str, path: str | Path) -> Iterator[None]:
    """Move `tmp` onto `path` when the block succeeds; remove `tmp` when it fails."""
    try:
        yield
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, *, mode: int = 0o644, fsync: bool = True
                ) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces `path` only when the block succeeds.

    The data goes to a temporary file beside `path`, is optionally fsynced, then moved in with
    `os.replace`; on an error the temporary file is removed and `path` is left as it was.
    """
    fd, tmp = _create_temp(os.fspath(path), mode)
    with _replacing(tmp, path), os.fdopen(fd, "wb") as handle:
        yield handle
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write(path: str | Path, data: bytes, *, mode: int = 0o644, fsync: bool = True
                 ) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then `os.replace` it in.

    `fsync=False` suits files that can be generated again (feeds, pages, caches): the write
    stays atomic for readers, only durability across an OS crash is left to the kernel.
    """
    fd, tmp = _create_temp(os.fspath(path), mode)
    with _replacing(tmp, path):
        try:
            write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


def current_umask() -> int | None:
    """This process's umask; None while other threads run. Setting it is the only way to
    read it that opens no file, and another thread creating a file meanwhile would be
    created under the wrong one."""
    if threading.active_count() != 1:
        return None
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_new(path: str, data: bytes, *, mode: int = 0o644, umask: int | None = None) -> None:
    """Create `path` (its folders made if missing) holding `data`; it must not exist yet.

    For a folder no reader sees until it is complete (`fresh_folder`): no temporary file and
    no rename, which a cold build of thousands of files would otherwise pay for each. The
    file gets exactly `mode`: when `umask` (`current_umask()`) leaves it whole, it is
    created so, else it is set after.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, _OPEN_FLAGS, mode)
    try:
        if umask is None or mode & umask:
            os.fchmod(fd, mode)  # the exact mode, whatever the umask
        write_all(fd, data)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to the file descriptor `fd` (`os.write` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def fresh_folder(target: Path) -> Iterator[Path | None]:
    """A folder to fill in place of `target` while `target` does not exist yet, else None.

    The files go into a hidden folder beside `target`, which becomes `target` with one
    rename when the block succeeds: a reader (a web server, `feedpub run`) sees no folder,
    then the whole of it, never part of it. If `target` appeared meanwhile and is not empty,
    the files are moved into it one by one (each `os.replace`, atomic per file). When the
    block fails, the hidden folder is removed. With None, write into `target` itself, each
    file atomically (`atomic_write`).
    """
    if os.path.lexists(target):
        yield None
        return
    staging = target.parent / f".{target.name}.new-{os.getpid()}-{next(_serial)}"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    try:
        yield staging
        try:
            os.rename(staging, target)  # onto nothing, or onto an empty folder made meanwhile
        except OSError:
            _move_into(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _move_into(source: Path, target: Path) -> None:
    """Move every file under `source` to the same place under `target` (replacing)."""
    for folder, _, files in os.walk(source):
        into = target / Path(folder).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(os.path.join(folder, name), into / name)


class Burst:
    """The paths changed in one burst of file events, taken once the burst is over: `quiet`
    seconds without a new change (an editor's save is often several events), or `longest`
    seconds after its first change (a folder that never stops changing is still taken up).

    Pure: the caller passes the time (`time.monotonic()`). A watcher that reports changes
    only after a short quiet step of its own passes that step as `seen_quiet`, which counts
    towards the quiet time.
    """

    def __init__(self, quiet: float, longest: float, seen_quiet: float = 0.0) -> None:
        self.rest = max(0.0, quiet - seen_quiet)  # quiet still needed after a report
        self.longest = longest
        self.paths: set[str] = set()
        self._first = self._last = 0.0

    def add(self, paths: Iterable[str], now: float) -> None:
        new = set(paths)
        if not new:
            return
        if not self.paths:
            self._first = now
        self.paths |= new
        self._last = now

    def take(self, now: float) -> set[str]:
        """The burst's paths once it is over (the next burst then starts empty); an empty
        set while it goes on, or when nothing changed."""
        if not self.paths:
            return set()
        if now - self._last < self.rest and now - self._first < self.longest:
            return set()
        paths, self.paths = self.paths, set()
        return paths


LOOK_MS = 50  # how often `bursts` looks for changes, at most


def bursts(folder: Path, quiet_ms: int, stop: threading.Event) -> Iterator[set[str]]:
    """The paths changed under `folder`, a burst at a time: `quiet_ms` after its last change,
    or at the latest four times that (at least 1.6 s) after its first; until `stop` is set.

    watchfiles reports changes once a step of its own passed without a new one. Given the
    quiet time as that step, it would notice a change up to a whole quiet time late (a save
    taken up to twice the quiet time after it); it looks every `LOOK_MS` instead, reports at
    least every other look during a stream of changes, and `Burst` waits out the rest.
    """
    import watchfiles

    quiet = max(1, quiet_ms)
    look = min(LOOK_MS, quiet)
    longest = max(1600, 4 * quiet)
    burst = Burst(quiet / 1000, longest / 1000, seen_quiet=look / 1000)
    waits = quiet > look  # else watchfiles' own report comes after the whole quiet time
    for changes in watchfiles.watch(folder, step=look, debounce=look if waits else longest,
                                    rust_timeout=look if waits else 0,
                                    yield_on_timeout=waits, stop_event=stop,
                                    raise_interrupt=False):
        now = time.monotonic()
        burst.add((path for _, path in changes), now)
        if paths := burst.take(now):
            yield paths
