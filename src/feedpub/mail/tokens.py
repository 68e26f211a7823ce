"""Signed tokens for confirm / unsubscribe / preferences links.

Only confirm links expire (`[web] confirm_max_age`). Unsubscribe and preferences links
sit in every digest and in List-Unsubscribe (RFC 8058): they must keep working however old
the message is, so they never expire; they only act on the one subscriber they name.

A token signs the subscriber id *and* a short digest of the address it was made for: ids of
erased subscribers can be reused, and an old link (say, fired by a mail scanner) must never
act on the next person who gets the same id. Links signed before addresses were bound carry
the id alone; they are honoured only for a subscriber that already existed when they were
signed.

A confirm token also carries the nonce the pending subscription had when it was mailed:
confirming clears it and a new sign-up makes a new one, so a confirm link works once, and
never for a later sign-up of the same address.

The signing secret comes from FEEDPUB_SECRET_KEY, or is generated once and kept in
`<data>/secret.key` (mode 0600), so links stay valid across restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin

import orjson
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..config import Config, secret
from ..errors import FeedpubError
from ..fsutil import atomic_write

SECRET_ENV = "FEEDPUB_SECRET_KEY"
PURPOSES = ("confirm", "unsubscribe", "preferences")
EXPIRING = frozenset({"confirm"})  # the purposes whose links expire


class TokenError(FeedpubError):
    """A link token is tampered with, of the wrong kind, or expired."""


def secret_key(cfg: Config) -> str:
    """The signing secret: from the environment, else from (or created in) the data folder."""
    from_env = secret(SECRET_ENV)
    if from_env:
        return from_env
    path: Path = cfg.data_dir / "secret.key"
    try:
        st = os.stat(path)
        return _key_file(str(path), st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        atomic_write(path, key.encode("ascii"), mode=0o600)
        # Another process may have raced us; whatever is on disk now wins.
        return path.read_text(encoding="ascii").strip()


@lru_cache(maxsize=16)
def _key_file(path: str, mtime_ns: int, size: int) -> str:
    """The key kept in `path`, read once per version of the file (links are signed per
    recipient, so a send would otherwise read it twice per message)."""
    return Path(path).read_text(encoding="ascii").strip()


@lru_cache(maxsize=64)
def _signing(key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=f"feedpub-{purpose}")


class _FastSigner:
    """What `URLSafeTimedSerializer.dumps` does for a small JSON payload, with the derived
    key and its HMAC state made once: a send signs two links per recipient, and itsdangerous
    derives the key and walks a dozen calls for each. The tokens are the same bytes (a test
    checks) and are read back by itsdangerous."""

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer()
        self._mac = hmac.new(signer.derive_key(), digestmod=hashlib.sha1)
        self._sep = signer.sep if isinstance(signer.sep, bytes) else signer.sep.encode("ascii")

    def dumps(self, payload: list[object], stamp: int) -> str:
        # The JSON itsdangerous writes (compact, characters as they are), made by orjson in
        # a tenth of the time; what orjson refuses (an int beyond 64 bits) by json.
        try:
            data = orjson.dumps(payload)
        except orjson.JSONEncodeError:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        compressed = _compressed(data)
        body = b"." + _b64(compressed) if compressed is not None else _b64(data)
        value = body + self._sep + _b64(stamp.to_bytes(max(1, (stamp.bit_length() + 7) // 8),
                                                       "big"))
        mac = self._mac.copy()
        mac.update(value)
        return (value + self._sep + _b64(mac.digest())).decode("ascii")


_PROBED = 100  # payloads up to this many bytes are probed before they are compressed


def _compressed(data: bytes) -> bytes | None:
    """`zlib.compress(data)` when that saves more than a byte (as itsdangerous decides it),
    else None. A link's payload (an id, a digest, maybe a nonce) never compresses, and
    `zlib.compress` sets up about 256 KB of state to say so (about 30 µs, twice a message).
    A short payload is first compressed with a 512-byte window and the smallest state (2 µs):
    on an input this short both find the same matches and make as many bytes (checked on
    200,000 link payloads), so only a payload the probe finds compressible is compressed
    again, as itsdangerous does, for the same token."""
    if len(data) <= _PROBED:
        probe = zlib.compressobj(6, zlib.DEFLATED, 9, 1)
        if len(probe.compress(data)) + len(probe.flush()) >= len(data) - 1:
            return None
    compressed = zlib.compress(data)
    return compressed if len(compressed) < len(data) - 1 else None


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=64)
def _fast(key: str, purpose: str) -> _FastSigner:
    return _FastSigner(_signing(key, purpose))


def _serializer(cfg: Config, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _signing(secret_key(cfg), purpose)


@lru_cache(maxsize=64)
def _page_url(base_url: str, purpose: str) -> str:
    return urljoin(base_url, purpose) + "?token="


def address_digest(email: str) -> str:
    """A short digest of a stored (normalized) address, bound into every link token."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class LinkClaim:
    """What a valid token says: the subscriber id, the address digest, when it was signed."""

    subscriber_id: int
    address: str | None  # None: a link signed before tokens carried the address
    signed: datetime  # tz-aware UTC, whole seconds
    nonce: str | None = None  # confirm links: the pending subscription's nonce

    def names(self, email: str, created: datetime) -> bool:
        """True when the token was made for this subscriber record (address and id)."""
        if self.address is not None:
            return hmac.compare_digest(self.address, address_digest(email))
        return created.replace(microsecond=0) <= self.signed


