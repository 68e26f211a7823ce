"""What `feedpub check`, `digest preview`, `digest send` and `feedpub run` warn about before
mail goes out: dishonest one-click links, a missing postal address, a DKIM key that does not
load or does not match the sender's domain."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Config
from ..errors import FeedpubError


def store_exists(cfg: Config) -> bool:
    """False for an SQLite file not created yet (a server database is taken to exist)."""
    url = cfg.database_url
    return not url.startswith("sqlite:///") or Path(url[len("sqlite:///"):]).exists()


def _has_subscribers(cfg: Config) -> bool:
    """Whether anyone is (or is about to be) subscribed; never creates the database."""
    if not store_exists(cfg):
        return False
    from ..store import open_store

    with open_store(cfg) as store:
        counts = store.count_subscribers()
    return counts["active"] + counts["pending"] > 0


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def postal_warning(cfg: Config) -> list[str]:
    if cfg.digest.postal_address.strip():
        return []
    return ["[digest] postal_address is empty: the digest footer shows no postal address "
            "(CAN-SPAM requires one); set e.g. postal_address = \"Example Ltd, 1 Main St, "
            "Springfield\" in config.toml"]


def honesty_warnings(cfg: Config) -> list[str]:
    """Warnings that matter once there are subscribers."""
    if not _has_subscribers(cfg):
        return []
    warnings = []
    parts = urlsplit(cfg.site.base_url)
    if parts.scheme != "https" or is_loopback(parts.hostname or ""):
        warnings.append(
            f"[site] base_url = {cfg.site.base_url!r} is not a public https address, but "
            "subscribers exist: their unsubscribe and confirm links will not work from a "
            "mailbox, and one-click unsubscribe (List-Unsubscribe-Post, RFC 8058) is left out; "
            "set base_url to the site's public https URL")
    return warnings + postal_warning(cfg)


def dkim_problems(cfg: Config) -> tuple[list[str], list[str]]:
    """(problems, notes) of [delivery.dkim]: the keys load, the domain matches from_address."""
    if not cfg.delivery.dkim.enabled:
        return [], []
    from ..delivery.dkim import configured_keys

    try:
        keys = configured_keys(cfg)
    except FeedpubError as exc:
        return [str(exc)], []
    sender_domain = cfg.digest.from_address.rpartition("@")[2].lower()
    problems, notes = [], []
    for key in keys:
        domain = key.domain.lower()
        if sender_domain != domain and not sender_domain.endswith("." + domain):
            problems.append(
                f"[delivery.dkim] domain {domain!r} does not match the domain of [digest] "
                f"from_address ({sender_domain!r}): DMARC needs them aligned; set domain = "
                f"\"{sender_domain}\" (or leave it empty)")
        notes.append(f"DKIM key {key.selector} ({key.algorithm.decode()}) loads; publish "
                     f"{key.dns_name()} TXT \"{key.dns_record()[:40]}...\"")
    return problems, notes
