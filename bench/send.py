"""Benchmark `feedpub digest send` over SMTP against a plain smtplib loop (prints only).

    .venv/bin/python bench/send.py            # 10,000 subscribers, 1 and 4 connections, 3 runs
    .venv/bin/python bench/send.py --quick    # small smoke run
    .venv/bin/python bench/send.py --dkim     # also with DKIM signing on (RSA 2048)

An aiosmtpd sink runs in a separate process on loopback and only counts messages. For each
connection count the script times the whole `python -m feedpub digest send` process (planning
the issue, rendering, writing 10,000 outbox rows, sending, recording each reply) and reads its
peak memory (ru_maxrss of the child). The baseline, in the same run, sends the same
pre-rendered message bytes with smtplib over the same number of connections to the same sink.
It also reads the sink's own CPU time around each send (from /proc), so that what sending
costs can be set beside what receiving the same messages costs the server.
The last step repeats the send with 10x the subscribers and compares peak memory.
Then, on a copy of the last run's store: the per-message status check (taken right before
each message) and the cost of one "sent" record with `synchronous = FULL` against `NORMAL`.
With --dkim, each run also sends with `[delivery.dkim]` on (one RSA 2048 key, every copy
signed) and prints that figure and its ratio to the same floor beside the unsigned one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work" / "send"  # only this folder is ours to clear
PER_CONNECTION = 1000


def sink(port: int) -> None:
    """Run an SMTP sink that accepts and counts every message (child process)."""
    from aiosmtpd.controller import Controller

    class Count:
        def __init__(self) -> None:
            self.n = 0

        async def handle_EHLO(self, server: object, session: Any, envelope: object,
                              hostname: str, responses: list[str]) -> list[str]:
            # aiosmtpd reads pipelined commands but does not advertise it; most MTAs do
            session.host_name = hostname
            responses.insert(len(responses) - 1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            self.n += 1
            return "250 2.0.0 queued"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # run until the parent closes our stdin
    finally:
        controller.stop()


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a running process has used so far, or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def article_text(n: int, day: str) -> str:
    para = ("The council met on Tuesday to discuss the harbour, the ferry timetable and the "
            "new cycle lanes along the river. Residents asked questions about parking. ")
    return (f"---\ntitle: 'Town news item {n}: what happened this week'\ndate: {day}\n"
            f"author: Desk {n % 3}\ntags: [town, item{n % 4}]\n---\n"
            + "\n\n".join(para * 2 for _ in range(4))
            + f"\n\nMore at [the minutes](/minutes/{n}.html).\n")


def make_site(base: Path, port: int, connections: int, subscribers: int,
              template_db: Path | None, dkim_key: Path | None = None) -> Path:
    """A site folder with 20 fresh articles and `subscribers` active subscribers."""
    if base.exists():
        shutil.rmtree(base)
    (base / "articles").mkdir(parents=True)
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for n in range(20):
        (base / "articles" / f"item-{n:02d}.md").write_text(article_text(n, day),
                                                            encoding="utf-8")
    (base / "config.toml").write_text(
        '[site]\ntitle = "Bench Town News"\nbase_url = "https://news.example.org/"\n'
        '[digest]\nfrom_address = "letters@news.example.org"\nmax_articles = 20\n'
        '[delivery]\nbackend = "smtp"\n'
        f'[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"connections = {connections}\nper_connection = {PER_CONNECTION}\n"
        + (f'[delivery.dkim]\nselector = "bench"\nkey_file = "{dkim_key}"\n' if dkim_key
           else ""), encoding="utf-8")
    db = base / "data" / "feedpub.db"
    db.parent.mkdir()
    (base / "data" / "secret.key").write_text("bench-secret-key", encoding="ascii")
    if template_db is not None:
        shutil.copy(template_db, db)
    else:
        fill_subscribers(base, subscribers)
    return base


def fill_subscribers(base: Path, count: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from feedpub.config import load_config
    from feedpub.store import open_store, schema

    cfg = load_config(base / "config.toml")
    now = datetime.now(UTC)
    with open_store(cfg) as store:
        for start in range(0, count, 5000):
            with store.writer.begin() as conn:
                conn.execute(schema.subscribers.insert(), [
                    {"email": f"reader{i}@example.com", "name": f"Reader {i}",
                     "status": "active", "created": now, "confirmed": now, "tags": "",
                     "bounces": 0}
                    for i in range(start, min(count, start + 5000))])


def dkim_key() -> Path:
    """One RSA 2048 key for the DKIM runs, written once under WORK."""
    sys.path.insert(0, str(ROOT / "src"))
    from feedpub.delivery.dkim import generate_key

    path = WORK / "dkim-bench.key"
    if not path.exists():
        generate_key(path, "news.example.org", "bench")
    return path


def feedpub_send(site: Path) -> tuple[float, int, str, float]:
    """Seconds and peak RSS (KiB) of one `digest send` process, its last output line and
    its CPU seconds (user + system; the sink is another process and is not counted)."""
    env = {**os.environ, "FEEDPUB_SECRET_KEY": "bench-secret-key"}
    command = [sys.executable, "-m", "feedpub", "--config", str(site / "config.toml"),
               "digest", "send"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = status
    if status != 0:
        raise SystemExit(f"feedpub digest send failed:\n{out}")
    return (elapsed, usage.ru_maxrss, out.strip().splitlines()[-1],
            usage.ru_utime + usage.ru_stime)


def preview_bytes(site: Path) -> bytes:
    env = {**os.environ, "FEEDPUB_SECRET_KEY": "bench-secret-key"}
    out = site / "preview"
    subprocess.run([sys.executable, "-m", "feedpub", "--config", str(site / "config.toml"),
                    "digest", "preview", "--out", str(out)], env=env, check=True,
                   capture_output=True)
    return (out / "weekly-next.eml").read_bytes()


def smtplib_floor(port: int, data: bytes, count: int, connections: int) -> float:
    """Seconds for a bare smtplib loop to send `count` copies over `connections` sessions."""
    def worker(share: range) -> None:
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="news.example.org")
        try:
            for n, i in enumerate(share):
                if n and n % PER_CONNECTION == 0:
                    client.quit()
                    client = smtplib.SMTP("127.0.0.1", port, local_hostname="news.example.org")
                client.sendmail("letters@news.example.org", [f"reader{i}@example.com"], data)
        finally:
            client.quit()

    shares = [range(k, count, connections) for k in range(connections)]
    threads = [threading.Thread(target=worker, args=(s,)) for s in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--subscribers", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-memory", action="store_true", help="skip the 10x memory run")
    parser.add_argument("--memory-factor", type=int, default=10,
                        help="subscribers of the memory run, as a multiple of the others")
    parser.add_argument("--dkim", action="store_true",
                        help="also measure with DKIM signing on (RSA 2048)")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    count = args.subscribers or (500 if args.quick else 10_000)
    runs = args.runs or (1 if args.quick else 3)
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--sink", str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert server.stdout is not None
    server.stdout.readline()
    try:
        WORK.mkdir(parents=True, exist_ok=True)
        template = make_site(WORK / "template", port, 1, count, None) / "data" / "feedpub.db"
        data = preview_bytes(WORK / "template")
        print(f"{count} subscribers, 20 articles, message {len(data)} bytes, per_connection "
              f"{PER_CONNECTION}, "
              f"sink aiosmtpd on 127.0.0.1:{port} (separate process)")
        key = dkim_key() if args.dkim else None
        peak_at: dict[int, int] = {}
        for connections in args.connections:
            ours, floors, peaks, signed, cpu, signed_cpu = [], [], [], [], [], []
            received: list[float] = []
            for run in range(runs):
                site = make_site(WORK / f"run-{connections}-{run}", port, connections, count,
                                 template)
                sink_before = process_cpu(server.pid)
                seconds, peak, line, used = feedpub_send(site)
                sink_after = process_cpu(server.pid)
                if sink_before is not None and sink_after is not None:
                    received.append((sink_after - sink_before) * 1000 / count)
                ours.append(count / seconds)
                peaks.append(peak)
                cpu.append(used * 1000 / count)
                floors.append(count / smtplib_floor(port, data, count, connections))
                if key is not None:
                    site = make_site(WORK / f"dkim-{connections}-{run}", port, connections,
                                     count, template, key)
                    seconds, _, _, used = feedpub_send(site)
                    signed.append(count / seconds)
                    signed_cpu.append(used * 1000 / count)
            mine, floor = statistics.median(ours), statistics.median(floors)
            peak_at[connections] = int(statistics.median(peaks))
            each = ", ".join(f"{x:.0f}" for x in ours)
            base = ", ".join(f"{x:.0f}" for x in floors)
            print(f"connections={connections}: feedpub {mine:8.0f} msg/s | smtplib floor "
                  f"{floor:8.0f} msg/s | ratio {mine / floor:5.2f} | peak RSS "
                  f"{peak_at[connections] / 1024:6.1f} MiB | runs {each} vs {base}")
            print(f"    sender CPU {statistics.median(cpu):.3f} ms/msg (whole process: start-up,"
                  f" planning, rendering, sending, recording; runs "
                  + ", ".join(f"{x:.3f}" for x in cpu) + ")")
            if received:
                print(f"    receiving server (the aiosmtpd sink) CPU "
                      f"{statistics.median(received):.3f} ms/msg in the same sends -> sender "
                      f"/ receiver {statistics.median(cpu) / statistics.median(received):.2f}"
                      " (runs " + ", ".join(f"{x:.3f}" for x in received) + ")")
            print(f"    last run: {line}")
            last_db, last_rate = site / "data" / "feedpub.db", mine
            if signed:
                with_dkim = statistics.median(signed)
                print(f"connections={connections}: feedpub with DKIM {with_dkim:8.0f} msg/s | "
                      f"ratio to the floor {with_dkim / floor:5.2f} | to unsigned "
                      f"{with_dkim / mine:5.2f} | CPU {statistics.median(signed_cpu):.3f} ms/msg "
                      "| runs " + ", ".join(f"{x:.0f}" for x in signed))
        from _queue_costs import check_cost, commit_cost

        check = check_cost(last_db, WORK)
        print(f"status check before each message: {check:.1f} us median "
              f"({check / (1e6 / last_rate) * 100:.1f}% of the time per message at "
              f"{last_rate:.0f} msg/s)")
        full, normal = commit_cost(last_db, WORK, "FULL"), commit_cost(last_db, WORK, "NORMAL")
        print(f"'sent' record: {full:.0f} us with synchronous=FULL vs {normal:.0f} us with "
              f"NORMAL (median of 2000 commits; +{full - normal:.0f} us per message)")
        if not args.no_memory:
            big = count * args.memory_factor
            connections = args.connections[-1]
            site = make_site(WORK / "big", port, connections, big, None)
            seconds, peak, line, used = feedpub_send(site)
            base = peak_at[connections]
            print(f"memory: {big} subscribers peak RSS {peak / 1024:.1f} MiB vs {count}: "
                  f"{base / 1024:.1f} MiB -> x{peak / base:.2f} ({big / seconds:.0f} msg/s, "
                  f"CPU {used * 1000 / big:.3f} ms/msg)")
            print(f"    {line}")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
