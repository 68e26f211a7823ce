"""Benchmark `feedpub worker` on PostgreSQL: one issue, 1, 2 and 4 workers (prints only).

    .venv/bin/python bench/scale.py                      # 50,000 subscribers
    .venv/bin/python bench/scale.py --subscribers 5000   # a quick run

The SMTP sink is four aiosmtpd processes sharing one port (SO_REUSEPORT: the kernel spreads
the connections), counting messages, so that it is not the bottleneck. For each count of
workers: a fresh PostgreSQL database (the machine's server, FEEDPUB_TEST_POSTGRES), the
subscribers, one issue planned for all of them; then the workers start (each with
`[delivery.smtp] connections` sessions) and the script polls the outbox. The figure is the
steady rate: messages recorded sent between 10% and 90% of the issue, over the time between
(start-up and the tail left out). The single-process SQLite figure is the same issue sent by
`feedpub digest send` on a SQLite file. Speed-up is against one worker; per-worker
throughput is compared with the SQLite figure.

Beside each figure: the CPU time per message of the senders, the sink and the rest of the
machine (PostgreSQL above all) over the whole send (from /proc), and the ceiling that sets on
this machine: its cores divided by the machine's CPU time per message. When the ceiling is
near the measured rate, more workers cannot help: the machine is out of CPU, not the workers
out of work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "scale"  # only this folder is ours to clear
SERVER = os.environ.get("FEEDPUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SINKS = 4


def sink(port: int) -> None:
    """One sink process: accept and count every message on the shared port."""
    import asyncio
    import threading

    from aiosmtpd.smtp import SMTP

    class Count:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 queued"

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(Count(), hostname="sink"), host="127.0.0.1", port=port, reuse_port=True))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    loop.call_soon_threadsafe(server.close)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site(folder: Path, url: str | None, port: int, connections: int) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "articles").mkdir(parents=True)
    store = f'\n[store]\nurl = "{url}"\n' if url else ""
    (folder / "config.toml").write_text(f"""
[site]
title = "Bench"
base_url = "https://news.example.org/"
description = "Bench"
author = "Bench"
email = "editor@news.example.org"

[digest]
from_address = "letters@news.example.org"

[delivery]
backend = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
connections = {connections}
per_connection = 1000

[schedule]
daily = ""
weekly = ""
{store}""", encoding="utf-8")
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    (folder / "articles" / "news.md").write_text(
        f"---\ntitle: News\ndate: {when}\n---\nSomething new.\n", encoding="utf-8")
    return folder / "config.toml"


def prepare(config: Path, subscribers: int) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from cluster_helpers import bulk_subscribers
    from feedpub.config import load_config
    from feedpub.jobs.mailing import plan_issue
    from feedpub.jobs.publish import published_articles
    from feedpub.store import open_store

    cfg = load_config(config)
    bulk_subscribers(cfg, subscribers)
    now = datetime.now(UTC)
    with open_store(cfg) as store:
        issue = plan_issue(cfg, store, "weekly", now=now, articles=published_articles(cfg, now))
    assert issue is not None
    return issue.id


def sent(config: Path) -> int:
    import sqlalchemy as sa

    from feedpub.config import load_config
    from feedpub.store import open_store, schema

    with open_store(load_config(config)) as store, store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.outbox)
                                .where(schema.outbox.c.status == "sent")).scalar_one())


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(config: Path, total: int, commands: list[list[str]],
            sinks: list[int] | None = None) -> float:
    """Start the commands, poll until the issue is sent; the steady rate (10% to 90%).
    Prints the CPU per message of the senders, the sink and the rest of the machine
    (PostgreSQL, this script, anything else running)."""
    before = (children_cpu(), cpu_seconds(sinks or []), machine_cpu())
    procs = [subprocess.Popen([sys.executable, "-m", "feedpub", "--config", str(config), *c],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in commands]
    marks: dict[float, float] = {}
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            done = sent(config)
            for share in (0.1, 0.9):
                if share not in marks and done >= share * total:
                    marks[share] = time.monotonic()
            if done >= total:
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=120)
    after = (children_cpu(), cpu_seconds(sinks or []), machine_cpu())
    senders, sink, machine = (1000 * (b - a) / total for a, b in zip(before, after, strict=True))
    rest = max(0.0, machine - senders - sink)
    cores = os.cpu_count() or 1
    print(f"    CPU per message: senders {senders:.2f} ms, sink {sink:.2f} ms, the rest "
          f"(PostgreSQL, other load) {rest:.2f} ms; {cores} cores at that cost allow at most "
          f"{1000 * cores / machine:.0f} msg/s")
    return 0.8 * total / (marks[0.9] - marks[0.1])


def database() -> str:
    import psycopg

    name = f"feedpub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + \
        "/" + name


def drop(url: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    port = free_port()
    sinks = [subprocess.Popen([sys.executable, __file__, "--sink-port", str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(SINKS)]
    for proc in sinks:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    total, connections = args.subscribers, args.connections
    print(f"{total} subscribers, {connections} SMTP connections per process, sink: {SINKS} "
          f"aiosmtpd processes on 127.0.0.1:{port}; load before: {os.getloadavg()[0]:.2f}")
    try:
        config = site(WORK / "sqlite", None, port, connections)
        prepare(config, total)
        sink_pids = [proc.pid for proc in sinks]
        single = measure(config, total, [["digest", "send", "--cadence", "weekly"]], sink_pids)
        print(f"SQLite, one process (digest send): {single:8.0f} msg/s")
        base = None
        for count in (int(n) for n in args.workers.split(",")):
            url = database()
            try:
                config = site(WORK / f"pg{count}", url, port, connections)
                prepare(config, total)
                rate = measure(config, total, [["worker", "--name", f"w{n}"]
                                               for n in range(count)], sink_pids)
            finally:
                drop(url)
            base = base or rate
            print(f"PostgreSQL, {count} worker(s): {rate:8.0f} msg/s   speed-up {rate / base:4.2f}x"
                  f"   per worker {rate / count:6.0f} msg/s = {rate / count / single:4.2f} of "
                  f"SQLite   (load {os.getloadavg()[0]:.2f})")
    finally:
        for proc in sinks:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink-port"]:
        sink(int(sys.argv[2]))
    else:
        main()
