"""Typed, frozen configuration read once from config.toml.

Every section is a frozen dataclass; `load_config(path)` is the only reader of the file.
Unknown keys are rejected with a suggestion, wrong types name the key. Secrets never come
from the file: they are read from the environment by `secret()`.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

DEFAULT_CONFIG_NAME = "config.toml"


@dataclass(frozen=True)
class SiteConfig:
    """[site]: who publishes, where it lives and which clock it keeps."""

    title: str = "My feedpub site"
    base_url: str = "http://127.0.0.1:8080/"
    description: str = "News and notes"
    language: str = "en"
    author: str = "Site Editor"
    email: str = "editor@example.com"
    timezone: str = "UTC"
    default_time: str = "09:00"
    per_page: int = 20
    logo: str = ""
    icon: str = ""

    # Worked out on first use and kept (every article asks for them).
    @cached_property
    def domain(self) -> str:
        """Host name of base_url, used in tag: ids and Message-IDs."""
        return urlsplit(self.base_url).hostname or "localhost"

    @cached_property
    def local(self) -> bool:
        """True when base_url is on this machine (localhost, 127.0.0.0/8, ::1): local use."""
        host = self.domain
        return host == "localhost" or host.endswith(".localhost") or \
            host.startswith("127.") or host in ("::1", "[::1]")

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def publish_time(self) -> time:
        hours, minutes = self.default_time.split(":")
        return time(int(hours), int(minutes))


@dataclass(frozen=True)
class PathsConfig:
    """[paths]: folders, relative to the config file."""

    articles: Path = Path("articles")
    public: Path = Path("public")
    templates: Path = Path("templates")
    data: Path = Path("data")


@dataclass(frozen=True)
class FeedsConfig:
    """[feeds]: what the feed builder writes."""

    size: int = 20
    archive_size: int = 50
    tag_feeds: bool = True
    websub_hub: str = ""
    podcast: bool = False
    podcast_category: str = "Technology"
    podcast_explicit: bool = False


@dataclass(frozen=True)
class StoreConfig:
    """[store]: database URL; a relative sqlite path is resolved against the config file."""

    url: str = "sqlite:///data/feedpub.db"


@dataclass(frozen=True)
class SmtpConfig:
    """[delivery.smtp]: the SMTP backend. The password comes from FEEDPUB_SMTP_PASSWORD."""

    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    timeout: float = 30.0
    verify: bool = True
    ca_file: str = ""
    connections: int = 1
    per_connection: int = 100
    rate: float = 0.0


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


@dataclass(frozen=True)
class DkimConfig:
    """[delivery.dkim]: DKIM signing, off while key_file is empty. A second key (say Ed25519
    beside RSA) may be given as dual_selector / dual_key_file: both sign every message."""

    domain: str = ""  # default: the domain of [digest] from_address
    selector: str = ""
    key_file: str = ""
    dual_selector: str = ""
    dual_key_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.key_file)


@dataclass(frozen=True)
class DeliveryConfig:
    """[delivery]: which backend hands messages on, and how failures are retried.

    A temporary failure defers the message: first retry after `retry_first`, then doubling,
    at most `retry_max_interval` apart, given up `retry_give_up` after it was queued. The
    daemon runs the queue every `queue_interval`. `max_attempts` and `retry_base` are the
    former retry keys: accepted, ignored, warned about (see `_deprecated_delivery_keys`).
    """

    backend: str = "maildir"
    maildir: Path = Path("outbox")
    max_attempts: int = field(default=0, metadata={"deprecated": "retry_give_up"})
    retry_base: float = field(default=0.0, metadata={"deprecated": "retry_first"})
    bounce_limit: int = 3
    retry_first: Seconds = Seconds(300)
    retry_max_interval: Seconds = Seconds(3600)
    retry_give_up: Seconds = Seconds(4 * 86400)
    queue_interval: Seconds = Seconds(60)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    return_path: str = ""  # VERP: envelope sender bounces+<token>@domain when set
    dkim: DkimConfig = field(default_factory=DkimConfig)


@dataclass(frozen=True)
class DigestConfig:
    """[digest]: what a newsletter issue looks like and who it comes from."""

    subject: str = "{site}: {count} new, {first_title}"
    from_name: str = ""
    from_address: str = "newsletter@example.com"
    default_cadence: str = "weekly"
    max_articles: int = 50
    postal_address: str = ""  # printed in every digest's footer (CAN-SPAM)


@dataclass(frozen=True)
class NewsletterConfig:
    """[newsletter]: the public archive of sent issues."""

    public_archive: bool = True


@dataclass(frozen=True)
class ScheduleConfig:
    """[schedule]: cron expressions in the site's timezone, one per cadence."""

    daily: str = "0 8 * * *"
    weekly: str = "0 8 * * mon"
    grace_seconds: int = 3600
    debounce_ms: int = 500


