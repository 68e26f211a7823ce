"""One sender per data set and cadence: an exclusive `flock` on <data>/digest-<cadence>.lock.

Every path that sends an issue (`feedpub digest send`, the daemon's scheduled send, the queue
runner) holds this lock while it plans and sends that cadence's rows; the queue runner skips
a cadence whose lock another process holds. A second sender of the
same cadence stops at once with `SendBusyError` naming the holder's pid; nothing is sent twice.
The kernel releases the lock when its process dies, so a crashed sender never blocks a resume.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import Config
from ..errors import DigestError


class SendBusyError(DigestError):
    """Another process is sending this cadence's digest right now."""


def lock_path(cfg: Config, cadence: str) -> Path:
    return cfg.data_dir / f"digest-{cadence}.lock"


@contextmanager
def send_lock(cfg: Config, cadence: str) -> Iterator[None]:
    """Hold the send lock of `cadence` for the block; SendBusyError if another process has it."""
    path = lock_path(cfg, cadence)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="ascii") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SendBusyError(
                f"the {cadence} digest is already being sent by another process (pid {holder}, "
                f"lock file {path}); this run sent nothing. Let that run finish (`feedpub "
                "digest status` shows its progress) or stop it, then run `send` again."
            ) from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