def make_token(cfg: Config, purpose: str, subscriber_id: int, email: str,
               nonce: str | None = None) -> str:
    """Sign `subscriber_id` and the digest of its stored address `email` for one purpose
    (and, for a confirm link, the pending subscription's `nonce`)."""
    payload: list[object] = [subscriber_id, address_digest(email)]
    if nonce is not None:
        payload.append(nonce)
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _fast(secret_key(cfg), purpose).dumps(payload, int(time.time()))


def read_token(cfg: Config, purpose: str, token: str,
               max_age_seconds: int | None = None) -> LinkClaim:
    """Return what a valid token claims, or raise TokenError.

    Confirm tokens older than `max_age_seconds` (default `[web] confirm_max_age`) are
    refused; the other purposes never expire. The caller checks the claim against the
    subscriber's current record (`LinkClaim.names`).
    """
    seconds = cfg.web.confirm_max_age_seconds if max_age_seconds is None else max_age_seconds
    max_age = seconds if purpose in EXPIRING else None
    try:
        value, signed = _serializer(cfg, purpose).loads(token, max_age=max_age,
                                                        return_timestamp=True)
    except SignatureExpired as exc:
        raise TokenError(
            f"this {purpose} link has expired (older than {describe_age(seconds)}); "
            "request a new one"
        ) from exc
    except BadSignature as exc:
        raise TokenError(
            f"this {purpose} link is not valid (it was altered or cut short); "
            "use the full link from the email"
        ) from exc
    if _is_id(value):
        return LinkClaim(value, None, signed)
    if (isinstance(value, list) and len(value) in (2, 3) and _is_id(value[0])
            and all(isinstance(v, str) for v in value[1:])):
        return LinkClaim(value[0], value[1], signed, value[2] if len(value) == 3 else None)
    raise TokenError(f"this {purpose} link is not valid")


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def link(cfg: Config, purpose: str, subscriber_id: int, email: str,
         nonce: str | None = None) -> str:
    """Absolute URL of the page for `purpose`, carrying a signed token for that subscriber."""
    # The token's alphabet (URL-safe base64 and ".") needs no escaping in a query.
    return _page_url(cfg.site.base_url, purpose) + make_token(cfg, purpose, subscriber_id, email,
                                                              nonce)


def describe_age(seconds: int) -> str:
    """"48 hours", "2 days", "30 minutes": a link's lifetime in words."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
