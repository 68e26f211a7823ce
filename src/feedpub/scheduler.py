"""The daemon's clock: digests on cron schedules, feed rebuilds on file changes and at the
publish time of future-dated articles. One scheduler per data set, guarded by a lock file.

Digest jobs live in the project database (APScheduler's SQLAlchemyJobStore, table
`feedpub_jobs`) so that after downtime exactly one catch-up run happens within the grace window
(coalesce + misfire_grace_time). Stored jobs refer to `run_digest_job` by import path; the live
callable (which carries the stop event and metrics) is looked up by data folder, a key the lock
file makes unique to this process.

On a PostgreSQL store several nodes may run `feedpub run`; exactly one of them, the leader,
fires the scheduled jobs. Leadership is a PostgreSQL advisory lock held on a connection of
its own (`store.leader`). The others are standbys: every third of `[cluster]
failover_seconds` they try to take the lock, so one of them takes over within that time once
the leader's session ends; the leader checks its session as often, and right before a job
acts, and stops firing as soon as it is gone. Stored jobs then refer to the cluster, not to a
data folder, so a new leader takes them up where the old one left them (a missed run is
caught up once, within the grace window). SQLite keeps its file lock alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config
from .errors import SchedulerError
from .fsutil import bursts
from .logfmt import log_event
from .store.dialect import create_engine
from .store.leader import AdvisoryLock, is_shared

log = logging.getLogger("feedpub.scheduler")

JOB_TABLE = "feedpub_jobs"
LOCK_NAME = "scheduler.lock"
CADENCES = ("daily", "weekly")

_RUNNERS: dict[str, Callable[[str], None]] = {}  # data folder -> digest runner of this process


def run_digest_job(data_key: str, cadence: str) -> None:
    """Entry point of stored digest jobs (referenced by import path in the job table)."""
    runner = _RUNNERS.get(data_key)
    if runner is None:
        raise SchedulerError(f"no running scheduler owns {data_key}; digest {cadence} not sent")
    runner(cadence)


def lock_path(cfg: Config) -> Path:
    return cfg.data_dir / LOCK_NAME


class InstanceLock:
    """An exclusive `flock` on <data>/scheduler.lock, held for the life of the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="ascii")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SchedulerError(
                f"another 'feedpub run' (pid {holder}) already runs the scheduler for this data "
                f"set: the lock file {self.path} is held. Stop that process first, or give this "
                "one its own [paths] data folder."
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def lock_holder(cfg: Config) -> int | None:
    """Pid of the process holding the scheduler lock, or None if no scheduler runs."""
    path = lock_path(cfg)
    try:
        handle = open(path, encoding="ascii")  # noqa: SIM115
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def digest_trigger(cfg: Config, cadence: str) -> CronTrigger | None:
    """The cron trigger of a cadence in the site's timezone, or None when disabled."""
    expression = getattr(cfg.schedule, cadence).strip()
    if not expression:
        return None
    try:
        return CronTrigger.from_crontab(expression, timezone=cfg.site.tz)
    except ValueError as exc:
        raise SchedulerError(
            f"[schedule] {cadence} = {expression!r} is not a valid crontab expression: {exc} "
            "(use five fields, e.g. '0 8 * * mon'; an empty string disables it)"
        ) from exc


def _job_store(cfg: Config) -> SQLAlchemyJobStore:
    """APScheduler's job table in the project database, on an engine set up like the store's
    (WAL, busy timeout) so scheduler and store writes wait for each other instead of failing."""
    return SQLAlchemyJobStore(engine=create_engine(cfg.database_url), tablename=JOB_TABLE)


@dataclass(frozen=True)
class ScheduledRun:
    job: str
    next_run: datetime | None


def stored_runs(cfg: Config) -> list[ScheduledRun]:
    """Next run times of the stored digest jobs (readable while another process runs them)."""
    store = _job_store(cfg)
    try:
        return [ScheduledRun(job.id, job.next_run_time) for job in store.get_all_jobs()]
    except Exception:  # noqa: BLE001 - no table yet, or an unreadable job: nothing stored
        return []
    finally:
        store.shutdown()


class DaemonScheduler:
    """Owns the APScheduler instance, the lock and the articles/ watcher of one daemon."""

    def __init__(self, cfg: Config, *, rebuild: Callable[[str], datetime | None],
                 digest: Callable[[str], None], watch: bool = True,
                 changed: Callable[[set[str] | None], None] | None = None) -> None:
        self.cfg = cfg
        self._rebuild = rebuild
        self._changed = changed  # told the paths of each burst of changes, before the rebuild
        self._digest = digest
        self._watch = watch
        shared = is_shared(cfg.database_url)
        self._key = "cluster" if shared else str(cfg.data_dir.resolve())
        self._lock = InstanceLock(lock_path(cfg))
        self._leader = AdvisoryLock(cfg.database_url,
                                    check_seconds=cfg.cluster.failover_seconds / 3
                                    ) if shared else None
        self._state = threading.Lock()  # taking or losing leadership, and shutting down
        self._campaigner: threading.Thread | None = None
        self._intervals: dict[str, tuple[int, Callable[[], None], bool]] = {}
        self._publish_at: datetime | None = None
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Take the lock, restore or create the digest jobs, start watching articles/.

        On a shared store: become the leader, or a standby that keeps trying."""
        self._lock.acquire()
        try:
            _RUNNERS[self._key] = self._digest
            if self._leader is None:
                self._start()
            else:
                self._campaign_once(first=True)
                self._campaigner = threading.Thread(target=self._campaign, daemon=True,
                                                    name="feedpub-leader")
                self._campaigner.start()
            if self._watch:
                self.cfg.articles_dir.mkdir(parents=True, exist_ok=True)
                self._watcher = threading.Thread(target=self._watch_articles,
                                                 name="feedpub-watch", daemon=True)
                self._watcher.start()
        except BaseException:
            _RUNNERS.pop(self._key, None)
            if self._leader is not None:
                self._leader.close()
            self._lock.release()
            raise

    # -- leadership (shared store) ----------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this process fires the scheduled jobs now."""
        return self.scheduler is not None and (self._leader is None or self._leader.held)

    @property
    def is_standby(self) -> bool:
        """On a shared store, whether another process leads now (never on SQLite)."""
        return self._leader is not None and not self._leader.held

    def confirm_leader(self) -> bool:
        """Right before a scheduled job acts: still the leader? (its session answers)"""
        if self._leader is None:
            return True
        with self._state:
            if self._leader.alive():
                return True
            self._demote("the leader's database session is gone")
            return False

    def _campaign(self) -> None:
        period = self.cfg.cluster.failover_seconds / 3
        while not self._stop.wait(period):
            try:
                self._campaign_once()
            except Exception as exc:  # noqa: BLE001 - e.g. the database went away: next turn
                log_event(log, "campaign_failed", level=logging.WARNING,
                          error=f"{type(exc).__name__}: {exc}")

    def _campaign_once(self, first: bool = False) -> None:
        assert self._leader is not None
        with self._state:
            if self._stop.is_set():
                return
            if self._leader.held:
                if not self._leader.alive():
                    self._demote("the leader's database session is gone")
                return
            if self._leader.try_acquire():
                log_event(log, "leader", pid=os.getpid())
                try:
                    self._start()
                except BaseException:
                    self._leader.release()
                    raise
            elif first:
                log_event(log, "standby", pid=os.getpid(),
                          failover_seconds=self.cfg.cluster.failover_seconds)

    def _demote(self, reason: str) -> None:
        """Stop firing jobs (called with `_state` held); become a standby again."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        log_event(log, "leadership_lost", level=logging.WARNING, reason=reason)

    def _start(self) -> None:
        grace = self.cfg.schedule.grace_seconds
        scheduler = BackgroundScheduler(
            jobstores={"default": _job_store(self.cfg),
                       "memory": MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
            timezone=self.cfg.site.tz,
        )
        scheduler.start(paused=True)
        self.scheduler = scheduler
        for cadence in CADENCES:
            self._sync_digest_job(scheduler, cadence, grace)
        for job_id, (seconds, func, first_now) in self._intervals.items():
            self._add_interval(job_id, seconds, func, first_now)
        self._add_publish(self._publish_at)
        scheduler.resume()
        log_event(log, "scheduler_started", lock=self._lock.path,
                  jobs=",".join(f"{r.job}@{r.next_run.isoformat() if r.next_run else '-'}"
                                for r in self.next_runs()))

    def _sync_digest_job(self, scheduler: BackgroundScheduler, cadence: str, grace: int) -> None:
        """Keep a stored job whose schedule is unchanged (so missed runs are caught up)."""
        job_id = f"digest-{cadence}"
        trigger = digest_trigger(self.cfg, cadence)
        existing = scheduler.get_job(job_id, jobstore="default")
        if trigger is None:
            if existing is not None:
                scheduler.remove_job(job_id, jobstore="default")
            return
        args = [self._key, cadence]
        same = (existing is not None and str(existing.trigger) == str(trigger)
                and str(getattr(existing.trigger, "timezone", "")) == str(trigger.timezone)
                and list(existing.args) == args)
        if same:
            scheduler.modify_job(job_id, jobstore="default", coalesce=True,
                                 misfire_grace_time=grace, max_instances=1)
            return
        scheduler.add_job(run_digest_job, trigger, args=args, id=job_id, name=f"{cadence} digest",
                          jobstore="default", replace_existing=True, coalesce=True,
                          misfire_grace_time=grace, max_instances=1)

    def rebuild(self, reason: str) -> None:
        """Run one build now (serialized) and schedule the next future-dated publish."""
        with self._build_lock:
            if self._stop.is_set():
                return
            try:
                next_publish = self._rebuild(reason)
            except Exception as exc:  # noqa: BLE001 - a failed build must not stop the daemon
                log_event(log, "rebuild_failed", level=logging.ERROR, reason=reason,
                          error=f"{type(exc).__name__}: {exc}")
                log.debug("rebuild failed (reason=%s)", reason, exc_info=True)
                return
        self.schedule_publish(next_publish)

    def schedule_publish(self, when: datetime | None) -> None:
        """A one-off rebuild at the publish time of the next future-dated article."""
        self._publish_at = when
        if self._stop.is_set():
            return
        self._add_publish(when)

    def _add_publish(self, when: datetime | None) -> None:
        if self.scheduler is None:
            return
        if when is None:
            if self.scheduler.get_job("publish", jobstore="memory") is not None:
                self.scheduler.remove_job("publish", jobstore="memory")
            return
        self.scheduler.add_job(self.rebuild, DateTrigger(run_date=when + timedelta(seconds=1)),
                               args=["publish_time"], id="publish", jobstore="memory",
                               replace_existing=True, misfire_grace_time=None)
        log_event(log, "publish_scheduled", at=when)

    def every(self, job_id: str, seconds: int, func: Callable[[], None], *,
              first_now: bool = False) -> None:
        """Run `func` every `seconds` (0: never), one run at a time, skipped runs coalesced;
        with `first_now`, also as soon as this process becomes the one that fires jobs."""
        if seconds > 0:
            self._intervals[job_id] = (seconds, func, first_now)
            self._add_interval(job_id, seconds, func, first_now)

    def _add_interval(self, job_id: str, seconds: int, func: Callable[[], None],
                      first_now: bool = False) -> None:
        if self.scheduler is None:
            return
        extra: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if first_now else {}
        self.scheduler.add_job(func, IntervalTrigger(seconds=seconds), id=job_id,
                               jobstore="memory", replace_existing=True, coalesce=True,
                               max_instances=1, **extra)

    def _watch_articles(self) -> None:
        """Rebuild once per burst of changes under the articles folder (`fsutil.bursts`)."""
        for paths in bursts(self.cfg.articles_dir, self.cfg.schedule.debounce_ms, self._stop):
            log_event(log, "articles_changed", files=len(paths))
            if self._changed is not None:
                self._changed(paths)
            self.rebuild("articles_changed")

    def next_runs(self) -> list[ScheduledRun]:
        if self.scheduler is None:
            return []
        return [ScheduledRun(job.id, job.next_run_time) for job in self.scheduler.get_jobs()]

    def shutdown(self, wait: bool = True) -> None:
        """Stop watching and scheduling; with `wait`, let running jobs checkpoint first."""
        with self._state:
            self._stop.set()
        if self._campaigner is not None:
            self._campaigner.join(timeout=10)
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        if wait and self._build_lock.acquire(timeout=120):  # let a running build finish
            self._build_lock.release()
        _RUNNERS.pop(self._key, None)
        if self._leader is not None:
            self._leader.close()
        self._lock.release()
        log_event(log, "scheduler_stopped")

    @property
    def stopping(self) -> threading.Event:
        """Set when the daemon is shutting down; long jobs poll it to checkpoint."""
        return self._stop
