"""The large values of the build manifest (file stats, output keys, published ids), each in
a file of its own, `build-manifest-<n>.data`, which later manifests name again with the few
entries that changed since beside the name.

A build after one edit changes a few of 10,000 stats and output keys; pickling and writing
all of them again (about 3 MB) cost it more than the edit itself. The manifest names the part
file with its size (a file cut short or replaced counts as no manifest) and carries the
changed entries; after 500 changes, or when entries are added, removed or reordered, the
value is written to a new part file. Part files no manifest names are removed once the new
manifest is in place (`remove_stale_parts`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

_PREFIX, _SUFFIX = "build-manifest-", ".data"
_CHANGES = 500  # changed entries carried beside a part file before it is written anew


@dataclass(frozen=True)
class Part:
    """A part file as this process knows it: its name, size and the value it holds."""

    name: str
    size: int
    value: Any


class PartRef(NamedTuple):
    """What the manifest pickles for a value: the part file, and the entries changed since
    it was written (None: none)."""

    name: str
    size: int
    changes: dict[Any, Any] | None


def store(folder: Path, value: Any, earlier: Part | None) -> tuple[PartRef, Part]:
    """How the manifest names `value`: `earlier`'s file when it holds `value` or a dict with
    the same keys in the same order and few values changed, else a new part file."""
    if earlier is not None and _size(folder / earlier.name) == earlier.size:
        base = earlier.value
        if isinstance(value, dict) and isinstance(base, dict):
            if len(value) == len(base) and list(value) == list(base):
                changes = dict(value.items() - base.items())
                if len(changes) <= _CHANGES:
                    return PartRef(earlier.name, earlier.size, changes or None), earlier
        elif value == base:
            return PartRef(earlier.name, earlier.size, None), earlier
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    name = f"{_PREFIX}{secrets.token_hex(8)}{_SUFFIX}"
    (folder / name).write_bytes(data)  # a new name: no reader sees it before the manifest
    return PartRef(name, len(data), None), Part(name, len(data), value)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def load(folder: Path, ref: PartRef) -> tuple[Any, Part]:
    """The value `ref` names (a copy: the part's own value stays as the file holds it), and
    the part. ValueError when the file is not the one the manifest names."""
    if not ref.name.startswith(_PREFIX) or os.path.basename(ref.name) != ref.name:
        raise ValueError(f"{ref.name!r}: not the name of a manifest part")
    data = (folder / ref.name).read_bytes()
    if len(data) != ref.size:
        raise ValueError(f"{folder / ref.name}: not the file the manifest names")
    base = pickle.loads(data)
    part = Part(ref.name, ref.size, base)
    if isinstance(base, dict):
        return ({**base, **ref.changes} if ref.changes else dict(base)), part
    return base, part


def remove_stale_parts(folder: Path, keep: set[str]) -> None:
    """Delete the part files but those in `keep` (the ones the manifest now names)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(_PREFIX) and name.endswith(_SUFFIX) and name not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
