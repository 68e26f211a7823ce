"""Several nodes on one PostgreSQL store, with real processes: `feedpub worker`s killed
mid-send, the global send rate, claims and leases, and the refusal on SQLite."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from cluster_helpers import Process, outbox_counts, plan, wait_until
from feedpub.config import Config
from feedpub.delivery.window import IN_FLIGHT
from feedpub.jobs.mailing import digest_status
from feedpub.store import open_store
from feedpub.store.claims import Claims, take_tokens
from smtp_server import SmtpServer


def _site(make_site, postgres_url: str, server: SmtpServer, smtp: str = "",
          cluster: str = "") -> Config:
    cfg = make_site(extra=server.config(extra=smtp)
                    + '\n[schedule]\ndaily = ""\nweekly = ""\n'
                    + f'\n[cluster]\n{cluster}\n'
                    + f'\n[store]\nurl = "{postgres_url}"\n')
    with open_store(cfg):  # the schema, as `feedpub db upgrade` makes it before nodes start
        pass
    return cfg


def test_worker_on_sqlite_is_refused_with_the_reason(site) -> None:
    out = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                          str(site.root / "config.toml"), "worker"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    assert "feedpub worker needs a PostgreSQL store" in out.stderr
    assert "one process at a time" in out.stderr and "feedpub db copy" in out.stderr


def test_claims_are_disjoint_and_a_lapsed_lease_is_claimed_again(make_site, postgres_url
                                                                 ) -> None:
    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server)
    issue = plan(cfg, 30)
    now = datetime.now(UTC)
    lease = timedelta(seconds=60)
    with open_store(cfg) as store:
        one, two = Claims(store, "one"), Claims(store, "two")
        first = one.claim(issue, now=now, lease=lease, limit=20)
        second = two.claim(issue, now=now, lease=lease, limit=20)
        assert len(first) == 20 and len(second) == 10
        assert not {r.id for r in first} & {r.id for r in second}
        assert two.claim(issue, now=now, lease=lease, limit=20) == []
        # "one" died; "two" renews its lease: once one's has run out, its rows are free again
        later = now + lease + timedelta(seconds=1)
        assert two.renew(later + lease) == 10
        again = two.claim(issue, now=later, lease=lease, limit=50)
        assert {r.id for r in again} == {r.id for r in first}
        assert one.held() == 0 and two.held() == 30
        assert two.release() == 30 and two.held() == 0


def test_the_shared_bucket_hands_out_no_more_than_its_rate(make_site, postgres_url) -> None:
    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server)
    with open_store(cfg) as store:
        first = take_tokens(store, "test", rate=10, burst=5, want=100)
        assert first.tokens == 5  # a full bucket at the start
        empty = take_tokens(store, "test", rate=10, burst=5, want=100)
        assert empty.tokens == 0 and 0 < empty.wait <= 0.1


def test_three_workers_one_killed_midway_everyone_gets_one_copy(make_site, postgres_url,
                                                                procs) -> None:
    total, connections, lease = 5000, 2, 3
    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server, f"connections = {connections}",
                    f"lease_seconds = {lease}\nclaim_batch = 20")
        issue = plan(cfg, total)
        workers = [Process(cfg, "worker", "--name", f"w{n}") for n in range(3)]
        procs.extend(workers)
        for worker in workers:
            worker.wait_for("event=worker_started")
        wait_until(lambda: len(server.handler.received) >= total // 2, 120, "half the issue",
                   *workers)
        workers[0].stop(signal.SIGKILL)
        killed_at = len(server.handler.received)
        assert killed_at < total, "the kill must land before the end of the issue"
        wait_until(lambda: digest_status(cfg)[0].status == "done", 120, "the issue done",
                   *workers)
        for worker in workers[1:]:
            assert worker.stop() == 0
            worker.wait_for(r"event=worker_stopped name=w\d sent=[1-9]")
    copies = server.handler.copies()
    assert set(copies) == {f"user{i}@example.com" for i in range(total)}
    # In flight when it died: at most IN_FLIGHT accepted, unrecorded messages per session.
    assert sum(n - 1 for n in copies.values()) <= connections * IN_FLIGHT, {
        k: n for k, n in copies.items() if n > 1}
    assert outbox_counts(cfg, issue) == {"sent": total}


def test_the_rate_holds_over_three_workers(make_site, postgres_url, procs) -> None:
    rate, total = 60.0, 420
    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server, f"connections = 2\nrate = {rate}")
        workers = [Process(cfg, "worker", "--name", f"w{n}") for n in range(3)]
        procs.extend(workers)
        for worker in workers:
            worker.wait_for("event=worker_started")
        issue = plan(cfg, total)
        wait_until(lambda: outbox_counts(cfg, issue) == {"sent": total}, 60, "all sent",
                   *workers)
        sent = []
        for worker in workers:
            assert worker.stop() == 0
            sent.append(int(worker.wait_for(r"event=worker_stopped \S+ sent=(\d+)").group(1)))
    assert sum(sent) == total and all(sent), sent  # every worker took part
    times = sorted(t[0] for t in server.handler.rcpt_times.values())
    assert len(times) == total
    # One bucket's worth (a tenth of a second) goes out at once at the start; after it:
    burst = int(rate / 10)
    measured = (total - burst - 1) / (times[-1] - times[burst])
    assert abs(measured - rate) <= 0.1 * rate, measured


def test_the_leaders_queue_runner_and_a_worker_share_the_queue(make_site, postgres_url,
                                                               procs) -> None:
    """Without --no-send the leader's queue runner sends too: it claims rows like a worker."""
    from feedpub.jobs.queue import run_queue

    total = 1500
    with SmtpServer() as server:
        server.handler.data_delay = 0.002
        cfg = _site(make_site, postgres_url, server, "connections = 2")
        worker = Process(cfg, "worker", "--name", "w0")
        procs.append(worker)
        worker.wait_for("event=worker_started")
        issue = plan(cfg, total)
        wait_until(lambda: len(server.handler.received) >= 100, 60, "the worker sending",
                   worker)
        report = run_queue(cfg)
        wait_until(lambda: outbox_counts(cfg, issue) == {"sent": total}, 60, "all sent", worker)
        assert worker.stop() == 0
        by_worker = int(worker.wait_for(r"event=worker_stopped \S+ sent=(\d+)").group(1))
    assert report.sent > 0 and by_worker > 0 and report.sent + by_worker == total
    assert set(server.handler.copies().values()) == {1}
    assert len(server.handler.copies()) == total


