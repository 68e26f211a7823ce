"""`feedpub run` as a real subprocess: serving, rebuild on file drop, one instance per data
set, graceful stop (a digest being sent is checkpointed and resumed), `feedpub status`."""

from __future__ import annotations

import contextlib
import http.server
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from feedpub.config import Config
from feedpub.jobs.mailing import digest_status, send_digest
from feedpub.scheduler import JOB_TABLE, lock_holder
from feedpub.store import open_store
from process_helpers import Process
from web_helpers import ARTICLES, SmtpCatcher


class Daemon(Process):
    """A `feedpub run --port 0` subprocess whose log lines are collected as they come."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg, "run", "--host", "127.0.0.1", "--port", "0")

    @property
    def url(self) -> str:
        return self.wait_for(r"event=listening url=(\S+)").group(1)


def _poll(url: str, check: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5)
            if last.status_code == 200 and check in last.text:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{check!r} never appeared at {url}: {last and last.status_code}")


def test_run_serves_and_picks_up_a_dropped_article(make_site, daemons) -> None:
    cfg = make_site(ARTICLES, extra="[schedule]\ndebounce_ms = 200\n")
    soon = (datetime.now(UTC) + timedelta(seconds=10)).isoformat(timespec="seconds")
    (cfg.articles_dir / "embargoed.md").write_text(
        f"---\ntitle: Embargoed until now\ndate: {soon}\n---\nOut on time.\n",
        encoding="utf-8")
    daemon = Daemon(cfg)
    daemons.append(daemon)
    url = daemon.url
    first = _poll(url + "feed.xml", "Second post")
    assert "Embargoed until now" not in first.text  # future-dated: not yet
    daemon.wait_for(r"event=publish_scheduled")
    assert httpx.get(url + "healthz").json()["status"] == "ok"
    (cfg.articles_dir / "2026-01-07-dropped.txt").write_text(
        "date 2026-01-07 Dropped in while running\n\nHello from the watcher.\n",
        encoding="utf-8")
    feed = _poll(url + "feed.xml", "Dropped in while running")
    assert feed.headers["content-type"] == "application/rss+xml; charset=utf-8"
    _poll(url + "posts/2026-01-07-dropped.html", "Hello from the watcher")
    daemon.wait_for(r"event=build reason=articles_changed")
    _poll(url + "feed.xml", "Embargoed until now")  # rebuilt at its publish time
    daemon.wait_for(r"event=build reason=publish_time")
    assert daemon.stop() == 0
    daemon.wait_for(r"event=stopped")
    assert lock_holder(cfg) is None


def test_second_run_on_the_same_data_is_refused(make_site, daemons) -> None:
    cfg = make_site(ARTICLES)
    first = Daemon(cfg)
    daemons.append(first)
    first.url  # noqa: B018 - wait until it runs
    status = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                             str(cfg.root / "config.toml"), "status"],
                            capture_output=True, text=True, timeout=60)
    assert f"running, pid {first.proc.pid}" in status.stdout
    assert "digest-daily" in status.stdout and "digest-weekly" in status.stdout
    second = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                             str(cfg.root / "config.toml"), "run", "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert str(cfg.data_dir / "scheduler.lock") in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr
    assert first.proc.poll() is None  # the first one is unaffected
    assert first.stop(signal.SIGINT) == 0


def _recent_article(cfg: Config) -> None:
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    (cfg.articles_dir / "fresh.md").write_text(
        f"---\ntitle: Fresh news\ndate: {when}\n---\nSomething new today.\n", encoding="utf-8")


def test_sigterm_during_a_digest_checkpoints_and_nothing_is_lost(make_site, daemons) -> None:
    smtp = SmtpCatcher(delay=0.15).start()
    try:
        at = datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(hours=3)
        cfg = make_site(extra=smtp.config() + f"""
            [schedule]
            daily = "{at.minute} {at.hour} * * *"
            weekly = ""
            grace_seconds = 14400
            """)
        _recent_article(cfg)
        with open_store(cfg) as store:
            for n in range(20):
                store.add_subscriber(f"reader{n}@example.org", status="active", cadence="daily")
        first = Daemon(cfg)  # creates the stored job, then stops
        daemons.append(first)
        first.url  # noqa: B018
        assert first.stop() == 0
        store = SQLAlchemyJobStore(url=cfg.database_url, tablename=JOB_TABLE)
        job = store.lookup_job("digest-daily")
        job.next_run_time = job.next_run_time - timedelta(days=2)  # it was down: runs missed
        store.update_job(job)
        store.shutdown()
        second = Daemon(cfg)  # catches up with one issue right away
        daemons.append(second)
        deadline = time.monotonic() + 30
        while len(smtp.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(smtp.messages) >= 3, "\n".join(second.lines)
        assert second.stop() == 0
        second.wait_for(r"event=digest cadence=daily .*stopped=True")
        delivered = len(smtp.messages)
        assert delivered < 20
        (counts,) = digest_status(cfg)
        assert counts.sent == delivered and counts.pending == 20 - delivered
        report = send_digest(cfg, "daily")  # the next run resumes the same issue
        assert report.resumed and report.sent == 20 - delivered
        recipients = [m["To"].addresses[0].addr_spec for m in smtp.wait(20)]
        assert sorted(recipients) == sorted(f"reader{n}@example.org" for n in range(20))
    finally:
        smtp.stop()


class _OtherSender:
    """Holds a cadence's send lock in another thread (like a running `feedpub digest send`)
    until released."""

    def __init__(self, cfg: Config, cadence: str) -> None:
        from feedpub.jobs.sendlock import send_lock

        self.held, self.release = threading.Event(), threading.Event()

        def hold() -> None:
            with send_lock(cfg, cadence):
                self.held.set()
                self.release.wait(60)

        self.thread = threading.Thread(target=hold, daemon=True)
        self.thread.start()
        assert self.held.wait(10)

    def finish(self) -> None:
        self.release.set()
        self.thread.join(10)


def _logged(caplog: pytest.LogCaptureFixture, event: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not any(r.getMessage() == event for r in list(caplog.records)):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _daily_site(make_site, smtp: SmtpCatcher, readers: int) -> Config:
    cfg = make_site(extra=smtp.config())
    _recent_article(cfg)
    with open_store(cfg) as store:
        for n in range(readers):
            store.add_subscriber(f"reader{n}@example.org", status="active", cadence="daily")
    return cfg


@contextmanager
def _daily_send_held_elsewhere(make_site, caplog: pytest.LogCaptureFixture,
                               readers: int) -> Iterator[tuple[Config, Any, _OtherSender,
                                                               SmtpCatcher]]:
    """A daily site with `readers` subscribers whose send lock another sender holds (say,
    an operator finishing an older issue); yields (cfg, daemon job, other sender, server)."""
    from feedpub.daemon.run import Daemon as DaemonJob

    caplog.set_level("INFO", logger="feedpub")
    smtp = SmtpCatcher().start()
    other = None
    try:
        cfg = _daily_site(make_site, smtp, readers)
        job = DaemonJob(cfg)
        other = _OtherSender(cfg, "daily")
        yield cfg, job, other, smtp
    finally:
        if other is not None:
            other.finish()
        smtp.stop()


def test_a_scheduled_digest_waits_for_another_sender_then_sends(make_site, caplog) -> None:
    with _daily_send_held_elsewhere(make_site, caplog, 3) as (cfg, job, other, smtp):
        scheduled = threading.Thread(target=job.send_digest, args=("daily", 0.05), daemon=True)
        scheduled.start()
        assert _logged(caplog, "digest_waiting")
        assert scheduled.is_alive() and smtp.messages == []
        other.finish()
        scheduled.join(60)
        assert not scheduled.is_alive()
        recipients = [m["To"].addresses[0].addr_spec for m in smtp.wait(3)]
        assert sorted(recipients) == [f"reader{n}@example.org" for n in range(3)]
        (counts,) = digest_status(cfg)
        assert (counts.sent, counts.pending) == (3, 0)
        assert _logged(caplog, "digest") and not _logged(caplog, "digest_skipped", 0)


def test_a_waiting_scheduled_digest_gives_up_when_the_daemon_stops(make_site, caplog) -> None:
    with _daily_send_held_elsewhere(make_site, caplog, 2) as (cfg, job, _, smtp):
        scheduled = threading.Thread(target=job.send_digest, args=("daily",), daemon=True)
        scheduled.start()
        assert _logged(caplog, "digest_waiting")
        job.scheduler.stopping.set()  # SIGTERM: the default 5 s poll must not hold it up
        scheduled.join(30)
        assert not scheduled.is_alive()
        assert _logged(caplog, "digest_skipped", 0)
        assert smtp.messages == [] and digest_status(cfg) == []


class _Hub(http.server.BaseHTTPRequestHandler):
    """A WebSub hub on loopback: `take(urls)` handles one publish ping; True answers 204."""

    def do_POST(self) -> None:  # noqa: N802
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        assert form["hub.mode"] == ["publish"]
        if self.take(form["hub.url"]):
            self.send_response(204)
            self.end_headers()

    def take(self, urls: list[str]) -> bool:
        raise NotImplementedError

    def log_message(self, *args: object) -> None:
        pass


def test_a_rebuild_that_changes_feeds_pings_the_hub(make_site) -> None:
    from feedpub.daemon.run import Daemon as DaemonJob

    pings: list[str] = []

    class Hub(_Hub):
        def take(self, urls: list[str]) -> bool:
            pings.extend(urls)
            return True

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    job = None
    try:
        cfg = make_site(ARTICLES, extra=f"""
            [feeds]
            websub_hub = "http://127.0.0.1:{hub.server_address[1]}/"
            """)
        job = DaemonJob(cfg)
        job.build("test")  # returns before the pings: they go out in the background
        assert job.pings is not None and job.pings.pinger.wait_idle(30)
        base = cfg.site.base_url
        assert {base + "feed.xml", base + "atom.xml", base + "feed.json",
                base + "tags/python.xml", base + "tags/web.atom"} <= set(pings)
        assert not any(p.endswith(".html") or p.endswith(".css") for p in pings)
        pings.clear()
        job.build("test")  # nothing changed: no ping
        assert job.pings.pinger.wait_idle(30)
        assert pings == []
        assert b'feedpub_builds_total{result="ok"} 2.0' in job.metrics.render()
    finally:
        if job is not None and job.pings is not None:
            job.pings.close()
        hub.shutdown()
        hub.server_close()


class _SilentHub:
    """A TCP server that accepts connections and never answers (a hung WebSub hub)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hub"
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close does not
        self.sock.close()
        self.thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()


