"""The article index: the last build's articles on disk, read lazily by the next build.

Three kinds of files in the data folder. `build-index.pickle` holds, for every article file,
its short fields (everything but the HEAVY ones) or its error, and where its record lies in a
records file; and an opaque `plan` (what the build planned, for the next one to compare
with). `build-records-<n>.data` holds one pickled record per article, its HEAVY fields (the
body and summary above all), at the offsets the index gives; changed articles are appended,
and the file is written anew when most of it is stale. `build-kept-<n>.data` holds one
large value that changes seldom (the short fields of every article, or a value of the plan
wrapped in `Kept`): written once, then named again by each index that keeps it unchanged,
since writing megabytes costs a small build more than anything else it does.

An article loaded from the index is a `StoredArticle`: its HEAVY fields are read from the
records file on first use, so a build that re-plans a few outputs reads a few records.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..config import Config
from ..errors import ArticleError, CacheError
from .cache import CACHE_VERSION, Parsed, _dump, _load_pickle
from .model import Article
from .records import HEAVY, LIGHT, LIGHT_OF, RecordsWriter, Written

INDEX_NAME = "build-index.pickle"
_KEPT = "build-kept-{}.data"
T = TypeVar("T")


class Kept(Generic[T]):
    """A value of the plan kept in a file of its own (`build-kept-<n>.data`): read on first
    use, and named, not written again, by the next index while it is unchanged."""

    __slots__ = ("_path", "_value")

    def __init__(self, value: T | None = None, path: Path | None = None) -> None:
        self._value = value
        self._path = path

    def get(self) -> T:
        if self._value is None:
            assert self._path is not None
            self._value = pickle.loads(self._path.read_bytes())
        return self._value

    def _saved(self, folder: Path) -> tuple[str, int]:
        """(file name, size), the file written first if this value has none yet."""
        if self._path is None or self._path.parent != folder:
            data = pickle.dumps(self.get(), protocol=pickle.HIGHEST_PROTOCOL)
            self._path = folder / _KEPT.format(secrets.token_hex(8))
            self._path.write_bytes(data)  # a new name: no reader sees it before the index
        return self._path.name, self._path.stat().st_size


class _KeptName(tuple[str, int]):
    """What the index pickles in place of a `Kept` value: its file's name and size."""


def _kept_value(folder: Path, name: object) -> Kept[Any]:
    if not isinstance(name, _KeptName) or not name[0].startswith("build-kept-"):
        raise ValueError(f"{name!r}: not the name of a kept file")
    path = folder / name[0]
    if os.stat(path).st_size != name[1]:
        raise ValueError(f"{path}: not the file the article index names")
    return Kept(path=path)


class Records:
    """A records file, opened for reading on first use."""

    _fd: int | None = None

    def __init__(self, path: Path) -> None:
        self.path = path
        # Opened now: a later build may replace the file, and this one must stay readable.
        self._fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def read(self, offset: int, length: int) -> tuple[Any, ...]:
        if self._fd is None:
            raise OSError(f"{self.path}: closed")
        data = os.pread(self._fd, length, offset)
        try:
            if len(data) != length:
                raise EOFError("cut short")
            values = pickle.loads(data)
            if not isinstance(values, tuple) or len(values) != len(HEAVY):
                raise ValueError("not an article record")
        except Exception as exc:  # noqa: BLE001 - whatever the bytes are, the file is damaged
            raise CacheError(f"{self.path}: the article record at byte {offset} is damaged "
                             f"({exc}); run `feedpub build --force`, which reads every "
                             "article file again and writes the index anew") from exc
        return values

    def size(self) -> int:
        if self._fd is None:
            raise OSError(f"{self.path}: closed")
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def _heavy_field(name: str) -> property:
    key = "_stored_" + name

    def get(self: Article) -> Any:
        found = self.__dict__
        if key not in found:
            records, offset, length = found["_where"]
            for field_name, value in zip(HEAVY, records.read(offset, length), strict=True):
                found.setdefault("_stored_" + field_name, value)
        return found[key]

    def put(self: Article, value: Any) -> None:  # dataclasses.replace builds a new one
        self.__dict__[key] = value

    return property(get, put)


class StoredArticle(Article):
    """An `Article` from the index: its HEAVY fields stay on disk until first used."""


