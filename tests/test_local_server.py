"""`feedpub run` for the writer on their own machine, as a real process: article errors in
the log, on /healthz and in `feedpub status`; `--drafts`; `--dev` with /_outbox/; links that
follow `--port`; and `feedpub new` dating an entry now."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
from click.testing import CliRunner

from conftest import BASE_CONFIG
from feedpub.cli import cli
from feedpub.jobs.publish import build_feeds
from feedpub.web.app import create_app
from test_daemon import Daemon, _poll
from web_helpers import ServerThread

BAD = "date 2024-13-45 Broken\n\nBody.\n"
GOOD = "date 2024-03-05 Good entry\n\nBody.\n"
DRAFT = "date 2024-03-06 Draft entry\n\nDraft: yes\n\nBody.\n"


def local_config(port: int = 8080) -> str:
    return BASE_CONFIG.replace('base_url = "https://news.example.org/"',
                               f'base_url = "http://127.0.0.1:{port}/"')


def test_served_site_reports_skipped_articles_in_log_healthz_and_status(make_site,
                                                                        daemons) -> None:
    cfg = make_site({"good.txt": GOOD, "bad.txt": BAD})
    daemon = Daemon(cfg)
    daemons.append(daemon)
    url = daemon.url
    line = daemon.wait_for(r"event=article_skipped .*").group(0)
    assert "file=bad.txt" in line and "line=1" in line and "message=" in line and "fix=" in line
    _poll(url + "feed.xml", "Good entry")
    health = httpx.get(url + "healthz", timeout=5)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    (skipped,) = body["articles_skipped"]
    assert skipped["file"] == "bad.txt" and skipped["line"] == 1 and skipped["fix"]
    status = subprocess.run([sys.executable, "-m", "feedpub", "--config",
                             str(cfg.root / "config.toml"), "status"],
                            capture_output=True, text=True, timeout=60)
    assert "not published: 1 article(s)" in status.stdout and "bad.txt:1" in status.stdout
    # a public base_url: no banner on the home page, whatever the errors
    home = httpx.get(url, timeout=5)
    assert home.status_code == 200 and "feedpub-article-errors" not in home.text
    (cfg.articles_dir / "bad.txt").write_text(GOOD.replace("Good", "Fixed"))
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while httpx.get(url + "healthz", timeout=5).json()["status"] != "ok":
        assert datetime.now(UTC) < deadline, "healthz never went back to ok"


def test_dev_drafts_outbox_and_links_following_the_port(make_site, daemons) -> None:
    cfg = make_site({"good.txt": GOOD, "draft.txt": DRAFT, "bad.txt": BAD},
                    config_text=local_config(port=1))
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "config.toml"), "run",
         "--port", "0", "--dev", "--drafts"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    daemon = Daemon.__new__(Daemon)  # the helper's log reader, on this command line
    daemon.proc, daemon.lines = proc, []
    daemon._reader = threading.Thread(target=daemon._read, daemon=True)
    daemon._reader.start()
    daemons.append(daemon)
    url = daemon.url
    port = int(re.search(r":(\d+)/$", url).group(1))
    moved = daemon.wait_for(r"event=base_url_port .*").group(0)
    assert "http://127.0.0.1:1/" in moved and f"http://127.0.0.1:{port}/" in moved
    feed = _poll(url + "feed.xml", "Draft entry")  # --drafts: built into the local site
    links = [e.link for e in feedparser.parse(feed.content).entries]
    assert links and all(link.startswith(f"http://127.0.0.1:{port}/") for link in links)
    daemon.wait_for(r"event=build .*drafts=1")
    home = httpx.get(url, timeout=5)
    assert 'id="feedpub-article-errors"' in home.text and "bad.txt:1" in home.text
    # a subscription mail written to the Maildir, read back through /_outbox/
    CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "subscribers", "add",
                             "reader@example.com", "--pending"])
    listing = httpx.get(url + "_outbox/", timeout=5)
    assert listing.status_code == 200 and "reader@example.com" in listing.text
    message = httpx.get(url + "_outbox/1", timeout=5)
    assert message.status_code == 200 and "/confirm?token=" in message.text
    # the digest never reads the drafts build
    done = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "digest",
                                    "preview", "--latest", "5", "--out", str(cfg.root)])
    assert "Draft entry" not in (cfg.root / "weekly-latest.html").read_text(), done.output


def test_outbox_pages_exist_only_with_dev(make_site) -> None:
    cfg = make_site({"good.txt": GOOD}, config_text=local_config())
    build_feeds(cfg)
    for dev, expected in ((False, 404), (True, 200)):
        server = ServerThread(create_app(cfg, dev=dev)).start()
        try:
            assert httpx.get(server.url + "_outbox/", timeout=5).status_code == expected
        finally:
            server.stop()


def test_drafts_are_refused_for_a_public_site(make_site) -> None:
    cfg = make_site({"good.txt": GOOD})
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "run",
                                      "--port", "0", "--drafts"])
    assert result.exit_code == 2 and "--drafts" in result.output


def test_new_dates_the_entry_now_and_the_summary_counts_each_kind(make_site) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    cfg = make_site({"good.txt": GOOD, "draft.txt": DRAFT, "bad.txt": BAD,
                     "later.txt": f"date {future} Later\n\nBody.\n"})
    before = datetime.now(cfg.site.tz).replace(second=0, microsecond=0)
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "new", "Now"])
    header = Path(result.output.strip()).read_text(encoding="utf-8").split()[1]
    written = datetime.fromisoformat(header).replace(tzinfo=cfg.site.tz)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", header)
    assert before <= written <= datetime.now(cfg.site.tz)
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "build"])
    assert "1 published, 2 draft(s), 1 scheduled, 1 skipped" in result.output, result.output
