"""Every setting checked once when a command loads the config, by the parts that use it.

`config.parse_config` checks types, keys and the values it can judge alone. This module checks
the rest with the real components, so a typo fails `check`, `build`, `status` and `run` the same
way (a ConfigError, exit status 2) instead of surfacing later as a failed send or an HTTP 500:
the backend name against the delivery registry, cron lines with APScheduler's own parser, the
subject by rendering it once with sample values, addresses with email-validator, numbers that
are durations or counts, and files that must exist.

The common values take a fast path that loads neither APScheduler nor email-validator, so a
rebuild with nothing to do stays cheap; anything else is judged by the library.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from pathlib import Path

from ..config import Config, DigestConfig
from ..errors import ConfigError, DigestError

# Cron lines the fast path accepts without APScheduler: "M H * * D" with plain values.
_SIMPLE_CRON = re.compile(
    r"(?P<minute>\*|[0-5]?\d) (?P<hour>\*|1?\d|2[0-3]) \* \* "
    r"(?P<dow>\*|[0-6]|mon|tue|wed|thu|fri|sat|sun)"
)
# Addresses the fast path accepts without email-validator: plain ASCII, a dotted domain.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SIMPLE_ADDRESS = re.compile(
    rf"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:{_LABEL}\.)+[a-z]{{2,24}}", re.IGNORECASE
)


def _fail(source: str, key: str, value: object, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{source}: '{key}' = {value!r} {problem}; {fix}")


def check_backend(cfg: Config, source: str) -> None:
    from ..delivery.registry import MAILERS

    name = cfg.delivery.backend
    if name in MAILERS:
        return
    close = difflib.get_close_matches(name, list(MAILERS), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise _fail(source, "delivery.backend", name, "is not a delivery backend",
                f"{hint}use one of: {', '.join(sorted(MAILERS))}")


def check_cron(cfg: Config, source: str) -> None:
    for cadence in ("daily", "weekly"):
        expression = getattr(cfg.schedule, cadence).strip()
        if not expression or _SIMPLE_CRON.fullmatch(" ".join(expression.split())):
            continue
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(expression, timezone=cfg.site.tz)
        except ValueError as exc:
            raise _fail(source, f"schedule.{cadence}", expression,
                        f"is not a valid crontab line ({exc})",
                        "write five fields: minute hour day month weekday, e.g. '0 8 * * mon' "
                        "(an empty string turns this digest off)") from exc


def check_subject(cfg: Config, source: str) -> None:
    """Render the subject once with a sample article, as an issue would."""
    if cfg.digest.subject == DigestConfig.subject:  # the default renders; skip the mail stack
        return
    from ..articles.model import Article
    from ..mail.digest import render_subject

    when = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    sample = Article(id="tag:example.org,2024-03-05:sample", slug="sample",
                     title="Sample title", published=when, html_utf8=b"<p>Sample</p>",
                     source="sample.txt")
    try:
        render_subject(cfg, "weekly", [sample], when)
    except DigestError as exc:
        message = str(exc).removeprefix("digest.subject: ")
        raise ConfigError(f"{source}: 'digest.subject': {message}") from exc


def check_address(key: str, value: str, source: str, *, optional: bool = False) -> None:
    if (optional and not value) or _SIMPLE_ADDRESS.fullmatch(value):
        return
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _fail(source, key, value, f"is not an email address ({exc})",
                    "write a plain address such as 'news@example.org' (the display name "
                    "goes in its own setting)") from exc


def _at_least(source: str, key: str, value: float, low: float, what: str) -> None:
    if value < low:
        raise _fail(source, key, value, f"must be at least {low:g}", what)


def _positive(source: str, key: str, value: float, what: str) -> None:
    if value <= 0:
        raise _fail(source, key, value, "must be more than 0", what)


def check_numbers(cfg: Config, source: str) -> None:
    """Durations, counts and ports: the values that make no sense below a bound."""
    d, smtp, s, w = cfg.delivery, cfg.delivery.smtp, cfg.schedule, cfg.web
    # delivery.max_attempts and retry_base are ignored (config warns and names their
    # replacements); the retry durations are checked when the config is parsed.
    _at_least(source, "delivery.bounce_limit", d.bounce_limit, 1, "e.g. 3 hard bounces")
    _positive(source, "delivery.smtp.timeout", smtp.timeout, "seconds, e.g. 30.0")
    _at_least(source, "delivery.smtp.connections", smtp.connections, 1, "e.g. 1")
    _at_least(source, "delivery.smtp.per_connection", smtp.per_connection, 1, "e.g. 100")
    _at_least(source, "delivery.smtp.rate", smtp.rate, 0, "0 means no limit")
    _at_least(source, "digest.max_articles", cfg.digest.max_articles, 1, "e.g. 50")
    _at_least(source, "schedule.grace_seconds", s.grace_seconds, 0, "seconds, e.g. 3600")
    _at_least(source, "schedule.debounce_ms", s.debounce_ms, 0, "milliseconds, e.g. 500")
    _at_least(source, "web.subscribe_rate", w.subscribe_rate, 1, "sign-ups per hour, e.g. 5")
    _at_least(source, "web.token_max_age_days", w.token_max_age_days, 1, "days, e.g. 30")
    for key, port, low in (("delivery.smtp.port", smtp.port, 1), ("web.port", w.port, 0)):
        if not low <= port <= 65535:
            raise _fail(source, key, port, f"is not a TCP port ({low}-65535)",
                        "e.g. 587 for SMTP, 8080 for the web server")


def check_paths(cfg: Config, source: str) -> None:
    """Files that must exist, and folders that must not be files."""
    ca_file = cfg.delivery.smtp.ca_file
    if ca_file and not cfg.path(Path(ca_file)).is_file():
        raise _fail(source, "delivery.smtp.ca_file", ca_file,
                    f"names no file ({cfg.path(Path(ca_file))})",
                    "give the path of a PEM bundle, relative to config.toml, or \"\"")
    for key in ("articles", "public", "templates", "data"):
        folder = cfg.path(getattr(cfg.paths, key))
        if folder.exists() and not folder.is_dir():
            raise _fail(source, f"paths.{key}", str(getattr(cfg.paths, key)),
                        f"is a file, not a folder ({folder})", "name a folder")
    if not re.match(r"[a-z][a-z0-9+]*:///?", cfg.store.url):
        raise _fail(source, "store.url", cfg.store.url, "is not a database URL",
                    "e.g. 'sqlite:///data/feedpub.db' or "
                    "'postgresql+psycopg://user@host/dbname'")
    if any(c in cfg.web.cache_control for c in "\r\n"):
        raise _fail(source, "web.cache_control", cfg.web.cache_control,
                    "contains a line break", "write the header value on one line")


def check_config(cfg: Config, source: str = "config.toml") -> Config:
    """Raise a ConfigError naming the key and the fix for the first bad setting; return cfg."""
    check_backend(cfg, source)
    check_cron(cfg, source)
    check_subject(cfg, source)
    check_address("site.email", cfg.site.email, source, optional=True)
    check_address("digest.from_address", cfg.digest.from_address, source)
    check_numbers(cfg, source)
    check_paths(cfg, source)
    return cfg


__all__ = ["check_config"]
