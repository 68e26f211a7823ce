"""Serving benchmark: requests/s for feed.xml from `feedpub run` against nginx.

Usage (from the repository root):

    .venv/bin/python bench/serve.py                    # 3 runs of 5 s per case
    .venv/bin/python bench/serve.py --runs 1 --duration 2s

Needs `wrk` and `nginx` from Debian (apt-get install -y wrk nginx-light). A site of synthetic
articles is built under bench/.work/serve/; `feedpub run` and an nginx with a temporary config
each listen on an ephemeral loopback port and are stopped afterwards. For both servers wrk
measures a plain 200 and a conditional GET answered with 304 (If-None-Match). Medians of the
runs are printed with the ratio feedpub/nginx. The script prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "serve"
ARTICLES = 60


def need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                  else None)
    if path is None:
        sys.exit(f"{tool} is not installed: run `apt-get install -y {package}` and try again")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_site() -> Path:
    """A site with ARTICLES dated entries, built once."""
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "articles").mkdir(parents=True)
    (WORK / "config.toml").write_text(textwrap.dedent("""
        [site]
        title = "Bench"
        base_url = "https://bench.example.org/"
        [schedule]
        daily = ""
        weekly = ""
        """), encoding="utf-8")
    for n in range(ARTICLES):
        day = f"2025-{1 + n // 28:02d}-{1 + n % 28:02d}"
        body = " ".join(f"Sentence {k} of article {n} says something." for k in range(40))
        (WORK / "articles" / f"{day}-entry-{n}.txt").write_text(
            f"date {day} Entry number {n}\n\nTags: bench, serve\n\n{body}\n\n{body}\n",
            encoding="utf-8")
    return WORK


def start_feedpub(site: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedpub", "-q", "--config", str(site / "config.toml"), "run",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}/feed.xml"


def start_nginx(nginx: str, public: Path, workers: str) -> tuple[subprocess.Popen[bytes], str,
                                                                 Path]:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="feedpub-nginx-"))
    conf = tmp / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        worker_processes {workers};
        daemon off;
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            types {{ application/rss+xml xml; }}
            charset utf-8;
            charset_types application/rss+xml;
            server {{
                listen 127.0.0.1:{port};
                root {public};
                add_header Cache-Control "public, max-age=300";
            }}
        }}
        """), encoding="utf-8")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}/feed.xml", tmp


def wait_ready(url: str, timeout: float = 30.0) -> str:
    """Wait for a 200 and return the response's ETag."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.headers["ETag"])
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer within {timeout:.0f} s")


def check_304(url: str, etag: str) -> None:
    request = urllib.request.Request(url, headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return
    sys.exit(f"{url} did not answer 304 to If-None-Match: {etag}")


# Counts response statuses (wrk -s); with one wrk thread the counts are complete.
STATUS_SCRIPT = """
local counts = {}
response = function(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
done = function(summary, latency, requests)
  for status, n in pairs(counts) do io.write(string.format("status %d %d\\n", status, n)) end
end
"""


def wrk(binary: str, url: str, duration: str, connections: int, threads: int,
        etag: str | None, script: Path) -> float:
    cmd = [binary, f"-t{threads}", f"-c{connections}", f"-d{duration}", "-s", str(script), url]
    if etag:
        cmd[1:1] = ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        sys.exit(f"unexpected wrk output:\n{out}")
    expected = "304" if etag else "200"
    other = {code: n for code, n in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE)
             if code != expected}
    errors = re.search(r"Socket errors: .*", out)
    if other or errors:
        print(f"  warning: {url}: unexpected statuses {other or '-'}; "
              f"{errors.group(0) if errors else ''}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", default="5s", help="wrk -d per run (default 5s)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nginx-workers", default="1",
                        help="nginx worker_processes (default 1, like feedpub's one process)")
    args = parser.parse_args()
    wrk_bin = need("wrk", "wrk")
    nginx_bin = need("nginx", "nginx-light")
    site = make_site()
    subprocess.run([sys.executable, "-m", "feedpub", "-q", "--config", str(site / "config.toml"),
                    "build"], check=True)
    print(f"cores: {os.cpu_count()}, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}, {args.runs} run(s) per case, nginx workers: {args.nginx_workers}")
    size = (site / "public" / "feed.xml").stat().st_size
    print(f"file: feed.xml, {size} bytes")

    results: dict[tuple[str, str], float] = {}
    script = WORK / "status.lua"
    script.write_text(STATUS_SCRIPT, encoding="utf-8")
    fp_proc, fp_url = start_feedpub(site)
    ng_proc, ng_url, ng_tmp = start_nginx(nginx_bin, site / "public", args.nginx_workers)
    try:
        etags = {"feedpub": wait_ready(fp_url), "nginx": wait_ready(ng_url)}
        urls = {"feedpub": fp_url, "nginx": ng_url}
        for name in urls:
            check_304(urls[name], etags[name])
        for case in ("200", "304"):
            for name in ("nginx", "feedpub"):
                samples = [wrk(wrk_bin, urls[name], args.duration, args.connections,
                               args.threads, etags[name] if case == "304" else None, script)
                           for _ in range(args.runs)]
                results[(name, case)] = statistics.median(samples)
                shown = ", ".join(f"{s:,.0f}" for s in samples)
                print(f"{name:8} {case}: median {results[(name, case)]:>10,.0f} req/s  "
                      f"(runs: {shown})")
    finally:
        fp_proc.send_signal(signal.SIGTERM)
        ng_proc.send_signal(signal.SIGQUIT)
        fp_proc.wait(timeout=30)
        ng_proc.wait(timeout=30)
        shutil.rmtree(ng_tmp, ignore_errors=True)
    for case in ("200", "304"):
        ratio = results[("feedpub", case)] / results[("nginx", case)]
        target = "  (target >= 0.25)" if case == "304" else ""
        print(f"ratio feedpub/nginx {case}: {ratio:.2f}{target}")


if __name__ == "__main__":
    main()
