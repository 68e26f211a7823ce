"""Durations in config.toml: a number of seconds, or a number with a unit ("5m", "4d")."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError


class Seconds(float):
    """A duration in seconds, written in config.toml as a number of seconds or as a string
    with a unit: "30s", "5m", "1h", "4d" (see `parse_duration`)."""


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, key: str, source: str) -> Seconds:
    """Seconds from 90, 1.5, "90", "30s", "5m", "1h" or "4d"; ConfigError naming `key`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (found := _DURATION.fullmatch(value)):
        seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2).lower()]
    else:
        raise ConfigError(
            f"{source}: '{key}' = {value!r} is not a duration; write a number of seconds or a "
            'number with a unit s, m, h or d, such as "30s", "5m", "1h" or "4d"')
    if seconds <= 0:
        raise ConfigError(f"{source}: '{key}' = {value!r} must be longer than zero "
                          '(e.g. "5m")')
    return Seconds(seconds)



def duration_seconds(value: str) -> int:
    """Whole seconds in a duration such as "90s", "5m", "48h", "4d" (see `parse_duration`).

    Raises ValueError for anything else."""
    try:
        return int(parse_duration(value, "duration", "value"))
    except ConfigError as exc:
        raise ValueError(f"{value!r} is not a duration such as '30m', '48h' or '2d'") from exc
