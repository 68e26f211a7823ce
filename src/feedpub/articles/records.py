"""The article index's records file, written while a full build parses the articles.

A full `feedpub build` keeps its parsed articles for the next build in the article index
(`articles.index`): each article's HEAVY fields (the body above all) as one pickled record
in a records file, and its short fields in the index. Rather than pickling every article
once more after parsing, the process that parses an article makes its record: a build
worker sends (short fields, record) pairs, which the build process writes into the file as
they arrive and turns back into articles (`RecordsWriter.receive`); the articles it parses
itself it records as they are parsed (`RecordsWriter.add`). `save_index(..., written=...)`
then names the file. So each body is pickled once and stored once.

The record format (HEAVY fields, `heavy_record`) and the one writer of records files live
here; `save_index` also appends an edit's records with `RecordsWriter`.
"""

from __future__ import annotations

import os
import pickle
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import fields
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any

from ..errors import ArticleError
from ..fsutil import write_all
from .cache import Parsed
from .model import Article

# The fields of a record; the index keeps the others (LIGHT) itself.
HEAVY = ("html_utf8", "summary", "author", "byline_date", "image")
LIGHT = tuple(f.name for f in fields(Article) if f.name not in HEAVY)
LIGHT_OF = attrgetter(*LIGHT)
_HEAVY_OF = attrgetter(*HEAVY)
_NAME = "build-records-{}.data"
_BATCH = 256  # records joined for one write
# A records file as `save_index` names it: its name, size, and where each record lies.
Written = tuple[str, int, Mapping[str, tuple[int, int]]]


def heavy_record(article: Article) -> bytes:
    return pickle.dumps(tuple(map(_copy, _HEAVY_OF(article))), protocol=pickle.HIGHEST_PROTOCOL)


def _copy(value: Any) -> Any:
    """A short-lived copy of a str (the same pickle): pickling a non-ASCII str makes CPython
    keep its UTF-8 form inside it for as long as it lives, which for every summary of a
    large site would stay in the build process (see `cache.pack`). The body is bytes."""
    return "".join((value, "")) if isinstance(value, str) and value else value  # one copy


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
            out.append((source, (LIGHT_OF(value), heavy_record(value))))
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _article(light: tuple[Any, ...], record: bytes) -> Article:
    """The article of `light` short fields and its HEAVY `record`, as parsed."""
    article = object.__new__(Article)
    fields = article.__dict__
    fields.update(zip(LIGHT, light, strict=True))
    fields.update(zip(HEAVY, pickle.loads(record), strict=True))
    return article


class RecordsWriter:
    """A records file in `folder`: a new one, or with `name` the one of that name, appended
    to from byte `size` (what lies past it, left by a build stopped midway, is dropped)."""

    def __init__(self, folder: Path, name: str | None = None, size: int = 0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
        if name is None:  # a new name, which no index names yet: nobody reads it before
            name, flags = _NAME.format(secrets.token_hex(8)), flags | os.O_CREAT | os.O_EXCL
        self.name = name
        self.path = folder / name
        self._fd: int | None = os.open(self.path, flags, 0o644)
        if flags & os.O_EXCL == 0:
            # Only a file appended to is cut back. ext4 writes back, when it is closed, a file
            # that was truncated to nothing and then written (`auto_da_alloc`): about 25 ms of
            # waiting for the 50 MB a cold build of 10,000 articles records.
            os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
        self.size = size
        self.where: dict[str, tuple[int, int]] = {}

    def add(self, items: Iterable[tuple[str, Parsed]]) -> None:
        """Record the articles of `items` (parsed here), a few hundred at a time; errors
        need no record."""
        articles = ((source, value) for source, value in items
                    if not isinstance(value, ArticleError))
        while batch := [(source, heavy_record(value))
                        for source, value in islice(articles, _BATCH)]:
            self._write(batch)

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
        write_all(self._fd, b"".join(record for _, record in records))
        self.size = size

    def written(self) -> Written:
        """What `save_index(..., written=...)` needs: the file's name and size, where each
        record lies."""
        return self.name, self.size, self.where

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
