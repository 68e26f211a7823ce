"""The build's memory between runs, in the data folder: a manifest (config fingerprint,
article file stats, the key and size of every output) and the parsed articles.

Both are pickles written atomically. Anything unreadable, damaged or of another
CACHE_VERSION counts as no cache: the next build is a cold one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ..config import Config
from ..errors import ArticleError
from ..fsutil import atomic_open
from .model import Article
from .parts import Part, PartRef, remove_stale_parts
from .parts import load as load_part
from .parts import store as store_part

CACHE_VERSION = 10  # 10: article bodies as UTF-8 (`Article.html_utf8`)
Stat = tuple[int, int]  # (mtime_ns, size)
Written = tuple[str, int]  # (output key, size in bytes)


@dataclass
class BuildCache:
    """What the previous build knew: file stats, parsed articles, output keys."""

    fingerprint: str = ""
    stats: dict[str, Stat] = field(default_factory=dict)
    parsed: Mapping[str, Article | ArticleError] = field(default_factory=dict)
    outputs: dict[str, Written] = field(default_factory=dict)
    published_ids: tuple[str, ...] = ()
    next_publish: datetime | None = None
    errors: list[ArticleError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    drafts: int = 0  # entries marked Draft, not published
    scheduled: int = 0  # entries dated in the future, published when they come due
    index: str = ""  # the token of the article index (`articles.index`) written with it
    # The stat of each media file an attachment length is read from (`jobs.stages`).
    media: dict[str, Stat] = field(default_factory=dict)
    # The mtime of each folder under public/ that holds outputs, once they were written
    # (`folder_stamps`): while none changed, no output was added, removed or renamed.
    folders: dict[str, int] = field(default_factory=dict)
    # Files listed by a manifest of an older CACHE_VERSION: nothing else of it is reused,
    # but what that build wrote must still go when this build does not plan it.
    older_outputs: tuple[str, ...] = ()
    # The manifest's part files as loaded or saved (`parts`): a later save names them again
    # with the entries changed since, rather than writing the values anew.
    parts: dict[str, Part] = field(default_factory=dict)


def config_fingerprint(cfg: Config) -> str:
    relevant = (CACHE_VERSION, cfg.site, cfg.feeds, cfg.articles, str(cfg.articles_dir),
                str(cfg.public_dir),
                str(cfg.templates_dir), _templates_stamp(cfg.templates_dir))
    return hashlib.sha256(repr(relevant).encode()).hexdigest()


def _templates_stamp(folder: Path) -> tuple[tuple[str, int], ...]:
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder)))
    except FileNotFoundError:
        return ()


def cache_paths(cfg: Config) -> tuple[Path, Path]:
    return cfg.data_dir / "build-manifest.pickle", cfg.data_dir / "build-articles.pickle"


def _writing_path(cfg: Config) -> Path:
    return cfg.data_dir / "build-writing.pickle"


def mark_writing(cfg: Config, paths: Iterable[str]) -> None:
    """Note, before a build writes them, the outputs whose manifest entry is about to go
    stale: a build stopped midway leaves this list behind, and the next one takes those
    outputs as unknown (rewritten) whatever the manifest says. `save_manifest` clears it."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    path = _writing_path(cfg)
    earlier = _load_pickle(path)
    listed = set(earlier) if isinstance(earlier, list | set | tuple) else set()
    listed.update(paths)
    _dump(path, sorted(listed))


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def manifest_head(cfg: Config) -> Any:
    """The manifest as pickled (its large values named, in part files), or None."""
    return _load_pickle(cache_paths(cfg)[0])


def listed_stats(cfg: Config, head: Any) -> dict[str, Stat]:
    """The article file stats the manifest `head` (`manifest_head`) lists: {} for none."""
    if not isinstance(head, dict) or head.get("version") != CACHE_VERSION:
        return {}
    try:
        found = _part_value(cfg.data_dir, "stats", head["stats"], {})
    except (OSError, KeyError, TypeError, ValueError, pickle.UnpicklingError, EOFError,
            AttributeError, ImportError):
        return {}
    return found if isinstance(found, dict) else {}