@dataclass(frozen=True)
class WebConfig:
    """[web]: the HTTP server of `feedpub run`."""

    host: str = "127.0.0.1"
    port: int = 8080
    cache_control: str = "public, max-age=300"
    subscribe_rate: int = 5
    token_max_age_days: int = 30
    # Hardening: slow or silent clients, proxies, how long a confirm link works.
    header_timeout: float = 10.0
    max_connections: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    confirm_max_age: str = "48h"

    @cached_property
    def confirm_max_age_seconds(self) -> int:
        """`confirm_max_age` in seconds (checked at load)."""
        return duration_seconds(self.confirm_max_age)


@dataclass(frozen=True)
class ArticlesConfig:
    """[articles]: the bounds on one article file, so one file cannot stall a build."""

    max_bytes: int = 5 * 1024 * 1024
    max_depth: int = 100


@dataclass(frozen=True)
class BouncesConfig:
    """[bounces]: the mailbox where bounces, complaints and unsubscribe mails arrive. Either a
    Maildir folder or an IMAP mailbox over TLS (imaps://user@host:993/INBOX); the IMAP password
    comes from FEEDPUB_IMAP_PASSWORD."""

    maildir: str = ""
    imap_url: str = ""
    imap_ca_file: str = ""  # extra CA certificate for a private IMAP server
    processed_folder: str = ""  # move handled messages there; empty: delete them
    interval: int = 300  # seconds between two reads by `feedpub run`; 0: never
    soft_score: float = 0.5  # a hard bounce scores 1; bounce_limit applies to the sum
    bounce_reset: int = 7  # days without a bounce after which the score starts again


@dataclass(frozen=True)
class ClusterConfig:
    """[cluster]: several nodes on one PostgreSQL store: one leader, standbys, workers."""

    failover_seconds: Seconds = Seconds(15)
    lease_seconds: Seconds = Seconds(60)
    claim_batch: int = 20