def _closed_port_url() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hub"  # nothing listens there any more


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_an_unreachable_hub_delays_neither_rebuilds_nor_stop(make_site, daemons,
                                                             kind: str) -> None:
    silent = _SilentHub() if kind == "silent" else None
    try:
        hub_url = silent.url if silent else _closed_port_url()
        cfg = make_site(ARTICLES, extra=f"""
            [schedule]
            debounce_ms = 200
            [feeds]
            websub_hub = "{hub_url}"
            """)
        daemon = Daemon(cfg)
        daemons.append(daemon)
        url = daemon.url
        _poll(url + "feed.xml", "Second post")
        daemon.wait_for(r"event=build reason=startup")
        if silent:  # the startup pings are hanging on the hub right now
            deadline = time.monotonic() + 10
            while not silent.accepted and time.monotonic() < deadline:
                time.sleep(0.05)
            assert silent.accepted
        else:
            daemon.wait_for(r"event=websub_ping_failed .*status=0")
        (cfg.articles_dir / "2026-01-07-dropped.txt").write_text(
            "date 2026-01-07 Dropped while the hub is down\n\nStill published.\n",
            encoding="utf-8")
        _poll(url + "feed.xml", "Dropped while the hub is down", timeout=10)
        daemon.wait_for(r"event=build reason=articles_changed")
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.stop(timeout=15) == 0  # a correctness bound, well under TimeoutStopSec
        daemon.wait_for(r"event=stopped")
        assert lock_holder(cfg) is None
    finally:
        if silent:
            silent.close()