for _name in HEAVY:
    setattr(StoredArticle, _name, _heavy_field(_name))


def stored(light: tuple[Any, ...], records: Records, offset: int, length: int) -> Article:
    article = object.__new__(StoredArticle)
    article.__dict__.update(zip(LIGHT, light, strict=True))
    article.__dict__["_where"] = (records, offset, length)
    return article


class LazyArticles(Mapping[str, Parsed]):
    """The index's articles by file, each made on first use (a `StoredArticle`, or the
    file's error): a build that places an edit from the arrangement in short
    (`jobs.arrange.rearranged`) makes the arranged articles, not 10,000 raw ones first."""

    def __init__(self, entries: dict[str, Entry], records: Records) -> None:
        self._entries = entries
        self._records = records
        self._made: dict[str, Parsed] = {}

    def __getitem__(self, source: str) -> Parsed:
        found = self._made.get(source)
        if found is None:
            light, offset, length = self._entries[source]
            found = self._made[source] = light if isinstance(light, ArticleError) else stored(
                light, self._records, offset, length)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, source: object) -> bool:
        return source in self._entries

    def arranged(self, sources: Iterable[str], fresh: Mapping[str, Parsed],
                 moved: Set[str]) -> list[Parsed | None]:
        """The articles of `sources` in order, those of `fresh` instead of the index's, None
        for those in `moved` (`placed` makes them)."""
        made, entries, records = self._made, self._entries, self._records
        out: list[Parsed | None] = []
        for source in sources:
            found = fresh.get(source) or made.get(source)
            if found is None and source not in moved:
                light, offset, length = entries[source]
                found = made[source] = light if isinstance(light, ArticleError) else stored(
                    light, records, offset, length)
            out.append(found)
        return out

    def updated(self, fresh: Mapping[str, Parsed]) -> LazyArticles:
        """These articles with those of `fresh` (files the index has) read anew."""
        assert fresh.keys() <= self._entries.keys()
        now = LazyArticles(self._entries, self._records)
        now._made = {**self._made, **fresh}
        return now

    def error_of(self, source: str) -> ArticleError | None:
        light = self._entries[source][0]
        return light if isinstance(light, ArticleError) else None

    def placed(self, source: str, shift: timedelta | None, tags: tuple[str, ...] | None,
               ) -> Article:
        """The article of `source` (not an error) moved by `shift` and with `tags`, made
        anew: what the arrangement made of it."""
        light, offset, length = self._entries[source]
        article = stored(light, self._records, offset, length)
        if shift is not None:
            article.__dict__["published"] += shift
        if tags is not None:
            article.__dict__["tags"] = tags
        return article


Entry = tuple[Any, int, int]  # (short fields or the error, record offset, record length)
_DELTA = 500  # changed entries kept apart from the pickled base before it is pickled anew


@dataclass
class Index:
    """What `load_index` read: the articles (StoredArticle or errors) and the plan.

    The entries are stored as `base`, them as they were some builds ago (kept in a file of
    their own: a build that changes a few need neither pickle nor write 10,000), and
    `delta`, the entries changed since (None for a file that went)."""

    token: str
    fingerprint: str
    parsed: LazyArticles
    plan: Any
    records: str  # the records file's name
    size: int  # bytes in the records file that the index points to
    entries: dict[str, Entry]
    base: Kept[dict[str, Entry]]
    delta: dict[str, Entry | None]


def index_path(cfg: Config) -> Path:
    return cfg.data_dir / INDEX_NAME


def load_index(cfg: Config, token: str) -> Index | None:
    """The index written with `token` (the manifest names it); None if there is none, it is
    of another version or token, or anything is wrong with it."""
    data = _load_pickle(index_path(cfg))
    try:
        if (not isinstance(data, dict) or data.get("version") != CACHE_VERSION
                or not token or data.get("token") != token):
            return None
        folder = cfg.data_dir
        records = Records(folder / data["records"])
        if records.size() < data["size"]:  # cut short: its records cannot all be read
            records.close()
            return None
        base: Kept[dict[str, Entry]] = _kept_value(folder, data["base"])
        plan = {key: _kept_value(folder, value) if isinstance(value, _KeptName) else value
                for key, value in data["plan"].items()}
        entries = dict(base.get())
        for source, entry in data["delta"].items():
            if entry is None:
                entries.pop(source, None)
            else:
                entries[source] = entry
        return Index(token, data["fingerprint"], LazyArticles(entries, records), plan,
                     data["records"],
                     data["size"], entries, base, data["delta"])
    except (OSError, KeyError, TypeError, ValueError, pickle.UnpicklingError, EOFError):
        return None


