"""WebSub publisher side: tell the hub which feed URLs changed after a rebuild.

Pings never hold up a build: `HubPinger` queues the changed URLs and a background thread
posts them (one request per URL, as hubs expect, several at once), merging URLs that pile up
while a slow hub is being waited for. Retries stop as soon as the daemon is stopping, and
closing the pinger waits only briefly: a hub that does not answer cannot delay shutdown.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlencode

from .. import __version__
from ..logfmt import log_event
from .static import content_type_for

log = logging.getLogger("feedpub.websub")

MAX_PARALLEL = 8  # concurrent pings of one batch


def changed_feed_urls(base_url: str, written: Iterable[str]) -> list[str]:
    """Absolute URLs of the feed files among the paths a build wrote."""
    return [base_url + path for path in written if content_type_for(path)[1]]


def _ping_one(hub: str, url: str, *, attempts: int, timeout: float, backoff: float,
              stop: threading.Event) -> bool:
    """POST hub.mode=publish for one URL, retrying failures until `stop` is set."""
    body = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            hub, data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "User-Agent": f"feedpub/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status, reason = exc.code, str(exc)
        except (urllib.error.URLError, OSError) as exc:
            status, reason = 0, str(exc)
        else:
            reason = ""
        if 200 <= status < 300:
            log_event(log, "websub_ping", hub=hub, url=url, status=status, attempt=attempt)
            return True
        retryable = status == 0 or status == 429 or status >= 500
        log_event(log, "websub_ping_failed", level=logging.WARNING, hub=hub, url=url,
                  status=status, attempt=attempt, reason=reason)
        if not retryable or attempt == attempts or stop.wait(backoff * 2 ** (attempt - 1)):
            return False
    return False


def ping_hub(hub: str, urls: Iterable[str], *, attempts: int = 3, timeout: float = 10.0,
             backoff: float = 1.0, stop: threading.Event | None = None) -> list[str]:
    """Ping the hub for each URL (up to MAX_PARALLEL at once); returns the URLs not accepted.

    Each URL is tried at most `attempts` times; once `stop` is set no retry is started. The
    worker threads are daemon threads, so a hub that never answers cannot keep the process
    alive at exit."""
    stop = stop or threading.Event()
    pending = list(dict.fromkeys(urls))
    failed: list[str] = []
    lock = threading.Lock()
    slots = threading.Semaphore(MAX_PARALLEL)

    def worker(url: str) -> None:
        try:
            if stop.is_set() or not _ping_one(hub, url, attempts=attempts, timeout=timeout,
                                              backoff=backoff, stop=stop):
                with lock:
                    failed.append(url)
        finally:
            slots.release()

    threads = []
    for url in pending:
        slots.acquire()
        thread = threading.Thread(target=worker, args=(url,), name="feedpub-websub-ping",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return [url for url in pending if url in failed]


class HubPinger:
    """A queue of feed URLs to announce to one hub, posted by a background thread. `stop` is
    the daemon's stopping event: once set, nothing new is sent and no retry starts."""

    def __init__(self, hub: str, stop: threading.Event, *, attempts: int = 3,
                 timeout: float = 10.0, backoff: float = 1.0) -> None:
        self.hub = hub
        self._stop = stop
        self.attempts, self.timeout, self.backoff = attempts, timeout, backoff
        self._pending: dict[str, None] = {}  # insertion-ordered set: repeats merge
        self._busy = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, urls: Iterable[str]) -> None:
        """Queue URLs for a ping and return at once."""
        with self._wake:
            if self._stop.is_set():
                return
            self._pending.update(dict.fromkeys(urls))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="feedpub-websub",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop.is_set():
                    self._wake.wait()
                if self._stop.is_set():
                    return
                batch, self._pending = list(self._pending), {}
                self._busy = True
            try:
                ping_hub(self.hub, batch, attempts=self.attempts, timeout=self.timeout,
                         backoff=self.backoff, stop=self._stop)
            except Exception:  # noqa: BLE001 - a ping problem must not end the pinger
                log.debug("websub ping batch failed", exc_info=True)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued URL was tried; False if that took longer than `timeout`."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 3.0) -> None:
        """Stop pinging: no new retries; wait at most `timeout` s for pings in flight."""
        self._stop.set()
        with self._wake:
            dropped = len(self._pending)
            self._pending = {}
            self._wake.notify_all()
        if dropped:
            log_event(log, "websub_ping_dropped", level=logging.WARNING, hub=self.hub,
                      urls=dropped)
        if self._thread is not None:
            self._thread.join(timeout)
