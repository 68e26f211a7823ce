"""The newsletter's public archive: a page per sent issue with nothing of any subscriber,
an index and a feed of issues, rebuilt from the store; each message links to its page."""

from __future__ import annotations

import json
import mailbox
import re
import shutil

import feedparser
import httpx

from feedpub.daemon.run import bind
from feedpub.jobs.mailing import send_digest
from feedpub.jobs.publish import build_feeds
from feedpub.store import open_store
from feedpub.web.app import create_app
from mail_helpers import NOW, article
from web_helpers import ServerThread

SUBSCRIBERS = (("zoe@example.org", "Zoë Ünicode", ("city",)),
               ("bert@example.net", "Bertram Quill", ("food",)))


def _articles():
    return [article(1, title="Ferry adds a crossing", tags=("city",)),
            article(2, title="Night market returns", tags=("food",))]


def _setup(make_site, extra=""):
    cfg = make_site(extra=extra)
    with open_store(cfg) as store:
        for email, name, tags in SUBSCRIBERS:
            sub, _ = store.add_subscriber(email, name)
            store.update_preferences(sub.id, cadence=None, tags=list(tags))
    return cfg


def _messages(cfg):
    box = mailbox.Maildir(str(cfg.path(cfg.delivery.maildir)), create=False)
    return [message for _, message in box.items()]


def test_issue_page_holds_nothing_of_any_subscriber(make_site) -> None:
    cfg = _setup(make_site)
    report = send_digest(cfg, "weekly", now=NOW, articles=_articles())
    assert report.sent == 2 and report.issue_id is not None
    page = cfg.public_dir / f"newsletter/{report.issue_id}.html"
    text = page.read_text(encoding="utf-8")
    assert "Ferry adds a crossing" in text and "Night market returns" in text  # the whole issue
    for email, name, _ in SUBSCRIBERS:
        assert name not in text and email not in text
    for personal in ("@@fp", "token", "unsubscribe", "preferences", "Unsubscribe"):
        assert personal not in text
    # each message links to the page
    messages = _messages(cfg)
    assert len(messages) == 2
    for message in messages:
        html_part = message.get_payload()[1].get_payload(decode=True).decode()
        text_part = message.get_payload()[0].get_payload(decode=True).decode()
        link = f"{cfg.site.base_url}newsletter/{report.issue_id}.html"
        assert link in html_part and "View in your browser" in html_part
        assert link in text_part
    index = (cfg.public_dir / "newsletter/index.html").read_text(encoding="utf-8")
    assert f'href="{report.issue_id}.html"' in index
    data = json.loads((cfg.public_dir / "newsletter/feed.json").read_bytes())
    assert [item["url"] for item in data["items"]] == [link]
    for name in ("feed.xml", "feed.atom"):
        feed = feedparser.parse((cfg.public_dir / "newsletter" / name).read_bytes())
        assert not feed.bozo, (name, feed.bozo_exception)
        assert [e.link for e in feed.entries] == [link]
        entry = feed.entries[0]
        body = (entry.get("content") or [{"value": entry.summary}])[0]["value"]
        assert "Night market returns" in body


def test_archive_survives_a_rebuild_of_public(make_site) -> None:
    cfg = _setup(make_site)
    report = send_digest(cfg, "weekly", now=NOW, articles=_articles())
    before = (cfg.public_dir / f"newsletter/{report.issue_id}.html").read_bytes()
    shutil.rmtree(cfg.public_dir)
    build_feeds(cfg)
    assert (cfg.public_dir / f"newsletter/{report.issue_id}.html").read_bytes() == before
    assert build_feeds(cfg).written == []  # nothing changed: nothing written again


def test_public_archive_off_writes_none_of_it(make_site) -> None:
    cfg = _setup(make_site, extra="\n[newsletter]\npublic_archive = false\n")
    report = send_digest(cfg, "weekly", now=NOW, articles=_articles())
    assert report.sent == 2
    assert not (cfg.public_dir / "newsletter").exists()
    for message in _messages(cfg):
        assert b"newsletter/" not in message.as_bytes()
        assert b"View in your browser" not in message.as_bytes()


def test_view_in_browser_link_resolves_over_http(make_site) -> None:
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    cfg = make_site()
    text = (cfg.root / "config.toml").read_text(encoding="utf-8")
    (cfg.root / "config.toml").write_text(text.replace("https://news.example.org/", base))
    from feedpub.config import load_config

    cfg = load_config(cfg.root / "config.toml")
    with open_store(cfg) as store:
        store.add_subscriber("zoe@example.org", "Zoë Ünicode")
    build_feeds(cfg)
    server = ServerThread(create_app(cfg), sock).start()
    try:
        send_digest(cfg, "weekly", now=NOW, articles=_articles())
        [message] = _messages(cfg)
        html_part = message.get_payload()[1].get_payload(decode=True).decode()
        link = re.search(r'href="([^"]+/newsletter/\d+\.html)"', html_part).group(1)
        response = httpx.get(link)
        assert response.status_code == 200
        assert "Ferry adds a crossing" in response.text and "Zoë" not in response.text
        assert httpx.get(base + "newsletter/index.html").status_code == 200
    finally:
        server.stop()