def save_index(cfg: Config, fingerprint: str, parsed: Mapping[str, Parsed],
               plan: dict[str, Any], earlier: Index | None, fresh: Iterable[str],
               written: Written | None = None) -> str:
    """Write the index of `parsed` with `plan`; return its token (for the manifest): the name
    of its records file, '#', a random part, '#' and the names of its kept files. The values
    of `plan` that are `Kept` go to files of their own, unless they have one.

    The records of the articles in `fresh` (and of any the records file lacks) are appended
    to `earlier`'s records file; without one, or when most of it is stale, a new file is
    written. `written` names a records file written already, as the articles were parsed
    (`records.RecordsWriter`): its name, size and where each article's record lies. The
    index replaces the old one atomically, after the records are written."""
    folder = cfg.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    if written is not None:
        name, size, where = written
        return _save(cfg, fingerprint, plan, name, size, Kept(_entries(parsed, parsed, where)),
                     {})
    entries = earlier.entries if earlier is not None else {}
    fresh_set = set(fresh)
    changed = {source for source in parsed if source in fresh_set or source not in entries}
    live = sum(entry[2] for source, entry in entries.items() if source in parsed)
    rewrite = earlier is None or earlier.size > 2 * live + (1 << 20)
    if rewrite:
        writer = RecordsWriter(folder)
        changed = set(parsed)
    else:
        assert earlier is not None  # appended to, after what a build stopped midway left
        writer = RecordsWriter(folder, earlier.records, earlier.size)
    try:
        writer.add((source, parsed[source]) for source in changed)
    finally:
        writer.close()
    name, size, where = writer.written()
    new = _entries(parsed, changed, where)
    gone = [source for source in entries if source not in parsed]
    if earlier is not None and not rewrite and len(earlier.delta) + len(new) + len(gone) <= _DELTA:
        base = earlier.base
        delta: dict[str, Entry | None] = {**earlier.delta, **new}
        delta.update(dict.fromkeys(gone))
    else:
        merged = {source: new[source] if source in new else entries[source] for source in parsed}
        base = Kept(merged)
        delta = {}
    return _save(cfg, fingerprint, plan, name, size, base, delta)


def _entries(parsed: Mapping[str, Parsed], sources: Iterable[str],
             where: Mapping[str, tuple[int, int]]) -> dict[str, Entry]:
    """The index entries of `sources`: each article's short fields and where its record
    lies, or the file's error."""
    out: dict[str, Entry] = {}
    for source in sources:
        value = parsed[source]
        out[source] = ((value, -1, -1) if isinstance(value, ArticleError)
                       else (LIGHT_OF(value), *where[source]))
    return out


def _save(cfg: Config, fingerprint: str, plan: dict[str, Any], name: str, size: int,
          base: Kept[dict[str, Entry]], delta: dict[str, Entry | None]) -> str:
    folder = cfg.data_dir
    stored_plan = {key: _KeptName(value._saved(folder)) if isinstance(value, Kept) else value
                   for key, value in plan.items()}
    kept = _KeptName(base._saved(folder))
    # The token names the records and kept files too (`remove_stale_records` reads them).
    names = [kept[0], *(v[0] for v in stored_plan.values() if isinstance(v, _KeptName))]
    token = f"{name}#{secrets.token_hex(8)}#{','.join(names)}"
    _dump(index_path(cfg), {"version": CACHE_VERSION, "token": token, "fingerprint": fingerprint,
                            "records": name, "size": size, "base": kept, "delta": delta,
                            "plan": stored_plan})
    return token


def remove_stale_records(cfg: Config, token: str) -> None:
    """Delete the records and kept files but those of the index `token` (once the manifest
    names it)."""
    records, _, rest = token.partition("#")
    keep = {records, *rest.partition("#")[2].split(",")}
    try:
        names = os.listdir(cfg.data_dir)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(("build-records-", "build-kept-")) and name.endswith(".data") \
                and name not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cfg.data_dir / name)
