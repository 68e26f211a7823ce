"""Config: the typed, frozen configuration read once from config.toml.

Every section is a frozen dataclass (`sections`); `load.load_config(path)` is the only reader
of the file: unknown keys are rejected with a suggestion, wrong types name the key, and
`validate` checks what types alone cannot (URLs, languages, limits). Durations ("5m", "4d")
are parsed by `durations`. Secrets never come from the file: `secret()` reads them from the
environment.

The ground floor: every wing may use it. Never imports: any wing (articles, feeds, site, mail,
store, delivery, jobs, web, scheduler, daemon, cli); it uses `errors` only. The names below are
the configuration's public API, importable from `feedpub.config` itself.
"""

from __future__ import annotations

from .durations import Seconds, duration_seconds, parse_duration
from .load import CONFIG_ENV, find_config, load_config, parse_config, secret
from .sections import (
    DEFAULT_CONFIG_NAME,
    ArticlesConfig,
    BouncesConfig,
    ClusterConfig,
    Config,
    DeliveryConfig,
    DigestConfig,
    DkimConfig,
    FeedsConfig,
    NewsletterConfig,
    PathsConfig,
    ScheduleConfig,
    SiteConfig,
    SmtpConfig,
    StoreConfig,
    WebConfig,
)
from .validate import language_tag_is_valid

__all__ = [
    "CONFIG_ENV", "DEFAULT_CONFIG_NAME", "ArticlesConfig", "BouncesConfig", "ClusterConfig",
    "Config",
    "DeliveryConfig", "DigestConfig", "DkimConfig", "FeedsConfig", "NewsletterConfig",
    "PathsConfig", "ScheduleConfig", "Seconds", "SiteConfig", "SmtpConfig", "StoreConfig",
    "WebConfig", "duration_seconds", "find_config", "language_tag_is_valid", "load_config",
    "parse_config", "parse_duration", "secret",
]
