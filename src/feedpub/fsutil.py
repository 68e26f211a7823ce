"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_open(path: Path, *, mode: int = 0o644, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces `path` only when the block succeeds.

    The data goes to a temporary file beside `path`, is optionally fsynced, then moved in with
    `os.replace`; on an error the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then `os.replace` it in.

    `fsync=False` suits files that can be generated again (feeds, pages, caches): the write
    stays atomic for readers, only durability across an OS crash is left to the kernel.
    """
    with atomic_open(path, mode=mode, fsync=fsync) as handle:
        handle.write(data)

