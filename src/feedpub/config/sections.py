"""The configuration's sections: typed, frozen dataclasses with their defaults, and `Config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .durations import Seconds, duration_seconds

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
    pages: bool = True  # false: feeds only (no HTML pages, sitemap, robots.txt or 404 page)

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