def listed_count(head: Any) -> int:
    """About how many article files the manifest `head` lists, told by the size of its stats
    part without reading it (0 for none, or a manifest that keeps its values itself)."""
    ref = head.get("stats") if isinstance(head, dict) else None
    return ref.size // _BYTES_PER_FILE if isinstance(ref, PartRef) else 0


_BYTES_PER_FILE = 60  # in the stats part file: a relative path and two numbers, pickled


def load_manifest(cfg: Config, head: Any = None) -> BuildCache:
    """What the last build left (its manifest `head` as read by `manifest_head`, when given:
    the parts it names are read now)."""
    manifest_path, _ = cache_paths(cfg)
    data = _load_pickle(manifest_path) if head is None else head
    if not isinstance(data, dict):
        return BuildCache()
    if data.get("version") != CACHE_VERSION:
        return BuildCache(older_outputs=_older_output_paths(data))
    parts: dict[str, Part] = {}
    try:
        values = {key: _part_value(cfg.data_dir, key, data[key], parts) for key in _PARTS}
    except (OSError, KeyError, TypeError, ValueError, pickle.UnpicklingError, EOFError,
            AttributeError, ImportError):
        return BuildCache()  # a part file missing, cut short or damaged
    outputs = values["outputs"]
    writing = _load_pickle(_writing_path(cfg))
    folders = data.get("folders", {})
    if writing:  # a build stopped while writing these: their entries say nothing
        outputs, folders = dict(outputs), {}
        for path in writing if isinstance(writing, list) else ():
            if path in outputs:
                outputs[path] = ("", -1)
    return BuildCache(fingerprint=data["fingerprint"], stats=values["stats"], outputs=outputs,
                      published_ids=values["published_ids"], next_publish=data["next_publish"],
                  errors=data["errors"], warnings=data.get("warnings", []),
                      drafts=data.get("drafts", 0), scheduled=data.get("scheduled", 0),
                      index=data.get("index", ""), media=data.get("media", {}),
                      folders=folders, parts=parts)


_PARTS = ("stats", "outputs", "published_ids")  # the manifest's values kept in part files


def _part_value(folder: Path, key: str, stored: object, parts: dict[str, Part]) -> Any:
    """A manifest value as stored: in a part file (noted in `parts`), or in the manifest
    itself (as manifests before part files kept it)."""
    if not isinstance(stored, PartRef):
        return stored
    value, parts[key] = load_part(folder, stored)
    return value


def folder_stamps(public: Path, outputs: Iterable[str]) -> dict[str, int]:
    """The mtime of every folder under `public` that holds one of `outputs` (-1: missing).
    Adding, removing or renaming a file changes its folder's mtime; rewriting one in place
    does not."""
    stamps: dict[str, int] = {}
    for name in {path.rpartition("/")[0] for path in outputs}:
        try:
            stamps[name] = os.stat(os.path.join(public, name)).st_mtime_ns
        except OSError:
            stamps[name] = -1
    return stamps


def _older_output_paths(data: dict[Any, Any]) -> tuple[str, ...]:
    """The output paths of a manifest from an older CACHE_VERSION (every version so far
    keys `outputs` by the path under public/); () for one this build cannot read."""
    version, outputs = data.get("version"), data.get("outputs")
    if not (isinstance(version, int) and 1 <= version < CACHE_VERSION
            and isinstance(outputs, dict)):
        return ()
    return tuple(path for path in outputs if isinstance(path, str) and path
                 and not PurePosixPath(path).is_absolute() and ".." not in path.split("/"))


def _dump(path: Path, data: object) -> None:
    with atomic_open(path, fsync=False) as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)


_ARTICLE_FIELDS = tuple(f.name for f in fields(Article))
_FIELDS_OF = attrgetter(*_ARTICLE_FIELDS)
_BYTES_FIELDS = frozenset({"html_utf8"})  # bytes in the article itself


