"""The article index's records file, written while a full build parses the articles.

A full `feedpub build` keeps its parsed articles for the next build in the article index
(`articles.index`): each article's HEAVY fields (the body above all) as one pickled record
in a records file, and its short fields in the index. Rather than pickling every article
once more after parsing, the process that parses an article makes its record: a build
worker sends (short fields, record) pairs, which the build process writes into the file as
they arrive and turns back into articles (`RecordsWriter.receive`); the articles it parses
itself it records as they are parsed (`RecordsWriter.add`). `save_index(..., written=...)`
then names the file. So each body is pickled once and stored once.
"""

from __future__ import annotations

import os
import pickle
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ArticleError
from .cache import Parsed
from .index import _LIGHT_OF, _RECORDS, HEAVY, LIGHT, Written, _write_all, heavy_record
from .model import Article

# An article as a worker sends it: its short fields and its record; an error as it is.
Sent = ArticleError | tuple[tuple[Any, ...], bytes]


def sent_chunk(items: Iterable[tuple[str, Parsed]]) -> bytes:
    """A worker's parsed (source, article or error) pairs, as `RecordsWriter.receive` reads
    them: each article's short fields and its record, pickled once."""
    out: list[tuple[str, Sent]] = []
    for source, value in items:
        if isinstance(value, ArticleError):
            out.append((source, value))
        else:
            out.append((source, (_LIGHT_OF(value), heavy_record(value))))
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _article(light: tuple[Any, ...], record: bytes) -> Article:
    """The article of `light` short fields and its HEAVY `record`, as parsed."""
    article = object.__new__(Article)
    fields = article.__dict__
    fields.update(zip(LIGHT, light, strict=True))
    fields.update(zip(HEAVY, pickle.loads(record), strict=True))
    return article


class RecordsWriter:
    """A new records file in `folder`, filled as the articles are parsed."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.name = _RECORDS.format(secrets.token_hex(8))
        self.path = folder / self.name
        # A new name, which no index names yet: nobody reads it before `save_index`.
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.size = 0
        self.where: dict[str, tuple[int, int]] = {}

    def add(self, items: Iterable[tuple[str, Parsed]]) -> None:
        """Record the articles of `items` (parsed here); errors need no record."""
        self._write([(source, heavy_record(value)) for source, value in items
                     if not isinstance(value, ArticleError)])

    def receive(self, data: bytes) -> list[tuple[str, Parsed]]:
        """A worker's `sent_chunk`: its records written, its articles made again."""
        out: list[tuple[str, Parsed]] = []
        records: list[tuple[str, bytes]] = []
        for source, value in pickle.loads(data):
            if isinstance(value, ArticleError):
                out.append((source, value))
                continue
            light, record = value
            records.append((source, record))
            out.append((source, _article(light, record)))
        self._write(records)
        return out

    def _write(self, records: list[tuple[str, bytes]]) -> None:
        if self._fd is None:
            raise OSError(f"{self.path}: closed")
        size, where = self.size, self.where
        for source, record in records:
            where[source] = (size, len(record))
            size += len(record)
        _write_all(self._fd, b"".join(record for _, record in records))
        self.size = size

    def written(self) -> Written:
        """What `save_index(..., written=...)` needs: the file's name and size, where each
        record lies."""
        return self.name, self.size, self.where

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
