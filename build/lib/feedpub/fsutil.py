"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Iterator
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
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