def pack(value: object) -> object:
    """An article as a tuple whose str fields are UTF-8 bytes (anything else as it is).

    Pickling a non-ASCII str makes CPython keep a UTF-8 copy inside the str object for as
    long as it lives; encoding it here makes a short-lived copy instead (the body is kept as
    UTF-8 bytes already, `Article.html_utf8`, and is pickled as it is).
    """
    if not isinstance(value, Article):
        return value
    return tuple([v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v
                  for v in _FIELDS_OF(value)])


def unpack(value: object) -> Article | ArticleError:
    if isinstance(value, Article | ArticleError):
        return value
    assert isinstance(value, tuple)
    values: dict[str, Any] = {
        name: v.decode("utf-8", "surrogatepass")
        if isinstance(v, bytes) and name not in _BYTES_FIELDS else v
        for name, v in zip(_ARTICLE_FIELDS, value, strict=True)}
    return Article(**values)


Parsed = Article | ArticleError


def packed_chunk(items: Iterable[tuple[str, Parsed]], *, keep: bool = True) -> bytes:
    """(source, article or error) pairs as one record of the article cache: `pack`ed when
    this process `keep`s the articles, pickled as they are (read back faster) when it is a
    worker that exits once they are sent."""
    if not keep:
        return pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.dumps([(source, pack(value)) for source, value in items],
                        protocol=pickle.HIGHEST_PROTOCOL)


def read_chunk(record: bytes) -> list[tuple[str, Parsed]]:
    """The pairs of a `packed_chunk` record, of either kind."""
    return [(source, unpack(value)) for source, value in pickle.loads(record)]


@contextlib.contextmanager
def article_cache(path: Path, stats: dict[str, Stat]) -> Iterator[BinaryIO]:
    """Write the article cache as articles are parsed: the block writes `packed_chunk`
    records, in any order, to the handle. The file is a header with the stats, the records
    and an end mark; it replaces the old one only when the block succeeds, so its stats and
    articles always belong together."""
    with atomic_open(path, fsync=False) as handle:
        pickle.dump({"version": CACHE_VERSION, "stats": stats}, handle,
                    protocol=pickle.HIGHEST_PROTOCOL)
        yield handle
        pickle.dump(None, handle)


def load_articles(path: Path) -> tuple[dict[str, Stat], dict[str, Parsed]]:
    """What `article_cache` wrote; empty if the cache is missing, old or damaged."""
    try:
        with path.open("rb") as handle:
            head = pickle.load(handle)
            if not isinstance(head, dict) or head.get("version") != CACHE_VERSION:
                return {}, {}
            parsed: dict[str, Parsed] = {}
            while (chunk := pickle.load(handle)) is not None:
                parsed.update((source, unpack(value)) for source, value in chunk)
            return head["stats"], parsed
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, KeyError,
            TypeError, ValueError):
        return {}, {}


def save_manifest(cfg: Config, cache: BuildCache) -> None:
    """Write the manifest of `cache`, its large values in part files (`parts`); `cache.parts`
    become the parts it names."""
    folder = cfg.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    refs: dict[str, PartRef] = {}
    parts: dict[str, Part] = {}
    for key in _PARTS:
        refs[key], parts[key] = store_part(folder, getattr(cache, key), cache.parts.get(key))
    _dump(cache_paths(cfg)[0], {
        "version": CACHE_VERSION, "fingerprint": cache.fingerprint, **refs,
        "next_publish": cache.next_publish, "errors": cache.errors,
        "warnings": cache.warnings, "drafts": cache.drafts, "scheduled": cache.scheduled,
        "index": cache.index, "media": cache.media,
        "folders": folder_stamps(cfg.public_dir, cache.outputs)})
    cache.parts = parts
    with contextlib.suppress(FileNotFoundError):
        _writing_path(cfg).unlink()
    remove_stale_parts(folder, {part.name for part in parts.values()})
