"""The scheduler: catch-up after downtime, one instance per data set, rebuild triggers."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from feedpub.config import Config
from feedpub.errors import SchedulerError
from feedpub.fsutil import Burst, bursts
from feedpub.scheduler import JOB_TABLE, DaemonScheduler, digest_trigger, lock_holder, stored_runs

BOTH_DATABASES = True  # each test runs on SQLite and on PostgreSQL (conftest)


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _site_with_daily(make_site, grace: int) -> Config:
    """A daily digest whose last occurrence was three hours ago (site time)."""
    from zoneinfo import ZoneInfo

    at = datetime.now(ZoneInfo("Europe/Berlin")) - timedelta(hours=3)
    return make_site(extra=f"""
        [schedule]
        daily = "{at.minute} {at.hour} * * *"
        weekly = ""
        grace_seconds = {grace}
        """)


def _simulate_downtime(cfg: Config, days: int) -> None:
    """Move the stored next run `days` back, as if the daemon had been down that long."""
    store = SQLAlchemyJobStore(url=cfg.database_url, tablename=JOB_TABLE)
    job = store.lookup_job("digest-daily")
    assert job is not None
    job.next_run_time = job.next_run_time - timedelta(days=days)
    store.update_job(job)
    store.shutdown()


def _run_once(cfg: Config, calls: list[str]) -> DaemonScheduler:
    sched = DaemonScheduler(cfg, rebuild=lambda reason: None, digest=calls.append, watch=False)
    sched.start()
    return sched


@pytest.mark.parametrize(("grace", "expected"), [
    (6 * 86400, ["daily"]),  # all five missed runs are in the window: still exactly one
    (4 * 3600, ["daily"]),
    (3600, []),  # the latest missed run is older than the window: none
])
def test_downtime_gives_one_catch_up_within_grace(make_site, grace: int,
                                                  expected: list[str]) -> None:
    cfg = _site_with_daily(make_site, grace)
    calls: list[str] = []
    _run_once(cfg, calls).shutdown()
    assert calls == []
    _simulate_downtime(cfg, days=5)  # five runs missed, the latest three hours ago
    sched = _run_once(cfg, calls)
    try:
        now = datetime.now(cfg.site.tz)
        assert _wait_for(lambda: all(r.next_run and r.next_run > now
                                     for r in sched.next_runs()))
        time.sleep(1.0)  # let any (wrong) extra runs happen
        assert calls == expected
    finally:
        sched.shutdown()
    (run,) = stored_runs(cfg)
    assert run.job == "digest-daily" and run.next_run is not None
    assert timedelta(hours=20) < run.next_run - datetime.now(cfg.site.tz) < timedelta(hours=22)


def test_unchanged_schedule_keeps_the_stored_next_run(make_site) -> None:
    cfg = _site_with_daily(make_site, 60)
    calls: list[str] = []
    _run_once(cfg, calls).shutdown()
    (before,) = stored_runs(cfg)
    _run_once(cfg, calls).shutdown()
    assert stored_runs(cfg) == [before]


def test_second_instance_is_refused_with_lock_file_and_pid(make_site) -> None:
    import os

    cfg = make_site()
    first = _run_once(cfg, [])
    try:
        assert lock_holder(cfg) == os.getpid()
        with pytest.raises(SchedulerError) as info:
            _run_once(cfg, [])
        message = str(info.value)
        assert str(cfg.data_dir / "scheduler.lock") in message
        assert f"pid {os.getpid()}" in message
    finally:
        first.shutdown()
    assert lock_holder(cfg) is None
    _run_once(cfg, []).shutdown()  # free again once the first stopped


def test_digest_triggers_follow_config(make_site) -> None:
    cfg = make_site(extra='[schedule]\ndaily = "30 6 * * *"\nweekly = ""\n')
    trigger = digest_trigger(cfg, "daily")
    assert trigger is not None and str(trigger.timezone) == "Europe/Berlin"
    assert digest_trigger(cfg, "weekly") is None
    sched = _run_once(cfg, [])
    try:
        jobs = {r.job: r.next_run for r in sched.next_runs()}
        assert set(jobs) == {"digest-daily"}
        fire = jobs["digest-daily"]
        assert fire is not None
        local = fire.astimezone(cfg.site.tz)
        assert (local.hour, local.minute) == (6, 30)
    finally:
        sched.shutdown()
    bad = make_site(extra='[schedule]\ndaily = "every morning"\n')
    with pytest.raises(SchedulerError, match=r"\[schedule\] daily"):
        digest_trigger(bad, "daily")


def test_disabling_a_cadence_removes_its_stored_job(make_site) -> None:
    cfg = make_site()
    _run_once(cfg, []).shutdown()
    assert {r.job for r in stored_runs(cfg)} == {"digest-daily", "digest-weekly"}
    cfg = make_site(extra='[schedule]\nweekly = ""\n')
    _run_once(cfg, []).shutdown()
    assert {r.job for r in stored_runs(cfg)} == {"digest-daily"}


def test_article_change_and_publish_time_trigger_rebuilds(make_site) -> None:
    cfg = make_site(extra="[schedule]\ndebounce_ms = 100\n")
    reasons: list[str] = []

    def rebuild(reason: str) -> datetime | None:
        reasons.append(reason)
        return None

    sched = DaemonScheduler(cfg, rebuild=rebuild, digest=lambda c: None)
    sched.start()
    try:
        for attempt in range(3):  # the watcher thread may still be starting on a busy machine
            (cfg.articles_dir / f"2026-02-0{attempt + 1}-new.txt").write_text(
                "date 2026-02-01 New\n\nHi\n")
            if _wait_for(lambda: "articles_changed" in reasons, timeout=5):
                break
        assert "articles_changed" in reasons
        sched.schedule_publish(datetime.now(cfg.site.tz) + timedelta(seconds=0.5))
        assert _wait_for(lambda: "publish_time" in reasons)
    finally:
        sched.shutdown()
    assert sched.stopping.is_set()


def test_a_burst_is_taken_once_quiet_for_the_rest_of_the_quiet_time() -> None:
    # quiet time 0.5 s, of which the watcher's own step (0.125 s) passed before it reported
    burst = Burst(0.5, 2.0, seen_quiet=0.125)
    assert burst.take(10.0) == set()  # nothing changed
    burst.add(["a.md"], 10.0)
    assert burst.take(10.0) == set()
    assert burst.take(10.25) == set()
    burst.add(["b.md", "a.md"], 10.25)  # a second save inside the quiet time
    assert burst.take(10.5) == set()  # 0.25 s after the last change: not yet
    assert burst.take(10.625) == {"a.md", "b.md"}  # 0.375 s, and the watcher's 0.125
    assert burst.take(10.75) == set()  # taken once
    burst.add([], 11.0)  # a look that saw nothing starts no burst
    assert burst.take(20.0) == set()


def test_a_burst_that_never_pauses_is_taken_after_the_longest_wait() -> None:
    burst = Burst(0.5, 2.0)
    now = 0.0
    taken: list[set[str]] = []
    while now < 3.0:  # a change every 0.1 s, never 0.5 s apart
        burst.add([f"{now:.1f}.md"], now)
        if found := burst.take(now):
            taken.append(found)
        now = round(now + 0.1, 1)
    assert len(taken) == 1 and len(taken[0]) == 21  # changes of 0.0 .. 2.0 s, taken at 2.0 s
    assert burst.take(now + 0.5) == {f"{t / 10:.1f}" + ".md" for t in range(21, 30)}


def test_a_quiet_time_no_longer_than_the_watchers_step_is_taken_at_once() -> None:
    burst = Burst(0.05, 1.6, seen_quiet=0.05)
    burst.add(["a.md"], 5.0)
    assert burst.take(5.0) == {"a.md"}


@contextlib.contextmanager
def _watching(folder: Path, quiet_ms: int) -> Iterator[list[set[str]]]:
    """The bursts of `folder` as they come, once the watcher is seen to run; on leaving, the
    stop must end the watch."""
    stop = threading.Event()
    got: list[set[str]] = []
    watcher = threading.Thread(target=lambda: got.extend(bursts(folder, quiet_ms, stop)))
    watcher.start()
    try:
        for attempt in range(10):  # the watcher may still be starting on a busy machine
            (folder / f"warm-up-{attempt}.txt").write_text("w")
            if _wait_for(lambda: bool(got), timeout=3):
                break
        assert got
        got.clear()
        yield got
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert not watcher.is_alive()


def test_a_watched_folder_gives_its_changes_a_burst_at_a_time(tmp_path) -> None:
    with _watching(tmp_path, 1000) as got:
        for name in ("a.md", "b.md", "a.md"):  # 0.1 s apart: well inside the quiet second
            (tmp_path / name).write_text(name + str(time.monotonic()))
            time.sleep(0.1)
        assert _wait_for(lambda: bool(got), timeout=10)
        time.sleep(1.5)  # nothing more comes of it
        assert got == [{str(tmp_path / "a.md"), str(tmp_path / "b.md")}]


def test_a_folder_that_never_stops_changing_is_still_taken_up(tmp_path) -> None:
    with _watching(tmp_path, 500) as got:
        # A new file every 50 ms for 3 s, never the 0.5 s quiet time apart: the burst is
        # taken after the longest wait of 2 s (4 quiet times), while the files keep coming.
        end, n = time.monotonic() + 3.0, 0
        while time.monotonic() < end:
            (tmp_path / f"busy-{n}.md").write_text("b")
            n += 1
            time.sleep(0.05)
        assert got, "no burst taken during 3 s of changes"
        assert got[0] <= {str(tmp_path / f"busy-{k}.md") for k in range(n)}


def test_changes_within_the_quiet_time_give_one_rebuild(make_site, tmp_path) -> None:
    cfg = make_site(extra="[schedule]\ndebounce_ms = 2000\n")
    burst = [f"2026-02-0{n + 1}-burst.txt" for n in range(3)]
    seen: list[tuple[str, ...]] = []  # per rebuild: the burst files present when it ran

    def rebuild(reason: str) -> datetime | None:
        seen.append(tuple(name for name in burst if (cfg.articles_dir / name).exists()))
        return None

    sched = DaemonScheduler(cfg, rebuild=rebuild, digest=lambda c: None)
    sched.start()
    try:
        time.sleep(0.5)
        for attempt in range(5):  # first make sure the watcher runs (it may still be starting)
            (cfg.articles_dir / f"warm-up-{attempt}.txt").write_text("date 2026-02-01 W\n\nW\n")
            if _wait_for(lambda: bool(seen), timeout=8):
                break
        assert seen
        # The burst: three files written elsewhere and renamed in 0.3 s apart, so each lands
        # well inside the 2 s quiet time after the one before (a stall of 1.7 s would be
        # needed to split it), but far apart for a watcher that waits only its 50 ms default.
        staging = tmp_path / "staging"
        staging.mkdir()
        for n, name in enumerate(burst):
            (staging / name).write_text(f"date 2026-02-0{n + 1} Burst {n}\n\nHi\n")
        for name in burst:
            (staging / name).rename(cfg.articles_dir / name)
            time.sleep(0.3)
        assert _wait_for(lambda: tuple(burst) in seen, timeout=15)
        # Every rebuild that saw the burst saw all of it: one rebuild, after the quiet time.
        assert [files for files in seen if files] == [tuple(burst)]
    finally:
        sched.shutdown()


def test_a_failed_rebuild_is_logged_as_an_event(make_site, caplog) -> None:
    import logging

    from feedpub.logfmt import LogfmtFormatter

    cfg = make_site()

    def rebuild(reason: str) -> datetime | None:
        raise OSError(28, "No space left on device")

    sched = DaemonScheduler(cfg, rebuild=rebuild, digest=lambda c: None, watch=False)
    sched.start()
    try:
        with caplog.at_level(logging.INFO, logger="feedpub.scheduler"):
            sched.rebuild("startup")
    finally:
        sched.shutdown()
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = LogfmtFormatter().format(record)
    assert "event=rebuild_failed" in line and "reason=startup" in line
    assert 'error="OSError: [Errno 28] No space left on device"' in line
    assert sched.stopping.is_set()  # shutdown still ran normally
