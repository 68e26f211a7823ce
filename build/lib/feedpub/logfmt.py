"""Structured logs: one `key=value` (logfmt) line per event, through the logging module.

`log_event(logger, "build", written=3)` records the event name and fields; `LogfmtFormatter`
renders every record, structured or not, as a single logfmt line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

_RESERVED = "logfmt_fields"


def _quote(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if text == "" or any(ch in text for ch in ' "=\n\t\\'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def format_fields(fields: dict[str, Any]) -> str:
    """Render `fields` as `k=v k2="v 2"` in insertion order; None values are left out."""
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO,
              **fields: Any) -> None:
    """Log one event with its fields as a single structured record."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_RESERVED: fields})


class LogfmtFormatter(logging.Formatter):
    """Format records as `ts=… level=… logger=… event=… key=value…`."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        extra = getattr(record, _RESERVED, None)
        if extra is not None:
            fields["event"] = record.getMessage()
            fields.update(extra)
        else:
            fields["msg"] = record.getMessage()
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return format_fields(fields)


def use_logfmt(level: int | None = None) -> None:
    """Switch the root handlers to logfmt; optionally lower feedpub's own level."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(LogfmtFormatter())
    if level is not None:
        logging.getLogger("feedpub").setLevel(level)
