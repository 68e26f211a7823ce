"""`feedpub run`: build, serve, schedule in one process.

The web server (uvicorn) runs in the main thread; the scheduler, the articles/ watcher and
builds run in background threads. The queue runner (a thread of its own) sends the due rows
of every unfinished issue on start and then every `[delivery] queue_interval`; with
`--no-send` it does not run and the scheduled digest only plans the issue, for `feedpub
worker`s to send. On a PostgreSQL store only the leader node runs the queue and fires the
scheduled jobs (`scheduler`).
SIGINT/SIGTERM stop the server, signal running jobs to checkpoint (a digest send finishes its
in-flight messages and records its progress), wait for them, and release the scheduler lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from ..config import Config
from ..errors import ArticleError, ConfigError, FeedpubError
from ..logfmt import log_event, use_logfmt
from ..scheduler import (
    DaemonScheduler,
)
from ..store import open_store
from ..web.app import FeedpubApp, create_app, server_options
from ..web.connections import raise_descriptor_limit
from ..web.metrics import Metrics
from ..web.websub import changed_feed_urls
from .pings import PING_RETRY_SECONDS, Announcer
from .status import META_LAST_BUILD, META_NEXT_PUBLISH

if TYPE_CHECKING:
    from ..jobs.live import LiveSite

log = logging.getLogger("feedpub.daemon")

QUEUE_SHUTDOWN_WAIT = 120.0  # seconds shutdown waits for a queue pass to checkpoint


class _Server(uvicorn.Server):
    """uvicorn whose SIGINT/SIGTERM handling covers the whole daemon: a signal during
    startup or serving asks everything to stop, and is not re-raised at exit (so the
    scheduler can still checkpoint and release its lock)."""

    def __init__(self, config: uvicorn.Config, on_signal: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_signal = on_signal

    def handle_signal(self, sig: int, frame: Any) -> None:
        log_event(log, "signal", name=signal.Signals(sig).name)
        self._on_signal()
        self.handle_exit(sig, frame)

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Install the handlers (main thread only) for the duration of the block."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_signal)
                     for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, original in originals.items():
                signal.signal(sig, original)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with self.signals():
            yield


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; a clear error when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FeedpubError(
            f"cannot listen on {host}:{port}: {exc.strerror} (choose another [web] port or "
            "pass --port; is another server running there?)"
        ) from exc
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class Daemon:
    """The wiring of one `feedpub run`: builds, digests, metrics, web app, scheduler."""

    def __init__(self, cfg: Config, *, dev: bool = False, drafts: bool = False,
                 send: bool = True) -> None:
        self.cfg = cfg
        self.drafts = drafts
        self.send = send  # False: the digest job only plans the issue; workers send it
        self.metrics = Metrics()
        self.app: FeedpubApp = create_app(cfg, self.metrics, dev=dev)
        self._logged_errors: list[str] | None = None
        self.site: LiveSite | None = None  # the site in memory, after the first build
        self._changes: set[str] | None = set()  # changed article paths not yet built
        self._changes_lock = threading.Lock()
        self.scheduler = DaemonScheduler(cfg, rebuild=self.build,
                                         digest=self.send_digest if send else self.plan_digest,
                                         changed=self.note_changes)
        hub = cfg.feeds.websub_hub
        self.pings = Announcer(cfg, hub) if hub else None

    def note_changes(self, paths: set[str] | None) -> None:
        """Paths under articles/ that changed (None: unknown): the next build reads them."""
        with self._changes_lock:
            if paths is None or self._changes is None:
                self._changes = None
            else:
                self._changes.update(paths)

    def build(self, reason: str) -> datetime | None:
        """One rebuild; refreshes the served files and queues the WebSub pings (sent in the
        background, so an unreachable hub never delays the next build). The site stays in
        memory: a change re-reads the changed files only (`jobs.live`)."""
        from ..jobs.live import LiveSite

        started = datetime.now(UTC)
        with self._changes_lock:
            changes, self._changes = self._changes, set()
        if self.site is None:
            self.site = LiveSite(self.cfg, drafts=self.drafts)
        try:
            # One process: the daemon runs threads, and forking beside threads is not safe.
            report = self.site.build(changes if reason == "articles_changed" else None,
                                     save=False)
        except Exception:
            self.site = None  # the next build starts again from what is on disk
            self.metrics.builds.labels(result="failed").inc()
            raise
        finished = datetime.now(UTC)
        self.metrics.builds.labels(result="ok").inc()
        self.metrics.last_build.set(finished.timestamp())
        self.app.rebuilt([*report.written, *report.removed], finished, report.skipped)
        self.site.save()  # the manifest, for the next process, once the files are served
        if not report.up_to_date:  # an unchanged site repeats the last build's warnings
            for warning in report.warnings:
                log.warning(warning)
        self._log_skipped(report.skipped)
        with open_store(self.cfg) as store:
            store.set_meta(META_LAST_BUILD, finished.isoformat())
            store.set_meta(META_NEXT_PUBLISH,
                           report.next_publish.isoformat() if report.next_publish else "")
        log_event(log, "build", reason=reason, articles=report.articles,
                  drafts=report.drafts, scheduled=report.scheduled,
                  written=len(report.written), skipped=len(report.skipped),
                  next_publish=report.next_publish,
                  ms=int((finished - started).total_seconds() * 1000))
        if self.pings is not None:
            self.pings.announce(changed_feed_urls(self.cfg.site.base_url, report.written),
                                leader=not self.scheduler.is_standby)
        return report.next_publish

    def _log_skipped(self, skipped: list[ArticleError]) -> None:
        """Each skipped article with file, line, message and fix: once per change, so the
        writer sees why an article is missing without the log repeating itself."""
        texts = [str(e) for e in skipped]
        if texts == self._logged_errors:
            return
        self._logged_errors = texts
        for error in skipped:
            log_event(log, "article_skipped", level=logging.WARNING, file=error.source,
                      line=error.line, message=error.reason, fix=error.fix)

    def send_digest(self, cadence: str, poll: float = 5.0) -> None:
        """One scheduled digest; stops early (checkpointed) when the daemon shuts down.

        If another process (say `feedpub digest send`) holds this cadence's send lock, wait
        for it, checking every `poll` seconds, then send: that process may only have been
        finishing an older issue, and this period's issue must not be skipped. Only a
        daemon shutdown ends the wait (nothing is sent then; the next run plans the issue)."""
        from ..errors import DeliveryError
        from ..jobs.mailing import SendBusyError, send_digest
        from ..jobs.queue import note_relay

        stopping = self.scheduler.stopping
        waited = False
        if not self._still_leader("digest", cadence):
            return
        while True:
            try:
                report = send_digest(self.cfg, cadence, stop=stopping)
                break
            except DeliveryError as exc:  # the issue is planned; the queue runner goes on
                note_relay(self.cfg, exc)
                log_event(log, "digest_deferred", level=logging.WARNING, cadence=cadence,
                          reason=str(exc))
                return
            except SendBusyError as exc:
                if not waited:
                    log_event(log, "digest_waiting", level=logging.WARNING, cadence=cadence,
                              reason=str(exc))
                    waited = True
            if stopping.wait(poll):
                log_event(log, "digest_skipped", level=logging.WARNING, cadence=cadence,
                          reason="stopping while another process held the send lock")
                return
        self.metrics.emails_sent.labels(kind="digest").inc(report.sent)
        self.metrics.emails_failed.labels(kind="digest").inc(report.failed)
        log_event(log, "digest", cadence=cadence, issue=report.issue_id, sent=report.sent,
                  failed=report.failed, pending=report.pending, deferred=report.deferred,
                  stopped=report.stopped, waited=waited)

    def _still_leader(self, job: str, cadence: str | None = None) -> bool:
        if self.scheduler.confirm_leader():
            return True
        log_event(log, "job_skipped", level=logging.WARNING, job=job, cadence=cadence,
                  reason="no longer the leader")
        return False

    def plan_digest(self, cadence: str) -> None:
        """`run --no-send`: the scheduled digest plans the issue; the workers send it."""
        from ..jobs.planning import plan_digest

        if not self._still_leader("digest", cadence):
            return
        issue = plan_digest(self.cfg, cadence)
        log_event(log, "digest_planned", cadence=cadence,
                  issue=issue.id if issue else None, total=issue.total if issue else 0)

    def run_queue(self) -> None:
        """One pass of the queue runner; failures are logged (the rows wait), never raised."""
        from ..jobs.queue import run_queue

        try:
            report = run_queue(self.cfg, stop=self.scheduler.stopping)
        except Exception as exc:  # noqa: BLE001 - the next pass tries again
            log_event(log, "queue_failed", level=logging.ERROR,
                      error=f"{type(exc).__name__}: {exc}")
            log.debug("queue pass failed", exc_info=True)
            return
        self.metrics.emails_sent.labels(kind="digest").inc(report.sent)
        self.metrics.emails_failed.labels(kind="digest").inc(report.failed)
        if report.error is not None:
            log_event(log, "queue_deferred", level=logging.WARNING, reason=report.error,
                      expired=report.expired)
        if report.issues:
            log_event(log, "queue", issues=",".join(str(r.issue_id) for r in report.issues),
                      sent=report.sent, failed=report.failed,
                      pending=sum(r.pending for r in report.issues),
                      deferred=sum(r.deferred for r in report.issues),
                      busy=",".join(report.busy) or None)

    def _queue_loop(self) -> None:
        """Run the queue on start, then every queue_interval, until the daemon stops."""
        stopping = self.scheduler.stopping
        interval = float(self.cfg.delivery.queue_interval)
        while not stopping.is_set():
            if self.scheduler.is_leader:  # a standby leaves the queue to the leader
                self.run_queue()
            stopping.wait(interval)

    def start_queue(self) -> threading.Thread:
        thread = threading.Thread(target=self._queue_loop, name="feedpub-queue", daemon=True)
        thread.start()
        return thread

    def fetch_bounces(self) -> None:
        """One read of the bounce mailbox (on the [bounces] interval); errors are logged."""
        from ..jobs.bounces import fetch_bounces

        try:
            report = fetch_bounces(self.cfg)
        except Exception as exc:  # noqa: BLE001 - an unreachable mailbox must not stop the daemon
            log_event(log, "bounces_failed", level=logging.ERROR,
                      error=f"{type(exc).__name__}: {exc}")
            return
        log_event(log, "bounces", **{k: report.new[k] for k in report.new},
                  seen=report.already_seen, removed=report.removed)

    def _deliverability_checks(self) -> None:
        """Warn at start about dishonest one-click links and a missing postal address; read
        the bounce mailbox on its timer when one is configured."""
        from ..bounces.mailbox import mailbox_kind
        from ..jobs.deliverability import honesty_warnings

        for warning in honesty_warnings(self.cfg):
            log_event(log, "warning", level=logging.WARNING, message=warning)
        if mailbox_kind(self.cfg) is not None:
            self.scheduler.every("bounces", self.cfg.bounces.interval, self.fetch_bounces)

    def serve(self, host: str, port: int, ready: Callable[[str], None] | None = None,
              sock: socket.socket | None = None) -> None:
        """Run until a signal: scheduler first (takes the lock), then the initial build in the
        background while the server already answers."""
        descriptors = raise_descriptor_limit()
        config = uvicorn.Config(self.app, lifespan="on", timeout_graceful_shutdown=10,
                                **server_options(self.app, descriptors))
        server = _Server(config, on_signal=self.scheduler.stopping.set)
        with server.signals():
            self.scheduler.start()
            queue: threading.Thread | None = None
            try:
                queue = self.start_queue() if self.send else None
                self._deliverability_checks()
                if self.pings is not None:  # the leader's job: at its start, then on a timer
                    self.scheduler.every("websub-retry", PING_RETRY_SECONDS, self._retry_pings,
                                         first_now=True)
                sock = sock or bind(host, port)
                actual = sock.getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                threading.Thread(target=self.scheduler.rebuild, args=("startup",),
                                 name="feedpub-initial-build", daemon=True).start()
                limits = self.app.connection_limits
                log_event(log, "listening", url=f"http://{shown}:{actual}/",
                          public=self.cfg.public_dir, descriptors=descriptors,
                          max_connections=limits.max_connections if limits else None)
                if ready is not None:
                    ready(f"http://{shown}:{actual}/")
                with sock:
                    server.run(sockets=[sock])
            finally:
                self.scheduler.stopping.set()
                if queue is not None:
                    queue.join(QUEUE_SHUTDOWN_WAIT)
                self.scheduler.shutdown(wait=True)
                if self.pings is not None:
                    self.pings.close()
                log_event(log, "stopped")

    def _retry_pings(self) -> None:
        """Post again the WebSub pings kept in the store (leader only); errors are logged."""
        if self.pings is None or not self._still_leader("websub-retry"):
            return
        try:
            self.pings.retry()
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            log_event(log, "websub_retry_failed", level=logging.WARNING,
                      error=f"{type(exc).__name__}: {exc}")


def _follow_port(cfg: Config, sock: socket.socket) -> Config:
    """On a local site, links follow the port actually listened on (`run --port 8092` with
    base_url on 8080); the log says so. A public base_url is never changed."""
    if not cfg.site.local:
        return cfg
    actual = sock.getsockname()[1]
    parts = urlsplit(cfg.site.base_url)
    if parts.port == actual or (parts.port is None and actual == 80
                                and parts.scheme == "http"):
        return cfg
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]:{actual}" if ":" in host else f"{host}:{actual}"
    base_url = urlunsplit(parts._replace(netloc=netloc))
    log_event(log, "base_url_port", level=logging.WARNING, configured=cfg.site.base_url,
              used=base_url, reason="listening on another port than site.base_url names")
    return dataclasses.replace(cfg, site=dataclasses.replace(cfg.site, base_url=base_url))


def run(cfg: Config, host: str | None = None, port: int | None = None, *, verbosity: int = 0,
        ready: Callable[[str], None] | None = None, dev: bool = False,
        drafts: bool = False, send: bool = True) -> None:
    """Build, serve and schedule until SIGINT/SIGTERM. Raises SchedulerError if another
    `feedpub run` owns this data set. `dev` adds the local tools (/_outbox/, the error
    banner); `drafts` builds drafts and future entries into the site (local sites only)."""
    if drafts and not cfg.site.local:
        raise ConfigError(
            f"site.base_url = {cfg.site.base_url!r} is public: --drafts builds unpublished "
            "entries into the served feeds, so it is only for a local base_url (use e.g. "
            "--config with base_url = \"http://127.0.0.1:8080/\")")
    levels = {-1: None, 0: logging.INFO, 1: logging.INFO}
    if not send:  # the scheduled digests would pile up with nobody to send them
        from ..jobs.sendworker import require_shared_store

        require_shared_store(cfg, "feedpub run --no-send (sending left to `feedpub worker`)")
    use_logfmt(levels.get(verbosity, logging.DEBUG))
    with open_store(cfg):  # refuses an older schema (`feedpub db upgrade`) before anything runs
        pass
    host = host or cfg.web.host
    sock = bind(host, cfg.web.port if port is None else port)
    try:
        cfg = _follow_port(cfg, sock)
        if drafts:
            log_event(log, "drafts", level=logging.WARNING,
                      reason="drafts and future entries are built into this local site")
        daemon = Daemon(cfg, dev=dev, drafts=drafts, send=send)
        daemon.serve(host, sock.getsockname()[1], ready, sock)
    finally:
        sock.close()
