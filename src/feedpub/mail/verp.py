"""VERP return paths: `bounces+<token>@domain`, the token naming a subscriber and an issue.

The token is `<subscriber>-<issue>-<mac>`: the mac is an HMAC-SHA256 of both numbers under the
site's secret key, cut to 16 hex digits, so a forged bounce cannot name anyone. Lower-case hex
and digits only: some relays fold the case of local parts. Pure, apart from reading the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ..config import Config
from .tokens import secret_key

_TOKEN = re.compile(r"(\d{1,18})-(\d{1,18})-([0-9a-f]{16})")


@dataclass(frozen=True)
class VerpClaim:
    """Who a bounce is about, as the return path it came back to says."""

    subscriber_id: int
    issue_id: int


def _mac(key: str, subscriber_id: int, issue_id: int) -> str:
    data = f"verp:{subscriber_id}:{issue_id}".encode("ascii")
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()[:16]


def make_token(key: str, subscriber_id: int, issue_id: int) -> str:
    return f"{subscriber_id}-{issue_id}-{_mac(key, subscriber_id, issue_id)}"


def read_token(key: str, token: str) -> VerpClaim | None:
    """The claim of a genuine token; None for a forged, altered or malformed one."""
    match = _TOKEN.fullmatch(token.strip().lower())
    if match is None:
        return None
    subscriber_id, issue_id = int(match[1]), int(match[2])
    if not hmac.compare_digest(match[3], _mac(key, subscriber_id, issue_id)):
        return None
    return VerpClaim(subscriber_id, issue_id)


def return_path(cfg: Config, subscriber_id: int, issue_id: int) -> str:
    """The envelope sender of one message: VERP when `[delivery] return_path` is set."""
    base = cfg.delivery.return_path
    if not base:
        return cfg.digest.from_address
    local, _, domain = base.rpartition("@")
    return f"{local}+{make_token(secret_key(cfg), subscriber_id, issue_id)}@{domain}"


def claim_from_address(cfg: Config, address: str) -> VerpClaim | None:
    """Read the token of a `local+token@domain` address made by `return_path`, if genuine."""
    base = cfg.delivery.return_path
    if not base or "@" not in address:
        return None
    local, _, domain = address.strip().strip("<>").rpartition("@")
    want_local, _, want_domain = base.rpartition("@")
    prefix, plus, token = local.partition("+")
    if not plus or prefix.lower() != want_local.lower() or domain.lower() != want_domain.lower():
        return None
    return read_token(secret_key(cfg), token)
