"""A generated file, planned before it is rendered, so unchanged outputs cost nothing."""

from __future__ import annotations

from collections.abc import Callable


class OutputFile:
    """One file under public/.

    `key` is a digest of everything that determines the bytes: equal key means identical
    bytes, so a rebuild may skip `render()` when the key and the file on disk are unchanged.
    It may be given as a function, called on first use: a cold build needs no key until the
    file is written, and then the worker process that writes it works it out.
    """

    __slots__ = ("_key", "_make_key", "cost", "near", "path", "render")

    def __init__(self, path: str, key: str | Callable[[], str], render: Callable[[], bytes],
                 cost: int = 4, near: int = -1) -> None:
        self.path = path  # relative to public/, with forward slashes, e.g. "tags/python.atom"
        self._key: str | None = key if isinstance(key, str) else None
        self._make_key: Callable[[], str] | None = None if isinstance(key, str) else key
        self.render = render
        # Rough cost of making its key, rendering and writing it, in feed entries (about
        # 25 µs each on a 2-core machine; an article page costs about 4, a home page about
        # one per article listed, a tag page 0.4, the sitemap 1/6), to cut the work into
        # chunks of about equal cost.
        self.cost = cost
        # Where the articles it shows begin in the site's order (newest first; -1: none or
        # all of them). A parallel build writes the outputs of the same articles together,
        # so that one process, not each, reads their texts and works out their digests.
        self.near = near

    @property
    def key(self) -> str:
        if self._key is None:
            assert self._make_key is not None
            self._key = self._make_key()
        return self._key

    def __repr__(self) -> str:
        return f"OutputFile({self.path!r})"
