"""Checks of a parsed configuration that its types alone cannot make: URLs, languages,
limits, keys that changed meaning. Each error names the key and the fix."""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError

from ..errors import ConfigError
from .durations import duration_seconds
from .sections import Config


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


def validate_config(cfg: Config, source: str) -> None:
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


def deprecated_delivery_keys(data: dict[str, Any], source: str) -> None:
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
