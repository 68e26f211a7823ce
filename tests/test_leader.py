"""One leader among `feedpub run` nodes on one PostgreSQL store, with real processes: the
standby takes over within [cluster] failover_seconds and fires the due job exactly once;
`run --no-send` plans the issue and sends nothing; SQLite refuses `--no-send`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from cluster_helpers import Process, bulk_subscribers, wait_until
from feedpub.config import Config
from feedpub.scheduler import JOB_TABLE
from feedpub.store import open_store, schema


def _issues(cfg: Config) -> int:
    with open_store(cfg) as store, store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.issues))
                   .scalar_one())


def _make_due(cfg: Config, job_id: str) -> None:
    """As if the leader had died just when the job was due: due now, within the grace."""
    store = SQLAlchemyJobStore(url=cfg.database_url, tablename=JOB_TABLE)
    job = store.lookup_job(job_id)
    assert job is not None
    job.next_run_time = datetime.now(job.next_run_time.tzinfo) - timedelta(seconds=1)
    store.update_job(job)
    store.shutdown()


def test_the_standby_takes_over_within_the_failover_time_and_fires_once(
        make_site, postgres_url, procs, tmp_path) -> None:
    failover = 3
    cfg = make_site(extra=f'[schedule]\ndaily = ""\nweekly = "0 3 * * mon"\n\n[cluster]\n'
                          f'failover_seconds = {failover}\n\n[store]\nurl = "{postgres_url}"\n')
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    (cfg.articles_dir / "fresh.md").write_text(
        f"---\ntitle: Fresh news\ndate: {when}\n---\nSomething new today.\n", encoding="utf-8")
    bulk_subscribers(cfg, 25)
    other = tmp_path / "node-b"  # a second node: its own folder, the same database
    other.mkdir()
    shutil.copy(cfg.root / "config.toml", other / "config.toml")
    shutil.copytree(cfg.articles_dir, other / "articles")
    run = ("run", "--no-send", "--host", "127.0.0.1", "--port", "0")
    leader = Process(cfg, *run)
    procs.append(leader)
    leader.wait_for("event=leader")
    leader.wait_for("event=listening")
    standby = Process(other / "config.toml", *run)
    procs.append(standby)
    standby.wait_for("event=standby")
    standby.wait_for("event=listening")
    time.sleep(failover)  # the standby has polled a few times: it stays a standby
    assert standby.count("event=leader") == 0
    leader.proc.send_signal(signal.SIGSTOP)  # frozen: it can fire nothing from here on
    _make_due(cfg, "digest-weekly")
    killed = time.monotonic()
    leader.kill()
    took = wait_until(lambda: _issues(cfg) == 1, 30, "the issue planned by the standby",
                      standby)
    standby.wait_for("event=leader")
    standby.wait_for(r"event=digest_planned cadence=weekly issue=\d+ total=25")
    assert time.monotonic() - killed <= failover, took
    time.sleep(failover)  # nothing fires twice: not the old leader, not the new one
    assert _issues(cfg) == 1
    assert standby.count("event=digest_planned") == 1
    assert leader.count("event=digest") == 0
    with open_store(cfg) as store, store.engine.connect() as conn:  # --no-send: nothing sent
        statuses = conn.execute(sa.select(schema.outbox.c.status).distinct()).scalars().all()
    assert statuses == ["pending"]
    assert standby.stop() == 0
    standby.wait_for("event=stopped")


def test_run_no_send_on_sqlite_is_refused(site) -> None:
    out = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                          str(site.root / "config.toml"), "run", "--no-send", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    assert "feedpub run --no-send (sending left to `feedpub worker`) needs a PostgreSQL store" \
        in out.stderr


@pytest.mark.parametrize(("line", "key"), [("failover_seconds = 0.5", "cluster.failover_seconds"),
                                           ("lease_seconds = 1", "cluster.lease_seconds"),
                                           ("claim_batch = 0", "cluster.claim_batch")])
def test_cluster_settings_are_checked_at_load(tmp_path, line: str, key: str) -> None:
    from conftest import BASE_CONFIG
    from feedpub.config import parse_config
    from feedpub.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"config.toml: '{key}'.*default"):
        parse_config(BASE_CONFIG + f"\n[cluster]\n{line}\n", tmp_path)


def test_only_the_leader_pings_the_hub_and_the_next_leader_posts_what_it_kept(
        make_site, postgres_url, procs, tmp_path) -> None:
    """Both nodes build the same articles; the hub hears of a change once, from the leader.
    Pings the hub refused while the leader lived are kept in the store and posted by the
    standby once it leads."""
    import http.server
    import threading
    from urllib.parse import parse_qs

    pings: list[str] = []
    refusing = threading.Event()

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self.send_response(503 if refusing.is_set() else 204)
            self.end_headers()
            if not refusing.is_set():
                pings.extend(form["hub.url"])

        def log_message(self, *args: object) -> None:
            pass

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    hub.daemon_threads = True
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        failover = 3
        cfg = make_site(extra=f'[feeds]\nwebsub_hub = "http://127.0.0.1:{hub.server_address[1]}/"'
                              f'\n\n[cluster]\nfailover_seconds = {failover}\n\n'
                              f'[store]\nurl = "{postgres_url}"\n')
        feed = cfg.site.base_url + "feed.xml"
        other = tmp_path / "node-b"
        other.mkdir()
        shutil.copy(cfg.root / "config.toml", other / "config.toml")
        shutil.copytree(cfg.articles_dir, other / "articles")
        run = ("run", "--host", "127.0.0.1", "--port", "0")
        leader = Process(cfg, *run)
        procs.append(leader)
        leader.wait_for("event=leader")
        standby = Process(other / "config.toml", *run)
        procs.append(standby)
        standby.wait_for("event=standby")
        standby.wait_for("event=build reason=startup")
        wait_until(lambda: feed in pings, 30, "the leader's ping", leader)
        time.sleep(1)
        assert pings.count(feed) == 1  # the standby built the same feeds and left them
        assert standby.count("event=websub_ping") == 0

        refusing.set()
        when = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
        for folder in (cfg.articles_dir, other / "articles"):
            (folder / "late.md").write_text(f"---\ntitle: Late news\ndate: {when}\n---\nNew.\n",
                                            encoding="utf-8")
        leader.wait_for(r"event=websub_ping_failed .*status=503 attempt=3", timeout=60)
        standby.wait_for("event=build reason=", timeout=30)
        wait_until(lambda: standby.count("event=build reason=") >= 2, 30, "the standby's build",
                   standby)

        def kept() -> str:
            with open_store(cfg) as store:
                return store.get_meta("websub.unsent") or ""

        assert feed in kept()
        assert standby.count("event=websub_ping") == 0
        leader.kill()
        refusing.clear()
        standby.wait_for("event=leader", timeout=30)
        standby.wait_for("event=websub_ping_resumed", timeout=30)
        wait_until(lambda: pings.count(feed) == 2 and not kept(), 30,
                   "the kept pings posted by the new leader", standby)
        assert standby.stop() == 0
    finally:
        hub.shutdown()
        hub.server_close()
