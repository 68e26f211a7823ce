"""The daemon's WebSub announcements, kept in the store until the hub has them.

Decide, record, act: the URLs a build changed are recorded in the store (`websub.unsent`)
before they are queued for the hub, and removed once the hub accepted them (or refused them
for good). Whatever is left there (the hub was down, the daemon stopped or was killed) is
posted again by the leader's `websub-retry` job, at its start and every PING_RETRY_SECONDS.
On a PostgreSQL store only the leader announces: every node builds the same articles, so the
leader's own builds cover the change, and the hub hears of it once, not once per node.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable

from ..config import Config
from ..logfmt import log_event
from ..store import Store, open_store
from ..web.websub import HubPinger

log = logging.getLogger("feedpub.websub")

META_UNSENT_PINGS = "websub.unsent"  # JSON list of feed URLs the hub has not accepted yet
PING_RETRY_SECONDS = 300  # how often the leader posts the kept URLs again
PING_SHUTDOWN_WAIT = 3.0  # seconds shutdown waits for WebSub pings in flight


class PingLedger:
    """The `websub.unsent` list in the store, changed under one lock per process."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()

    def _read(self, store: Store) -> list[str]:
        saved = store.get_meta(META_UNSENT_PINGS)
        try:
            loaded = json.loads(saved) if saved else []
        except ValueError:
            return []  # not written by this program: nothing to resume
        return [url for url in loaded if isinstance(url, str)] if isinstance(loaded, list) else []

    def _change(self, add: Iterable[str] = (), drop: Iterable[str] = ()) -> list[str]:
        gone = set(drop)
        with self._lock, open_store(self.cfg) as store:
            before = self._read(store)
            after = [url for url in dict.fromkeys([*before, *add]) if url not in gone]
            if after != before:
                store.set_meta(META_UNSENT_PINGS, json.dumps(after) if after else "")
            return after

    def add(self, urls: Iterable[str]) -> None:
        self._change(add=urls)

    def settled(self, urls: Iterable[str]) -> None:
        self._change(drop=urls)

    def pending(self) -> list[str]:
        with self._lock, open_store(self.cfg) as store:
            return self._read(store)


class Announcer:
    """Leader-only WebSub pings of one daemon: `announce` after a build, `retry` on a timer."""

    def __init__(self, cfg: Config, hub: str) -> None:
        self.ledger = PingLedger(cfg)
        self.pinger = HubPinger(hub, on_settled=self._settled)

    @property
    def hub(self) -> str:
        return self.pinger.hub

    def _settled(self, urls: list[str]) -> None:
        try:
            self.ledger.settled(urls)
        except Exception:  # noqa: BLE001 - they stay kept and are posted again: no harm
            log.warning("could not mark %d WebSub pings as done", len(urls), exc_info=True)

    def announce(self, urls: list[str], *, leader: bool) -> None:
        """Record the URLs, then queue them for the hub (a standby leaves them to the leader)."""
        if not urls:
            return
        if not leader:
            log_event(log, "websub_ping_left_to_leader", level=logging.DEBUG, urls=len(urls))
            return
        self.ledger.add(urls)
        self.pinger.submit(urls)

    def retry(self) -> None:
        """Queue every URL the store still keeps (the leader's `websub-retry` job)."""
        urls = self.ledger.pending()
        if urls:
            log_event(log, "websub_ping_resumed", hub=self.hub, urls=len(urls))
            self.pinger.submit(urls)

    def close(self) -> None:
        """Let queued pings go out for up to PING_SHUTDOWN_WAIT s; the rest stay kept."""
        unsent = self.pinger.close(PING_SHUTDOWN_WAIT)
        if unsent:
            log_event(log, "websub_ping_kept", hub=self.hub, urls=len(unsent))
