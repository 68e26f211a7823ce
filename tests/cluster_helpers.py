"""Helpers for the tests (and the benchmark) of several nodes on one PostgreSQL store: many
subscribers at once, and `feedpub worker` / `feedpub run` processes with their log lines."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from feedpub.config import Config
from feedpub.jobs.mailing import plan_issue
from feedpub.store import open_store, schema


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


class Process:
    """A `feedpub …` subprocess whose output lines are collected as they come."""

    def __init__(self, cfg: Config | Path, *args: str) -> None:
        config = cfg if isinstance(cfg, Path) else cfg.root / "config.toml"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedpub", "--config", str(config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not logged:\n" + "\n".join(self.lines))

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(check, timeout: float, what: str, *procs: Process) -> float:
    """Poll `check()` until true; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            logs = "\n\n".join("\n".join(p.lines[-40:]) for p in procs)
            raise AssertionError(f"{what} not within {timeout} s\n{logs}")
        time.sleep(0.05)
    return time.monotonic() - start
