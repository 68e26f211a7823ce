"""Media in feeds: logo and icon, entry images, enclosures, podcast tags; read back by
feedparser, newsboat and (when a checkout is given) the W3C Feed Validation Service's code."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from conftest import BASE_CONFIG
from feedpub.jobs.publish import build_feeds
from web_helpers import ServerThread

MEDIA_SITE = BASE_CONFIG.replace('timezone = "Europe/Berlin"', textwrap.dedent('''\
    timezone = "Europe/Berlin"
    logo = "media/logo.png"
    icon = "media/icon.png"'''))
PODCAST = "\n[feeds]\npodcast = true\npodcast_category = \"Technology\"\n"
EPISODE = """\
---
title: Episode one
date: 2024-03-05T10:00:00+01:00
tags: [audio]
image: media/cover-1.jpg
attachments:
  - url: media/ep1.mp3
    type: audio/mpeg
    duration: "00:42:10"
  - {url: "https://cdn.example.net/ep1.ogg", type: audio/ogg, length: 999}
---
The first episode, with an <img src="media/inline.png" alt="x"> picture.
"""
PHOTO = """\
date 2024-03-04 A photo of the harbour

Image: media/harbour.jpg

Tags: photos

The harbour at dawn, seen from the pier.
"""
INLINE = """\
---
title: Only an inline picture
date: 2024-03-03
---
Look: ![the pier](media/pier.png)
"""
ARTICLES = {"2024-03-05-episode.md": EPISODE, "2024-03-04-photo.txt": PHOTO,
            "2024-03-03-inline.md": INLINE}
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"


@pytest.fixture
def media_site(make_site):
    cfg = make_site(ARTICLES, config_text=MEDIA_SITE + PODCAST)
    (cfg.public_dir / "media").mkdir(parents=True)
    (cfg.public_dir / "media" / "ep1.mp3").write_bytes(b"\0" * 12345)
    report = build_feeds(cfg)
    assert report.ok, report.skipped
    return cfg


def test_feedparser_reads_images_enclosures_and_logo(media_site) -> None:
    for name in ("feed.xml", "atom.xml"):
        feed = feedparser.parse((media_site.public_dir / name).read_bytes())
        assert not feed.bozo, feed.bozo_exception
        episode, photo, inline = feed.entries
        enclosures = [(e.href, e.type, e.length) for e in episode.enclosures]
        first = ("https://news.example.org/media/ep1.mp3", "audio/mpeg", "12345")
        if name == "feed.xml":  # RSS 2.0 allows one enclosure: the first
            assert enclosures == [first]
            assert feed.feed.image.href == "https://news.example.org/media/logo.png"
        else:
            assert enclosures == [first, ("https://cdn.example.net/ep1.ogg", "audio/ogg", "999")]
            assert feed.feed.logo == "https://news.example.org/media/logo.png"
            assert feed.feed.icon == "https://news.example.org/media/icon.png"
        assert episode.media_thumbnail[0]["url"] == "https://news.example.org/media/cover-1.jpg"
        assert episode.media_content[0]["url"] == "https://news.example.org/media/cover-1.jpg"
        assert photo.media_thumbnail[0]["url"] == "https://news.example.org/media/harbour.jpg"
        assert inline.media_thumbnail[0]["url"] == "https://news.example.org/media/pier.png"


def test_json_feed_image_attachments_icon(media_site) -> None:
    data = json.loads((media_site.public_dir / "feed.json").read_bytes())
    assert data["icon"] == "https://news.example.org/media/logo.png"
    assert data["favicon"] == "https://news.example.org/media/icon.png"
    episode, photo, _ = data["items"]
    assert episode["image"] == "https://news.example.org/media/cover-1.jpg"
    assert episode["attachments"] == [
        {"url": "https://news.example.org/media/ep1.mp3", "mime_type": "audio/mpeg",
         "size_in_bytes": 12345, "duration_in_seconds": 2530},
        {"url": "https://cdn.example.net/ep1.ogg", "mime_type": "audio/ogg",
         "size_in_bytes": 999}]
    assert photo["image"] == "https://news.example.org/media/harbour.jpg"
    assert "attachments" not in photo


def test_podcast_feed_meets_apple_requirements(media_site) -> None:
    """Apple Podcasts' RSS feed requirements (podcasters.apple.com, "Podcast RSS feed
    requirements"), checked offline: channel title, description, language, link,
    itunes:image, itunes:category, itunes:explicit (true/false), itunes:author; each episode
    a title, an enclosure with url, length and type, a guid."""
    root = etree.fromstring((media_site.public_dir / "feed.xml").read_bytes())
    channel = root.find("channel")
    ns = {"itunes": ITUNES}
    for tag in ("title", "description", "language", "link"):
        assert (channel.findtext(tag) or "").strip(), tag
    assert channel.find("itunes:image", ns).get("href").startswith("https://")
    assert channel.find("itunes:category", ns).get("text") == "Technology"
    assert channel.findtext("itunes:explicit", namespaces=ns) in ("true", "false")
    assert channel.findtext("itunes:author", namespaces=ns) == "Test Editor"
    episodes = [item for item in channel.findall("item") if item.find("enclosure") is not None]
    assert len(episodes) == 1
    for item in episodes:
        enclosure = item.find("enclosure")
        assert int(enclosure.get("length")) > 0 and enclosure.get("type") == "audio/mpeg"
        assert item.findtext("guid") and item.findtext("title")
        assert item.findtext("itunes:duration", namespaces=ns) == "2530"


def test_no_media_no_new_elements(make_site) -> None:
    cfg = make_site({"2024-03-04-photo.txt": PHOTO.replace("Image: media/harbour.jpg\n\n", "")})
    build_feeds(cfg)
    data = (cfg.public_dir / "feed.xml").read_bytes()
    assert b"xmlns:media" not in data and b"itunes" not in data and b"<image>" not in data


def test_attachment_without_length_outside_the_site_is_reported(make_site) -> None:
    bad = EPISODE.replace("length: 999", "type2: x").replace(", type2: x", "")
    cfg = make_site({"2024-03-05-episode.md": bad, "2024-03-04-photo.txt": PHOTO})
    report = build_feeds(cfg)
    assert [e.source for e in report.skipped] == ["2024-03-05-episode.md"]
    message = str(report.skipped[0])
    assert "ep1.mp3" in message and "length" in message
    assert b"harbour" in (cfg.public_dir / "feed.xml").read_bytes()


def test_bad_attachment_front_matter_names_the_line(make_site) -> None:
    cfg = make_site({"2024-03-05-episode.md": EPISODE.replace('"00:42:10"', "forty")})
    report = build_feeds(cfg)
    assert len(report.skipped) == 1
    assert report.skipped[0].line == 6 and "duration" in str(report.skipped[0])


def _validator() -> Path | None:
    folder = os.environ.get("FEEDVALIDATOR_DIR", "")
    return Path(folder) if folder and (Path(folder) / "src" / "feedvalidator").is_dir() else None


CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import feedvalidator
from feedvalidator.logging import Error, Warning
bad = 0
for path, url in zip(sys.argv[2::2], sys.argv[3::2]):
    with open(path, encoding="utf-8") as handle:
        events = feedvalidator.validateString(handle.read(), firstOccurrenceOnly=0,
                                              base=url)["loggedEvents"]
    for event in events:
        if isinstance(event, (Error, Warning)):
            bad += 1
            print(path, type(event).__name__, event.params)
sys.exit(1 if bad else 0)
"""


