"""Serve the files of public/ with validators, gzip and a hot in-memory cache.

Each file is read once and kept with its strong ETag (content hash), Last-Modified and, on
first demand, its gzip bytes (keyed by ETag). A request costs one `stat` to notice rebuilds;
a 304 never reads the file. Paths that leave public/ (`..`, encoded or not) are refused.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.types import Receive, Scope, Send

from ..feeds.entries import ATOM
from ..feeds.plan import ARCHIVE_DIR, FEED_CONTENT_TYPES, SUBSCRIPTION_PATHS, TAG_DIR
from .security import SECURITY_HEADERS

# The Atom subscription feed is atom.xml: its suffix does not tell its format.
SPECIAL_FEEDS = {SUBSCRIPTION_PATHS[ATOM]: FEED_CONTENT_TYPES[".atom"]}
FEED_PATHS = frozenset(SUBSCRIPTION_PATHS.values())
FEED_DIRS = (TAG_DIR, ARCHIVE_DIR)
COMPRESSIBLE = ("text/", "application/rss+xml", "application/atom+xml", "application/feed+json",
                "application/json", "application/xml", "image/svg+xml")
MIN_GZIP_SIZE = 256
# Served by the app's pages, never from public/.
DYNAMIC_PATHS = frozenset(("/subscribe", "/confirm", "/unsubscribe", "/preferences",
                           "/healthz", "/metrics"))
RELPATH_MEMO = 4096


def is_feed_path(relpath: str) -> bool:
    """Whether `relpath` is a file the feed builder writes: a subscription feed, or a feed
    suffix directly under tags/ or archive/. Any other .xml or .json is just a file."""
    if relpath in FEED_PATHS:
        return True
    folder, _, name = relpath.partition("/")
    return (folder in FEED_DIRS and "/" not in name
            and os.path.splitext(name)[1].lower() in FEED_CONTENT_TYPES)


def content_type_for(relpath: str) -> tuple[str, bool]:
    """Media type (with charset for text and feeds) of a public file, and whether it is a
    feed."""
    if is_feed_path(relpath):
        media = SPECIAL_FEEDS.get(relpath) or FEED_CONTENT_TYPES[
            os.path.splitext(relpath)[1].lower()]
        return f"{media.split(';')[0].strip()}; charset=utf-8", True
    if relpath.lower().endswith(".xml"):
        return "application/xml", False  # XML declares its own encoding
    guessed = mimetypes.guess_type(relpath)[0] or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "image/svg+xml"):
        return f"{guessed}; charset=utf-8", False
    return guessed, False


def safe_relpath(path: str) -> str | None:
    """The public/-relative path for a decoded URL path, or None if it could escape."""
    if not path.startswith("/") or "\x00" in path or "\\" in path:
        return None
    if path.endswith("/"):
        path += "index.html"
    parts = path[1:].split("/")
    for part in parts:
        if part in ("", ".", "..") or part.startswith("."):
            return None
    return "/".join(parts)


@dataclass
class CachedFile:
    """One public file as served: bytes, validators and ready-made headers."""

    path: Path
    body: bytes
    etag: str
    gzip_etag: str
    mtime_ns: int
    inode: int
    size: int
    mtime: int  # whole seconds, as Last-Modified carries
    is_feed: bool
    compressible: bool
    headers: list[tuple[bytes, bytes]]  # everything but length, etag and encoding
    # A 304 carries only what a cache must update (RFC 9110 15.4.5): the stored response
    # keeps its other headers. Fewer headers keep the most frequent answer cheap. One list
    # per representation: [identity, gzip], ETag included.
    not_modified_headers: tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]
    stat_path: str  # `path` as a str, so a lookup's stat does no Path conversion

    def etag_bytes(self, gzipped: bool) -> bytes:
        return self.not_modified_headers[gzipped][0][1]


class FileCache:
    """Keeps public files in memory; `lookup` re-reads a file only when it changed on disk."""

    def __init__(self, root: Path, *, cache_control: str, base_url: str, hub: str = "") -> None:
        self.root = root
        self._root_resolved = root.resolve()
        self.cache_control = cache_control
        self.base_url = base_url
        self.hub = hub
        self._entries: dict[str, CachedFile] = {}
        self._gzip: dict[str, bytes] = {}  # ETag -> compressed bytes
        self._lock = threading.Lock()

    def invalidate(self, relpaths: Iterable[str] | None = None) -> None:
        """Forget some (or all) files, e.g. after a rebuild wrote them."""
        with self._lock:
            keys = list(self._entries) if relpaths is None else list(relpaths)
            for key in keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    self._gzip.pop(entry.gzip_etag, None)

    def lookup(self, relpath: str) -> CachedFile | None:
        """The current version of `relpath`, or None if it is not a servable file."""
        entry = self._entries.get(relpath)
        try:
            st = os.stat(entry.stat_path if entry is not None else self.root / relpath)
        except (FileNotFoundError, NotADirectoryError, PermissionError, OSError):
            if entry is not None:
                self.invalidate([relpath])
            return None
        if entry is not None and entry.mtime_ns == st.st_mtime_ns and entry.inode == st.st_ino \
                and entry.size == st.st_size:
            return entry
        return self._load(relpath, entry.path if entry is not None else self.root / relpath)

    def _load(self, relpath: str, path: Path) -> CachedFile | None:
        try:
            resolved = path.resolve(strict=True)
            if not resolved.is_relative_to(self._root_resolved) or not resolved.is_file():
                return None
            with open(resolved, "rb") as handle:
                st = os.fstat(handle.fileno())
                body = handle.read()
        except OSError:
            return None
        digest = hashlib.sha256(body).hexdigest()[:32]
        media, is_feed = content_type_for(relpath)
        cache_headers = [(b"cache-control", self.cache_control.encode("latin-1"))]
        compressible = media.startswith(COMPRESSIBLE) and len(body) >= MIN_GZIP_SIZE
        if compressible:
            cache_headers.append((b"vary", b"Accept-Encoding"))
        headers = [
            (b"content-type", media.encode()),
            (b"last-modified", formatdate(int(st.st_mtime), usegmt=True).encode()),
            *cache_headers,
        ]
        if is_feed and self.hub:
            self_url = self.base_url + relpath
            headers.append((b"link", f'<{self.hub}>; rel="hub"'.encode("latin-1")))
            headers.append((b"link", f'<{self_url}>; rel="self"'.encode("latin-1")))
        headers.extend(SECURITY_HEADERS)
        entry = CachedFile(path=path, body=body, etag=f'"{digest}"', gzip_etag=f'"{digest}-gz"',
                           mtime_ns=st.st_mtime_ns, inode=st.st_ino, size=st.st_size,
                           mtime=int(st.st_mtime), is_feed=is_feed, compressible=compressible,
                           headers=headers, stat_path=str(path), not_modified_headers=(
                               [(b"etag", f'"{digest}"'.encode()), *cache_headers],
                               [(b"etag", f'"{digest}-gz"'.encode()), *cache_headers]))
        with self._lock:
            old = self._entries.get(relpath)
            if old is not None and old.gzip_etag != entry.gzip_etag:
                self._gzip.pop(old.gzip_etag, None)
            self._entries[relpath] = entry
        return entry

    def gzipped(self, entry: CachedFile) -> bytes:
        """Compressed bytes of `entry`, made once per ETag."""
        data = self._gzip.get(entry.gzip_etag)
        if data is None:
            data = gzip.compress(entry.body, compresslevel=6, mtime=0)
            with self._lock:
                self._gzip[entry.gzip_etag] = data
        return data


def _qvalue(params: str) -> float:
    """The q weight of one Accept-Encoding item's parameters (1 when absent, 0 when malformed,
    so a garbled weight never turns an encoding on)."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def accepts_gzip(value: bytes) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110 12.5.3): names are
    case-insensitive, an explicit gzip / x-gzip weight beats `*`, and q=0 refuses."""
    explicit: float | None = None
    wildcard: float | None = None
    for item in value.decode("latin-1").lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        if name in ("gzip", "x-gzip"):
            explicit = max(explicit or 0.0, _qvalue(params))
        elif name == "*":
            wildcard = _qvalue(params)
    if explicit is not None:
        return explicit > 0
    return wildcard is not None and wildcard > 0


def etag_matches(value: bytes, etag: str) -> bool:
    """If-None-Match weak comparison against the ETag of the representation being sent."""
    text = value.decode("latin-1").strip()
    if text == "*":
        return True
    for candidate in text.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def not_modified_since(value: bytes, mtime: int, now: float | None = None) -> bool:
    """If-Modified-Since: true when the file is not newer than the date. A date later than
    our clock is invalid (RFC 9110 13.1.3) and ignored."""
    try:
        since = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    if since is None:
        return False
    if since.tzinfo is None:  # "-0000": UTC without a claim about local time
        since = since.replace(tzinfo=UTC)
    stamp = since.timestamp()
    return stamp >= mtime and stamp <= (time.time() if now is None else now)


class StaticFiles:
    """ASGI handler: answers GET/HEAD for a public file, or returns False to pass it on."""

    def __init__(self, cache: FileCache, *, on_feed: Callable[[], None] | None = None,
                 on_not_modified: Callable[[], None] | None = None) -> None:
        self.cache = cache
        self.on_feed = on_feed
        self.on_not_modified = on_not_modified
        self._relpaths: dict[str, str | None] = {}  # URL path -> safe_relpath(), memoized

    def _relpath(self, path: str) -> str | None:
        try:
            return self._relpaths[path]
        except KeyError:
            relpath = safe_relpath(path)
            if len(self._relpaths) >= RELPATH_MEMO:  # any path a client sends: keep it bounded
                self._relpaths.clear()
            self._relpaths[path] = relpath
            return relpath

    def _conditional(self, entry: CachedFile,
                     headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, bool]:
        """(gzip chosen, still fresh) for a GET/HEAD of `entry`."""
        inm_lines: list[bytes] = []
        ims = ae = None
        for name, value in headers:
            if name == b"if-none-match":
                inm_lines.append(value)  # repeated lines form one list (RFC 9110 5.3)
            elif name == b"if-modified-since":
                ims = value
            elif name == b"accept-encoding":
                ae = value if ae is None else ae + b", " + value
        use_gzip = entry.compressible and ae is not None and accepts_gzip(ae)
        if len(inm_lines) == 1 and inm_lines[0] == entry.etag_bytes(use_gzip):
            fresh = True  # the common revalidation: exactly the current ETag
        elif inm_lines:
            fresh = etag_matches(b", ".join(inm_lines),
                                 entry.gzip_etag if use_gzip else entry.etag)
        else:
            fresh = ims is not None and not_modified_since(ims, entry.mtime)
        return use_gzip, fresh

    def _count(self, entry: CachedFile, fresh: bool) -> None:
        if entry.is_feed and self.on_feed is not None:
            self.on_feed()
        if fresh and self.on_not_modified is not None:
            self.on_not_modified()

    def not_modified(self, path: str,
                     headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
        """The 304 headers for a GET/HEAD of `path` (a decoded URL path) whose validators
        show the client's copy is current; None for anything else, which then takes the
        full path (`__call__`). Lets the HTTP layer answer the most frequent request of a
        feed server without building an ASGI request."""
        if path in DYNAMIC_PATHS:
            return None
        relpath = self._relpath(path)
        entry = self.cache.lookup(relpath) if relpath is not None else None
        if entry is None:
            return None
        use_gzip, fresh = self._conditional(entry, headers)
        if not fresh:
            return None
        self._count(entry, fresh)
        return entry.not_modified_headers[use_gzip]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        method = scope["method"]
        relpath = self._relpath(scope["path"])
        if relpath is None:
            return False
        entry = self.cache.lookup(relpath)
        if entry is None:
            return False
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD"), (b"content-length", b"0"),
                                       *SECURITY_HEADERS], b"")
            return True
        use_gzip, fresh = self._conditional(entry, scope["headers"])
        self._count(entry, fresh)
        if fresh:
            await _respond(send, 304, entry.not_modified_headers[use_gzip], b"")
            return True
        etag = entry.gzip_etag if use_gzip else entry.etag
        body = self.cache.gzipped(entry) if use_gzip else entry.body
        headers = [(b"content-length", str(len(body)).encode()), (b"etag", etag.encode()),
                   *entry.headers]
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
        await _respond(send, 200, headers, b"" if method == "HEAD" else body)
        return True


async def _respond(send: Callable[[dict[str, object]], Awaitable[None]], status: int,
                   headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
