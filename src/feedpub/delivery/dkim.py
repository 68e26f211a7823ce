"""DKIM signatures (RFC 6376, Ed25519 per RFC 8463) for the exact bytes handed to the server.

dkimpy does the parsing and relaxed/relaxed canonicalisation and checks signatures in the
tests; the key operation itself goes through `cryptography` (OpenSSL), because dkimpy's
pure-Python RSA costs tens of milliseconds per message and every copy is signed on its own
(the To header and the links differ). Keys are read once per `Signer`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from dkim import hash_headers, rfc822_parse
from dkim.canonicalization import CanonicalizationPolicy

from ..config import Config
from ..errors import ConfigError

# Lower case, as dkimpy compares them. List-Unsubscribe-Post is signed even when absent, so
# nobody can add it on the way.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
)
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
MIN_RSA_BITS = 2048

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class DkimKey:
    """One signing key and where its public half is published (<selector>._domainkey.<domain>)."""

    domain: str
    selector: str
    key: PrivateKey

    @property
    def algorithm(self) -> bytes:
        return b"ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) \
            else b"rsa-sha256"

    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record's text to publish at `dns_name()`."""
        public = self.key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def load_key(path: Path, domain: str, selector: str) -> DkimKey:
    """Read a PEM private key (RSA of 2048 bits or more, or Ed25519); errors name the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the DKIM key ({exc.strerror}); create one with "
                          "`feedpub dkim keygen --selector S` or fix [delivery.dkim] key_file") \
            from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({exc}); create one "
                          "with `feedpub dkim keygen --selector S`") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{path}: RSA key of {key.key_size} bits; DKIM needs at least "
                              f"{MIN_RSA_BITS} (make a new one with `feedpub dkim keygen`)")
    elif not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: a {type(key).__name__}; DKIM keys are RSA or Ed25519")
    return DkimKey(domain=domain, selector=selector, key=key)


def generate_key(path: Path, domain: str, selector: str, algorithm: str = "rsa") -> DkimKey:
    """Write a new private key to `path` (mode 0600, never over an existing file)."""
    key: PrivateKey = (ed25519.Ed25519PrivateKey.generate() if algorithm == "ed25519"
                       else rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: already exists; remove it or choose another --out "
                          "(a published key must not be overwritten)") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return DkimKey(domain=domain, selector=selector, key=key)


def signing_domain(cfg: Config) -> str:
    return cfg.delivery.dkim.domain or cfg.digest.from_address.rpartition("@")[2].lower()


def configured_keys(cfg: Config) -> list[DkimKey]:
    """The keys of [delivery.dkim] (none when signing is off)."""
    dkim = cfg.delivery.dkim
    domain = signing_domain(cfg)
    pairs = [(dkim.selector, dkim.key_file), (dkim.dual_selector, dkim.dual_key_file)]
    return [load_key(cfg.path(Path(file)), domain, selector) for selector, file in pairs if file]


class _Collect:
    """A stand-in hasher for dkimpy's `hash_headers`: keeps the bytes for OpenSSL to sign."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def update(self, data: bytes) -> None:
        self.parts.append(data)


def _fold_names(names: Sequence[bytes]) -> bytes:
    return b":\r\n ".join(b":".join(names[i:i + 5]) for i in range(0, len(names), 5))


def _fold_b64(value: bytes) -> bytes:
    return b"\r\n ".join(value[i:i + 72] for i in range(0, len(value), 72))