def test_a_sender_of_this_host_that_is_gone_leaves_no_claim_behind(make_site, postgres_url
                                                                   ) -> None:
    """A sender killed here and started again need not wait for the lease of its rows."""
    import socket

    from feedpub.store.claims import claiming

    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server)
    issue = plan(cfg, 10)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    now, lease = datetime.now(UTC), timedelta(seconds=60)
    with open_store(cfg) as store:
        dead = Claims(store, f"{host}:{gone}:abc123")
        alive = Claims(store, "other-host:1:abc123")  # another host: its lease decides
        assert len(dead.claim(issue, now=now, lease=lease, limit=4)) == 4
        assert len(alive.claim(issue, now=now, lease=lease, limit=3)) == 3
        with claiming(store, lease) as mine:
            assert dead.held() == 0 and alive.held() == 3
            assert len(mine.claim(issue, now=now, lease=lease, limit=50)) == 7


def test_a_worker_rides_out_a_database_outage_and_finishes_the_issue(make_site, postgres_url,
                                                                     procs) -> None:
    """The worker's database refuses every connection for a while (as in a restart or a
    failover): the worker waits and starts again, and nobody is lost or mailed twice beyond
    the bound of a crash."""
    import psycopg
    from sqlalchemy.engine import make_url

    total, connections = 600, 1
    database = make_url(postgres_url).database
    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server, f"connections = {connections}\nrate = 150",
                    "lease_seconds = 3\nclaim_batch = 20")
        issue = plan(cfg, total)
        worker = Process(cfg, "worker", "--name", "w0")
        procs.append(worker)
        worker.wait_for("event=worker_started")
        wait_until(lambda: len(server.handler.received) >= 100, 60, "a sixth of the issue",
                   worker)
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                             autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
            try:
                wait_until(lambda: worker.count("event=worker_database_error") >= 2, 60,
                           "two failed starts", worker)
                assert worker.proc.poll() is None  # still running, waiting for the database
                stalled = len(server.handler.received)
                assert stalled < total, "the outage must land before the end of the issue"
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_until(lambda: outbox_counts(cfg, issue) == {"sent": total}, 120, "all sent",
                   worker)
        assert worker.stop() == 0
        worker.wait_for(r"event=worker_stopped .*database_errors=[2-9]")
    assert worker.count(r"retry_in=1.0") >= 1 and worker.count(r"retry_in=2.0") >= 1
    copies = server.handler.copies()
    assert set(copies) == {f"user{i}@example.com" for i in range(total)}
    assert sum(n - 1 for n in copies.values()) <= connections * IN_FLIGHT, {
        k: n for k, n in copies.items() if n > 1}


def test_two_nodes_planning_the_same_digest_at_once_make_one_issue(make_site, postgres_url,
                                                                   caplog) -> None:
    """The fence behind leadership: a leader paused past its lease that wakes and plans while
    the new leader does the same. Each article goes into one issue of a cadence only, so one
    planner wins and the other writes nothing."""
    import threading

    from cluster_helpers import bulk_subscribers
    from feedpub.jobs.mailing import plan_issue
    from mail_helpers import article

    with SmtpServer() as server:
        cfg = _site(make_site, postgres_url, server)
    bulk_subscribers(cfg, 4000)  # a transaction long enough for both to be inside it
    now = datetime.now(UTC)
    pool = [article(n, now=now) for n in range(1, 4)]
    start = threading.Barrier(2)
    results: list[object] = []

    def planner() -> None:
        with open_store(cfg) as store:
            start.wait()
            try:
                results.append(plan_issue(cfg, store, "weekly", now=now, articles=pool))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                results.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    issues = [r for r in results if r is not None]
    assert len(results) == 2 and len(issues) == 1, results
    # Both were inside the transaction: the loser met the fence, not "nothing new".
    assert "another process planned a weekly issue of these articles first" in caplog.text
    issue_id = issues[0].id  # type: ignore[attr-defined]
    assert outbox_counts(cfg, issue_id) == {"pending": 4000}
    with open_store(cfg) as store, store.engine.connect() as conn:
        import sqlalchemy as sa

        from feedpub.store import schema
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.issues)
                            ).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.outbox)
                            ).scalar_one() == 4000