@dataclass(frozen=True)
class Config:
    """The whole configuration. `root` is the folder of config.toml; paths are resolved."""

    root: Path = Path(".")
    site: SiteConfig = field(default_factory=SiteConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    web: WebConfig = field(default_factory=WebConfig)
    newsletter: NewsletterConfig = field(default_factory=NewsletterConfig)
    articles: ArticlesConfig = field(default_factory=ArticlesConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def path(self, relative: Path) -> Path:
        """Resolve a configured path against the config file's folder."""
        return relative if relative.is_absolute() else self.root / relative

    @property
    def articles_dir(self) -> Path:
        return self.path(self.paths.articles)

    @property
    def public_dir(self) -> Path:
        return self.path(self.paths.public)

    @property
    def templates_dir(self) -> Path:
        return self.path(self.paths.templates)

    @property
    def data_dir(self) -> Path:
        return self.path(self.paths.data)

    @property
    def database_url(self) -> str:
        """The store URL with a relative sqlite path made absolute against root."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix):]
            if rest and rest != ":memory:":
                return prefix + str((self.root / rest).resolve())
        return url


def secret(name: str) -> str | None:
    """Read a secret from the environment (never from config.toml)."""
    value = os.environ.get(name)
    return value if value else None


def duration_seconds(value: str) -> int:
    """Whole seconds in a duration such as "90s", "5m", "48h", "4d" (see `parse_duration`).

    Raises ValueError for anything else."""
    try:
        return int(parse_duration(value, "duration", "value"))
    except ConfigError as exc:
        raise ValueError(f"{value!r} is not a duration such as '30m', '48h' or '2d'") from exc


def _validate_hardening(cfg: Config, source: str) -> None:
    """[web] connection and link limits, [articles] bounds."""
    web = cfg.web
    if web.header_timeout <= 0:
        raise ConfigError(f"{source}: 'web.header_timeout' must be more than 0 seconds, "
                          f"got {web.header_timeout}")
    if web.max_connections < 1:
        raise ConfigError(f"{source}: 'web.max_connections' must be at least 1, "
                          f"got {web.max_connections}")
    for proxy in web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{source}: 'web.trusted_proxies' entry {proxy!r} is not an IP "
                              "address or network; write e.g. [\"127.0.0.1\", "
                              "\"10.0.0.0/8\"]") from exc
    try:
        seconds = duration_seconds(web.confirm_max_age)
    except ValueError as exc:
        raise ConfigError(f"{source}: 'web.confirm_max_age' = {web.confirm_max_age!r} is not "
                          "a duration; write a number and a unit, e.g. '48h' or '2d'") from exc
    if seconds < 60:
        raise ConfigError(f"{source}: 'web.confirm_max_age' must be at least '1m'")
    for key, value in (("articles.max_bytes", cfg.articles.max_bytes),
                       ("articles.max_depth", cfg.articles.max_depth)):
        if value < 1:
            raise ConfigError(f"{source}: '{key}' must be at least 1, got {value}")


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
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _check_url(key: str, value: str, source: str, *, site: bool = False) -> None:
    """An absolute http(s) URL with a host and nothing feeds cannot carry; for the site's
    base URL also no query or fragment (page and feed paths are appended to it)."""
    fix = "e.g. 'https://news.example.org/'" if site else "e.g. 'https://hub.example.org/'"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigError(f"{source}: '{key}' = {value!r} is not a valid URL ({exc}); "
                          f"write an absolute http(s) URL, {fix}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}: '{key}' = {value!r} must be an absolute http(s) URL, "
                          f"{fix}")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ConfigError(f"{source}: '{key}' = {value!r} contains spaces or control "
                          "characters; percent-encode them (a space is %20)")
    if site and (parts.query or parts.fragment or "?" in value or "#" in value):
        raise ConfigError(f"{source}: '{key}' = {value!r} must not have a query or fragment "
                          "(feed and page paths are appended to it)")


# The ISO 639-1 codes: every two-letter tag langcodes accepts, checked without loading its
# registry (which takes longer than a small site takes to build).
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik in io is it iu iw ja ji jv jw ka kg ki kj kk kl km kn ko kr ks ku kv
    kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mo mr ms mt my na nb nd ne ng nl nn no nr
    nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq
    sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi
    yo za zh zu"""
_TWO_LETTER_LANGUAGES = frozenset(_ISO_639_1.split())


def language_tag_is_valid(tag: str) -> bool:
    """True for a registered BCP 47 language tag ("en", "de-CH", "zh-Hant-TW")."""
    if tag in _TWO_LETTER_LANGUAGES:
        return True
    if not _LANGUAGE.fullmatch(tag):
        return False
    import langcodes

    return bool(langcodes.tag_is_valid(tag))


def _validate(cfg: Config, source: str) -> None:
    try:
        cfg.site.tz  # noqa: B018 - validates the zone name
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"{source}: 'site.timezone' = {cfg.site.timezone!r} is not a known IANA zone "
            "(use a name such as 'Europe/Berlin' or 'UTC')"
        ) from exc
    try:
        cfg.site.publish_time  # noqa: B018
    except ValueError as exc:
        raise ConfigError(
            f"{source}: 'site.default_time' = {cfg.site.default_time!r} must be HH:MM"
        ) from exc
    _check_url("site.base_url", cfg.site.base_url, source, site=True)
    if not cfg.site.base_url.endswith("/"):
        raise ConfigError(f"{source}: 'site.base_url' must end with '/'")
    if cfg.feeds.websub_hub:
        _check_url("feeds.websub_hub", cfg.feeds.websub_hub, source)
    language = cfg.site.language
    if language and not language_tag_is_valid(language):
        raise ConfigError(
            f"{source}: 'site.language' = {language!r} is not a language code; write an ISO 639 "
            "code, optionally with a region, such as 'en', 'de' or 'en-GB' (or \"\" for none)"
        )
    for key, value in (("feeds.size", cfg.feeds.size), ("feeds.archive_size",
                                                          cfg.feeds.archive_size)):
        if value < 1:
            raise ConfigError(f"{source}: '{key}' must be at least 1, got {value}")
    if cfg.site.per_page < 1:
        raise ConfigError(f"{source}: 'site.per_page' must be at least 1, got {cfg.site.per_page}")
    for key, picture in (("site.logo", cfg.site.logo), ("site.icon", cfg.site.icon)):
        if picture and "://" in picture:
            _check_url(key, picture, source)
    if cfg.feeds.podcast and not cfg.site.logo:
        raise ConfigError(f"{source}: 'feeds.podcast' needs 'site.logo' (Apple Podcasts requires "
                          "a square image of 1400 to 3000 pixels); set logo = \"media/cover.jpg\"")
    if cfg.delivery.smtp.security not in ("starttls", "tls", "none"):
        raise ConfigError(
            f"{source}: 'delivery.smtp.security' = {cfg.delivery.smtp.security!r} must be "
            "'starttls', 'tls' or 'none'"
        )
    _check_retry_keys(cfg, source)
    _check_cluster(cfg, source)
    _validate_deliverability(cfg, source)
    if cfg.digest.default_cadence not in ("daily", "weekly"):
        raise ConfigError(
            f"{source}: 'digest.default_cadence' must be 'daily' or 'weekly', "
            f"got {cfg.digest.default_cadence!r}"
        )
    _validate_hardening(cfg, source)


def _check_cluster(cfg: Config, source: str) -> None:
    c = cfg.cluster
    if c.failover_seconds < 1:
        raise ConfigError(f"{source}: 'cluster.failover_seconds' ({c.failover_seconds:g} s) is "
                          "too short: a standby polls three times within it; give at least 1 "
                          "(default 15)")
    if c.lease_seconds < 3:
        raise ConfigError(f"{source}: 'cluster.lease_seconds' ({c.lease_seconds:g} s) is too "
                          "short: a worker renews its claims every third of it; give at least "
                          "3 (default 60)")
    if not 1 <= c.claim_batch <= 10_000:
        raise ConfigError(f"{source}: 'cluster.claim_batch' = {c.claim_batch} must be between "
                          "1 and 10000 (default 20)")


def _check_retry_keys(cfg: Config, source: str) -> None:
    d = cfg.delivery
    if d.retry_max_interval < d.retry_first:
        raise ConfigError(
            f"{source}: 'delivery.retry_max_interval' ({d.retry_max_interval:g} s) is shorter "
            f"than 'delivery.retry_first' ({d.retry_first:g} s); make it at least as long")
    if d.retry_give_up < d.retry_first:
        raise ConfigError(
            f"{source}: 'delivery.retry_give_up' ({d.retry_give_up:g} s) is shorter than "
            f"'delivery.retry_first' ({d.retry_first:g} s): nothing would ever be retried; "
            'make it longer (default "4d")')


def _deprecated_delivery_keys(data: dict[str, Any], source: str) -> None:
    """The former retry keys are accepted (a config written for an older feedpub still
    loads) but ignored: their values, as shipped (2 s, 5 tries), gave up on greylisted mail
    within half a minute. Each one is logged, naming the key that replaces it."""
    table = data.get("delivery")
    if not isinstance(table, dict):
        return
    replaced = {"retry_base": ("retry_first", '"5m"', "the wait before the first retry"),
                "max_attempts": ("retry_give_up", '"4d"', "how long a deferred message is "
                                                          "retried")}
    for old, (new, example, meaning) in replaced.items():
        if old in table:
            logging.getLogger("feedpub.config").warning(
                "%s: 'delivery.%s' is deprecated and ignored: write 'delivery.%s' instead "
                "(%s, such as %s)", source, old, new, meaning, example)


def _validate_deliverability(cfg: Config, source: str) -> None:
    """[delivery] return_path, [delivery.dkim] and [bounces]."""
    path = cfg.delivery.return_path
    if path and (path.count("@") != 1 or "+" in path or not path.isascii()
                 or any(c.isspace() for c in path)):
        raise ConfigError(f"{source}: 'delivery.return_path' = {path!r} must be a plain ASCII "
                          "address without '+', e.g. 'bounces@news.example.org'")
    dkim = cfg.delivery.dkim
    if dkim.key_file and not dkim.selector:
        raise ConfigError(f"{source}: 'delivery.dkim.selector' is empty; set the selector "
                          "published in DNS, e.g. selector = \"feedpub1\"")
    if bool(dkim.dual_key_file) != bool(dkim.dual_selector):
        raise ConfigError(f"{source}: 'delivery.dkim.dual_selector' and 'dual_key_file' go "
                          "together; set both or neither")
    bounces = cfg.bounces
    if bounces.imap_url:
        parts = urlsplit(bounces.imap_url)
        if parts.scheme != "imaps" or not parts.hostname or not parts.username:
            raise ConfigError(f"{source}: 'bounces.imap_url' = {bounces.imap_url!r} must look "
                              "like 'imaps://user@imap.example.org:993/INBOX' (TLS only)")
    if bounces.maildir and bounces.imap_url:
        raise ConfigError(f"{source}: set 'bounces.maildir' or 'bounces.imap_url', not both")
    if bounces.interval < 0 or bounces.bounce_reset < 1 or not 0 < bounces.soft_score <= 1:
        raise ConfigError(f"{source}: [bounces] needs interval >= 0, bounce_reset >= 1 and "
                          "0 < soft_score <= 1")


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
    _deprecated_delivery_keys(data, source)
    _validate(cfg, source)
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