def signature_header(key: DkimKey, headers: Sequence[tuple[bytes, bytes]], body_hash: bytes,
                     stamp: int) -> bytes:
    """The complete `DKIM-Signature:` field (CRLF-terminated) for parsed headers."""
    present = {name.lower() for name, _ in headers}
    signed = [h for h in SIGNED_HEADERS if h in present] + [b"list-unsubscribe-post"] * (
        b"list-unsubscribe-post" not in present)
    value = (b" v=1; a=" + key.algorithm + b"; c=relaxed/relaxed; d=" + key.domain.encode()
             + b"; s=" + key.selector.encode() + b";\r\n t=" + str(stamp).encode()
             + b";\r\n h=" + _fold_names(signed) + b";\r\n bh=" + body_hash + b";\r\n b=")
    collected = _Collect()
    hash_headers(collected, _POLICY, _POLICY.canonicalize_headers(list(headers)), signed,
                 (b"DKIM-Signature", value), None)
    data = b"".join(collected.parts)
    if isinstance(key.key, rsa.RSAPrivateKey):
        signature = key.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.key.sign(hashlib.sha256(data).digest())
    return b"DKIM-Signature:" + value + _fold_b64(base64.b64encode(signature)) + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalisation of a CRLF body, as dkimpy's
    `Relaxed.canonicalize_body` (a test checks they agree), with bytes.replace instead of a
    dozen regex passes: every copy is canonicalised on its own and the body is most of it."""
    return _body_end(relaxed_lines(body))


def _body_end(body: bytes) -> bytes:
    """The end-of-body rules: no empty lines at the end, and a final line end."""
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    if body == b"\r\n" or not body:
        return b""
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def relaxed_lines(data: bytes) -> bytes:
    """The line rules of relaxed body canonicalisation (WSP runs to one space, no WSP before
    a line end) without the end-of-body rules: for one fragment of a body."""
    data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data.replace(b" \r\n", b"\r\n")


class BodyCanon:
    """Relaxed canonical form of a body given as fragments, each static fragment (the same
    object for every copy of an issue) canonicalised once. Canonicalisation works line by
    line, so fragments join exactly, unless a space ends one fragment and a space or line
    end starts the next: then the joined body is canonicalised whole."""

    def __init__(self, large: int = 256) -> None:
        self.large = large  # fragments at least this long are worth remembering
        self._known: dict[int, tuple[bytes, bytes]] = {}

    def canonical(self, fragments: Sequence[bytes]) -> bytes:
        out: list[bytes] = []
        previous = b""
        for fragment in fragments:
            done = self._one(fragment)
            if previous.endswith(b" ") and done.startswith((b" ", b"\r\n")):
                return relaxed_body(b"".join(fragments))
            if done:
                out.append(done)
                previous = done
        return _body_end(b"".join(out))  # only the end-of-body rules are left to apply

    def _one(self, fragment: bytes) -> bytes:
        if len(fragment) < self.large:
            return relaxed_lines(fragment)
        known = self._known.get(id(fragment))
        if known is not None and known[0] is fragment:
            return known[1]
        done = relaxed_lines(fragment)
        self._known[id(fragment)] = (fragment, done)  # the fragment kept: its id stays valid
        return done


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers (parsed by dkimpy) and body of a CRLF message; only the header block is
    handed to the parser, which would otherwise split the whole message into lines."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        headers, body = rfc822_parse(message)
        return headers, body
    headers, _ = rfc822_parse(head + b"\r\n\r\n")
    return headers, body


class Signer:
    """Signs message bytes with every configured key; the newest signature comes first."""

    def __init__(self, keys: Sequence[DkimKey]) -> None:
        self.keys = tuple(keys)
        self.bodies = BodyCanon()

    def sign(self, message: bytes, stamp: int | None = None) -> bytes:
        if not self.keys:
            return message
        headers, body = split_message(message)
        return self._signed(headers, relaxed_body(body), stamp) + message

    def sign_parts(self, head: bytes, body: Sequence[bytes], stamp: int | None = None) -> bytes:
        """`sign(head + b"".join(body))` for a header block (ending with its empty line) and
        body fragments whose static ones recur: those are canonicalised once."""
        return b"".join(self.signed_parts(head, body, stamp))

    def signed_parts(self, head: bytes, body: Sequence[bytes], stamp: int | None = None
                     ) -> list[bytes]:
        """`sign_parts` as fragments: the signatures, the header block, then `body` as
        given (its shared fragments stay the same objects)."""
        if not self.keys:
            return [head, *body]
        headers, _ = rfc822_parse(head)
        return [self._signed(headers, self.bodies.canonical(body), stamp), head, *body]

    def _signed(self, headers: Sequence[tuple[bytes, bytes]], canonical_body: bytes,
                stamp: int | None) -> bytes:
        body_hash = base64.b64encode(hashlib.sha256(canonical_body).digest())
        when = int(time.time()) if stamp is None else stamp
        return b"".join(signature_header(key, headers, body_hash, when) for key in self.keys)
