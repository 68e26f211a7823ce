"""`feedpub status`: what the daemon is doing, read from the lock file, job table and store.

Read-only: it never starts, stops or changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..articles.cache import load_manifest
from ..config import Config
from ..errors import ArticleError, FeedpubError
from ..scheduler import CADENCES, ScheduledRun, digest_trigger, lock_holder, stored_runs
from ..store import open_store
from ..store.queue import QueueSummary

if TYPE_CHECKING:
    from ..jobs.queue import RelayError

META_LAST_BUILD = "daemon.last_build"
META_NEXT_PUBLISH = "daemon.next_publish"  # ISO time of the next publish-time rebuild, or ""


@dataclass(frozen=True)
class DaemonStatus:
    """What `feedpub status` shows."""

    pid: int | None  # of the running daemon, None when none runs
    next_runs: list[ScheduledRun]
    last_build: str | None
    next_publish: str | None = None  # the next publish-time rebuild (future-dated article)
    last_issue: dict[str, str] = field(default_factory=dict)
    subscribers: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[ArticleError] = field(default_factory=list)  # by the last build
    queue: QueueSummary | None = None  # rows still to send over all issues, oldest deferred
    relay_error: RelayError | None = None  # the mail server could not be used since ...
    mail_reports: dict[str, int] = field(default_factory=dict)  # kind -> count, by mail
    complaint_rate: str = ""  # the last 30 days against the 0.3% line


def status(cfg: Config, now: datetime | None = None) -> DaemonStatus:
    """Collect the daemon's state from the lock file, the job table, the store and outbox."""
    from ..jobs.mailing import digest_status  # the mail stack, only when status is asked for
    from ..jobs.queue import queue_summary

    now = now or datetime.now(UTC)
    notes: list[str] = []
    runs = [r for r in stored_runs(cfg) if r.job.startswith("digest-")]
    if not runs:
        for cadence in CADENCES:
            try:
                trigger = digest_trigger(cfg, cadence)
            except FeedpubError as exc:
                notes.append(f"no next {cadence} run: {exc}")
                continue
            if trigger is not None:
                runs.append(ScheduledRun(f"digest-{cadence}",
                                         trigger.get_next_fire_time(None, now)))
        notes.append("no stored schedule yet: next runs computed from [schedule]")
    from ..jobs.bounces import report_stats

    with open_store(cfg) as store:
        last_build = store.get_meta(META_LAST_BUILD)
        next_publish = store.get_meta(META_NEXT_PUBLISH) or None
        subscribers = store.count_subscribers()
        reports = report_stats(store, now)
    issues = digest_status(cfg, limit=50)
    last_issue: dict[str, str] = {}
    outbox = {"pending": 0, "deferred": 0, "sent": 0, "failed": 0}
    for issue in issues:  # newest first
        last_issue.setdefault(issue.cadence, f"#{issue.issue_id} {issue.created.isoformat()} "
                                             f"({issue.status})")
        outbox["pending"] += issue.pending
        outbox["deferred"] += issue.deferred
        outbox["sent"] += issue.sent
        outbox["failed"] += issue.failed
    if len(issues) == 50:
        notes.append("outbox counts cover the newest 50 issues")
    queue, relay = queue_summary(cfg)
    return DaemonStatus(pid=lock_holder(cfg), next_runs=runs, last_build=last_build,
                        next_publish=next_publish, last_issue=last_issue,
                        subscribers=subscribers, outbox=outbox, notes=notes,
                        skipped=list(load_manifest(cfg).errors), queue=queue,
                        relay_error=relay,
                        mail_reports=reports.totals, complaint_rate=reports.rate_line)
