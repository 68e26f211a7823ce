"""A progress bar that appears only when work has already taken more than a second."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

import click


class LazyProgress:
    """Callable `(done, total)` for library progress hooks; draws a click bar after `delay` s."""

    def __init__(self, label: str, *, enabled: bool = True, delay: float = 1.0) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.delay = delay
        self.started = time.monotonic()
        self._bar: Any = None
        self._shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.started < self.delay:
                return
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        if total != self._bar.length:  # a new phase with its own total
            self._bar.length = total
            self._bar.pos = self._shown = 0
        self._bar.update(done - self._shown)
        self._shown = done

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
