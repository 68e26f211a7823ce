"""Signed tokens for confirm / unsubscribe / preferences links.

Only confirm links expire (`[web] token_max_age_days`). Unsubscribe and preferences links
sit in every digest and in List-Unsubscribe (RFC 8058): they must keep working however old
the message is, so they never expire; they only act on the one subscriber they name.

The signing secret comes from FEEDPUB_SECRET_KEY, or is generated once and kept in
`<data>/secret.key` (mode 0600), so links stay valid across restarts.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlencode, urljoin

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .config import Config, secret
from .errors import FeedpubError
from .fsutil import atomic_write

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
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(48)
        atomic_write(path, key.encode("ascii"), mode=0o600)
        # Another process may have raced us; whatever is on disk now wins.
        return path.read_text(encoding="ascii").strip()


def _serializer(cfg: Config, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key(cfg), salt=f"feedpub-{purpose}")


def make_token(cfg: Config, purpose: str, subscriber_id: int) -> str:
    """Sign `subscriber_id` for one purpose."""
    return str(_serializer(cfg, purpose).dumps(subscriber_id))


def read_token(cfg: Config, purpose: str, token: str, max_age_days: int | None = None) -> int:
    """Return the subscriber id in a valid token, or raise TokenError.

    Confirm tokens older than `max_age_days` (default `[web] token_max_age_days`) are
    refused; the other purposes never expire.
    """
    days = cfg.web.token_max_age_days if max_age_days is None else max_age_days
    max_age = days * 86400 if purpose in EXPIRING else None
    try:
        value = _serializer(cfg, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError(
            f"this {purpose} link has expired (older than {days} days); request a new one"
        ) from exc
    except BadSignature as exc:
        raise TokenError(
            f"this {purpose} link is not valid (it was altered or cut short); "
            "use the full link from the email"
        ) from exc
    if not isinstance(value, int):
        raise TokenError(f"this {purpose} link is not valid")
    return value


def link(cfg: Config, purpose: str, subscriber_id: int) -> str:
    """Absolute URL of the page for `purpose`, carrying a signed token."""
    token = make_token(cfg, purpose, subscriber_id)
    return urljoin(cfg.site.base_url, purpose) + "?" + urlencode({"token": token})