def test_status_shows_the_next_publish_time_rebuild(make_site) -> None:
    from feedpub.daemon.run import Daemon as DaemonJob
    from feedpub.daemon.status import status

    cfg = make_site(ARTICLES)
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    (cfg.articles_dir / "embargoed.md").write_text(
        f"---\ntitle: Later\ndate: {soon.isoformat()}\n---\nLater.\n", encoding="utf-8")
    DaemonJob(cfg).build("test")
    info = status(cfg)
    assert info.next_publish is not None
    assert datetime.fromisoformat(info.next_publish) == soon
    shown = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                            str(cfg.root / "config.toml"), "status"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("next publish:"))
    assert soon.isoformat() in line
    (cfg.articles_dir / "embargoed.md").unlink()
    DaemonJob(cfg).build("test")
    assert status(cfg).next_publish is None


def test_pings_the_hub_did_not_take_before_a_stop_are_sent_at_the_next_start(
        make_site, daemons) -> None:
    holding = threading.Event()  # while set, the hub takes requests and never answers
    holding.set()
    released = threading.Event()  # set at the end: the held requests' threads finish
    held: list[str] = []
    pings: list[str] = []

    class Hub(_Hub):
        def take(self, urls: list[str]) -> bool:
            if holding.is_set():
                held.extend(urls)
                released.wait(30)  # the daemon gives up long before
                return False
            pings.extend(urls)
            return True

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    hub.daemon_threads = True
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        cfg = make_site(ARTICLES, extra=f"""
            [feeds]
            websub_hub = " http://127.0.0.1:{hub.server_address[1]}/ "
            """)
        first = Daemon(cfg)
        daemons.append(first)
        _poll(first.url + "feed.xml", "Second post")
        deadline = time.monotonic() + 20
        while not held and time.monotonic() < deadline:  # the startup pings hang
            time.sleep(0.05)
        assert held
        assert first.stop() == 0
        first.wait_for(r"event=websub_ping_dropped")
        with open_store(cfg) as store:
            assert cfg.site.base_url + "feed.xml" in (store.get_meta("websub.unsent") or "")
        holding.clear()
        second = Daemon(cfg)  # the site is up to date: only the kept pings go out
        daemons.append(second)
        second.wait_for(r"event=websub_ping_resumed")
        kept = {cfg.site.base_url + "feed.xml", cfg.site.base_url + "atom.xml"}
        deadline = time.monotonic() + 20
        while not kept <= set(pings) and time.monotonic() < deadline:  # sent in parallel
            time.sleep(0.05)
        assert kept <= set(pings)
        assert second.stop() == 0
        with open_store(cfg) as store:
            assert not store.get_meta("websub.unsent")
    finally:
        released.set()  # no request thread outlives the test (a process with threads
        hub.shutdown()  # never forks, and later tests fork)
        hub.server_close()
