"""A generated file, planned before it is rendered, so unchanged outputs cost nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputFile:
    """One file under public/.

    `key` is a digest of everything that determines the bytes: equal key means identical
    bytes, so a rebuild may skip `render()` when the key and the file on disk are unchanged.
    """

    path: str  # relative to public/, with forward slashes, e.g. "tags/python.atom"
    key: str
    render: Callable[[], bytes] = field(compare=False)
    # Rough rendering cost (about 60 µs a unit: one entry of a feed), to share out the work.
    cost: int = field(default=3, compare=False)
