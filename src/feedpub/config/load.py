"""Reading config.toml: find the file, parse it, build the sections (unknown keys get a suggestion,
wrong types name the key), validate, and read secrets from the environment."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .durations import Seconds, parse_duration
from .sections import DEFAULT_CONFIG_NAME, Config
from .validate import deprecated_delivery_keys, validate_config


def secret(name: str) -> str | None:
    """Read a secret from the environment (never from config.toml)."""
    value = os.environ.get(name)
    return value if value else None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check (and lightly convert) one TOML value against the dataclass field's type."""
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{key}] must be a table, got {type(value).__name__}")
        return _build(tp, value, key, source)
    if tp is Seconds:
        return parse_duration(value, key, source)
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a path string, got {value!r}")
        return Path(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be a whole number, got {value!r}")
        return value
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (str,)
        items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{source}: bad value for '{key}'")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(
            f"{source}: '{key}' must be a {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    return value


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name != "root"]


def _all_keys(cls: Any = None, prefix: str = "") -> list[str]:
    """Every dotted key and table name of the configuration ("site", "site.title", ...),
    leaving out the deprecated ones."""
    cls = cls or Config
    hints = typing.get_type_hints(cls)
    keys = []
    deprecated = {f.name for f in dataclasses.fields(cls) if "deprecated" in f.metadata}
    for name in _field_names(cls):
        if name in deprecated:  # still read, no longer documented
            continue
        full = f"{prefix}{name}"
        keys.append(full)
        if dataclasses.is_dataclass(hints[name]):
            keys.extend(_all_keys(hints[name], full + "."))
    return keys


def _unknown_key_hint(key: str, prefix: str, names: list[str]) -> str:
    """A suggestion: the same key in another section first, then a near spelling here."""
    elsewhere = [k for k in _all_keys() if k.rsplit(".", 1)[-1] == key and k != key]
    if elsewhere:
        return "; did you mean " + " or ".join(f"'{k}'" for k in elsewhere) + "?"
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{(prefix + '.') if prefix else ''}{close[0]}'?"
    return f"; known keys: {', '.join(names)}"


def _build(cls: Any, data: dict[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = _field_names(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{full}'"
                              f"{_unknown_key_hint(key, prefix, names)}")
        kwargs[key] = _coerce(value, hints[key], full, source)
    return cls(**kwargs)


# A language tag as feeds write it (RFC 5646 shape: "en", "de-CH", "zh-Hant-TW").
def parse_config(text: str, root: Path, source: str = DEFAULT_CONFIG_NAME) -> Config:
    """Parse config TOML text into a Config rooted at `root` (pure; no file access)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    cfg = _build(Config, data, "", source)
    # Surrounding spaces in the hub URL are a slip, not part of it: every user gets it bare.
    feeds = dataclasses.replace(cfg.feeds, websub_hub=cfg.feeds.websub_hub.strip())
    cfg = dataclasses.replace(cfg, root=root, feeds=feeds)
    deprecated_delivery_keys(data, source)
    validate_config(cfg, source)
    return typing.cast(Config, cfg)


CONFIG_ENV = "FEEDPUB_CONFIG"  # the config file to use when --config is not given


def find_config(start: Path | None = None) -> Path:
    """The config file a command uses: $FEEDPUB_CONFIG, else config.toml in `start` (the
    current folder) or the nearest parent that has one. None found is a ConfigError that
    suggests `feedpub init`, so a command run in the wrong folder never builds a default site."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {DEFAULT_CONFIG_NAME} in {here} or its parents: create a site with "
        "`feedpub init DIR` (then cd into it), or name the file with --config PATH or "
        f"{CONFIG_ENV}=PATH"
    )


def load_config(path: Path | None = None) -> Config:
    """Read config.toml once; without a path, the file `find_config()` finds."""
    if path is None:
        path = find_config()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found (pass --config PATH, or create a "
                          "site with `feedpub init DIR`)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    return parse_config(text, path.resolve().parent, str(path))
