"""Helpers for the tests (and the benchmark) of several nodes on one PostgreSQL store: many
subscribers at once, and `feedpub worker` / `feedpub run` processes with their log lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from feedpub.config import Config
from feedpub.jobs.mailing import plan_issue
from feedpub.store import open_store, schema
from process_helpers import Process


def bulk_subscribers(cfg: Config, count: int, domain: str = "example.com") -> None:
    """`count` active subscribers user0@domain … written in a few statements."""
    now = datetime.now(UTC)
    with open_store(cfg) as store, store.writer.begin() as conn:
        for start in range(0, count, 5000):
            conn.execute(schema.subscribers.insert(), [
                {"email": f"user{i}@{domain}", "email_key": f"user{i}@{domain}",
                 "name": f"User {i}", "status": "active", "created": now, "confirmed": now,
                 "tags": "", "bounces": 0}
                for i in range(start, min(count, start + 5000))])


def plan(cfg: Config, subscribers: int) -> int:
    """Subscribers and one weekly issue for all of them; its id."""
    from mail_helpers import article

    bulk_subscribers(cfg, subscribers)
    now = datetime.now(UTC)
    with open_store(cfg) as store:
        issue = plan_issue(cfg, store, "weekly", now=now, articles=[article(1, now=now)])
    assert issue is not None
    return issue.id


def outbox_counts(cfg: Config, issue_id: int) -> dict[str, int]:
    o = schema.outbox
    with open_store(cfg) as store, store.engine.connect() as conn:
        rows = conn.execute(sa.select(o.c.status, sa.func.count()).where(o.c.issue_id == issue_id)
                            .group_by(o.c.status)).all()
    return {status: int(n) for status, n in rows}


def wait_until(check, timeout: float, what: str, *procs: Process) -> float:
    """Poll `check()` until true; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            logs = "\n\n".join("\n".join(p.lines[-40:]) for p in procs)
            raise AssertionError(f"{what} not within {timeout} s\n{logs}")
        time.sleep(0.05)
    return time.monotonic() - start