@pytest.mark.skipif(_validator() is None, reason="set FEEDVALIDATOR_DIR to a checkout of "
                    "github.com/w3c/feedvalidator (and pip install html5lib) to run it")
def test_w3c_validator_no_error_no_warning(media_site) -> None:
    folder = _validator()
    assert folder is not None
    args = []
    for path in sorted(media_site.public_dir.rglob("*")):
        if path.suffix in (".xml", ".atom"):
            relative = path.relative_to(media_site.public_dir).as_posix()
            args += [str(path), media_site.site.base_url + relative]
    assert len(args) >= 8
    python = os.environ.get("FEEDVALIDATOR_PYTHON", sys.executable)
    done = subprocess.run([python, "-c", CHECK, str(folder / "src"), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


NEWSBOAT = shutil.which("newsboat")


def test_newsboat_lists_the_enclosure(media_site, tmp_path) -> None:
    if NEWSBOAT is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI is set but newsboat is missing: apt-get install -y newsboat")
        pytest.skip("newsboat is not installed (apt-get install -y newsboat); CI is not set")
    from feedpub.daemon.run import bind
    from feedpub.web.app import create_app

    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/feed.xml"
    server = ServerThread(create_app(media_site), sock).start()
    try:
        (tmp_path / "urls").write_text(url + "\n")
        (tmp_path / "config").write_text("")
        cache = tmp_path / "cache.db"
        done = subprocess.run(
            [NEWSBOAT, "-u", str(tmp_path / "urls"), "-c", str(cache), "-C",
             str(tmp_path / "config"), "-x", "reload"], capture_output=True, text=True,
            timeout=60, env={**os.environ, "HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT title, enclosure_url, enclosure_type FROM rss_item "
                          "WHERE enclosure_url != ''").fetchall()
    assert rows == [("Episode one", "https://news.example.org/media/ep1.mp3", "audio/mpeg")]
