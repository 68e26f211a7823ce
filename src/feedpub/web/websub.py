"""WebSub publisher side: tell the hub which feed URLs changed after a rebuild.

Pings never hold up a build: `HubPinger` queues the changed URLs and a background thread
posts them (one request per URL, as hubs expect, several at once), merging URLs that pile up
while a slow hub is being waited for. Closing the pinger lets queued pings go out for a few
seconds, then stops them and returns the URLs not yet announced: a hub that does not answer
cannot delay shutdown. `on_settled` hears of every URL the hub accepted or refused for good,
so that the daemon can keep the others in its store until they are (see `daemon.pings`).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from .. import __version__
from ..logfmt import log_event
from .static import content_type_for

log = logging.getLogger("feedpub.websub")

MAX_PARALLEL = 8  # concurrent pings of one batch


def changed_feed_urls(base_url: str, written: Iterable[str]) -> list[str]:
    """Absolute URLs of the feed files among the paths a build wrote."""
    return [base_url + path for path in written if content_type_for(path)[1]]


SENT, RETRY, REFUSED = "sent", "retry", "refused"  # how a ping ended


def _ping_one(hub: str, url: str, *, attempts: int, timeout: float, backoff: float,
              stop: threading.Event) -> str:
    """POST hub.mode=publish for one URL, retrying failures until `stop` is set: SENT, RETRY
    (worth another try later) or REFUSED (the hub said no for good: a 4xx other than 429)."""
    body = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(
                hub, data=body, method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "User-Agent": f"feedpub/{__version__}"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status, reason = exc.code, str(exc)
        except Exception as exc:  # noqa: BLE001 - any other problem is a failed try
            status, reason = 0, f"{type(exc).__name__}: {exc}"
        else:
            reason = ""
        if 200 <= status < 300:
            log_event(log, "websub_ping", hub=hub, url=url, status=status, attempt=attempt)
            return SENT
        retryable = status == 0 or status == 429 or status >= 500
        log_event(log, "websub_ping_failed", level=logging.WARNING, hub=hub, url=url,
                  status=status, attempt=attempt, reason=reason)
        if not retryable:
            return REFUSED
        if attempt == attempts or stop.wait(backoff * 2 ** (attempt - 1)):
            return RETRY
    return RETRY


def ping_hub(hub: str, urls: Iterable[str], *, attempts: int = 3, timeout: float = 10.0,
             backoff: float = 1.0, stop: threading.Event | None = None) -> list[str]:
    """Ping the hub for each URL (up to MAX_PARALLEL at once); returns the URLs not accepted."""
    outcome = ping_outcomes(hub, urls, attempts=attempts, timeout=timeout, backoff=backoff,
                            stop=stop)
    return [url for url, result in outcome.items() if result != SENT]


def ping_outcomes(hub: str, urls: Iterable[str], *, attempts: int = 3, timeout: float = 10.0,
                  backoff: float = 1.0, stop: threading.Event | None = None) -> dict[str, str]:
    """Ping the hub for each URL (up to MAX_PARALLEL at once): how each ended (SENT, RETRY or
    REFUSED), in the order given.

    Each URL is tried at most `attempts` times; once `stop` is set no retry is started. The
    worker threads are daemon threads, so a hub that never answers cannot keep the process
    alive at exit."""
    stop = stop or threading.Event()
    pending = list(dict.fromkeys(urls))
    results: dict[str, str] = {}
    lock = threading.Lock()
    slots = threading.Semaphore(MAX_PARALLEL)

    def worker(url: str) -> None:
        result = RETRY
        try:
            if not stop.is_set():
                result = _ping_one(hub, url, attempts=attempts, timeout=timeout,
                                   backoff=backoff, stop=stop)
        except Exception:  # noqa: BLE001 - reported as a failed ping, never a dead thread
            log.warning("websub ping of %s failed", url, exc_info=True)
        finally:
            slots.release()
        with lock:
            results[url] = result

    threads = []
    for url in pending:
        slots.acquire()
        thread = threading.Thread(target=worker, args=(url,), name="feedpub-websub-ping",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return {url: results.get(url, RETRY) for url in pending}


class HubPinger:
    """A queue of feed URLs to announce to one hub, posted by a background thread.

    It has its own stop event, set only by `close`: the daemon's stopping must not cut off
    the pings it queued just before (see `close`)."""

    def __init__(self, hub: str, *, attempts: int = 3, timeout: float = 10.0,
                 backoff: float = 1.0,
                 on_settled: Callable[[list[str]], None] | None = None) -> None:
        self.hub = hub
        self._on_settled = on_settled
        self._stop = threading.Event()
        self.attempts, self.timeout, self.backoff = attempts, timeout, backoff
        self._pending: dict[str, None] = {}  # insertion-ordered set: repeats merge
        self._batch: list[str] = []  # the URLs being posted now
        self._closing = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, urls: Iterable[str]) -> None:
        """Queue URLs for a ping and return at once (ignored once `close` was called)."""
        with self._wake:
            if self._closing:
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
                self._batch, self._pending = list(self._pending), {}
            try:
                outcome = ping_outcomes(self.hub, self._batch, attempts=self.attempts,
                                        timeout=self.timeout, backoff=self.backoff,
                                        stop=self._stop)
                settled = [url for url, result in outcome.items() if result != RETRY]
                if settled and self._on_settled is not None:
                    self._on_settled(settled)
            except Exception:  # noqa: BLE001 - a ping problem must not end the pinger
                log.warning("websub ping batch failed", exc_info=True)
            finally:
                with self._wake:
                    self._batch = []
                    self._wake.notify_all()

    def _idle(self) -> bool:
        return not self._pending and not self._batch

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued URL was tried; False if that took longer than `timeout`."""
        with self._wake:
            return self._wake.wait_for(self._idle, timeout)

    def close(self, timeout: float = 3.0) -> list[str]:
        """Stop pinging and return the URLs not yet announced.

        Queued and in-flight pings (and their retries) may go on for up to `timeout` seconds;
        then the pinger stops: no new request or retry starts. The URLs of a batch still being
        posted then count as not announced (announcing one twice does no harm)."""
        deadline = time.monotonic() + timeout
        with self._wake:
            self._closing = True
            self._wake.wait_for(self._idle, timeout)
            self._stop.set()
            unsent = list(dict.fromkeys([*self._batch, *self._pending]))
            self._pending = {}
            self._wake.notify_all()
        if unsent:
            log_event(log, "websub_ping_dropped", level=logging.WARNING, hub=self.hub,
                      urls=len(unsent))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return unsent
