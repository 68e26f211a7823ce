"""The Pelican baseline: its own virtual environment, site folder and settings.

Pelican is installed into bench/.work/pelican-venv (never into the project's environment)
and configured to write only what it cannot avoid (one HTML page per article) plus its
all-entries Atom and RSS feeds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _measure import set_aside

REQUIREMENT = "pelican[markdown]>=4,<5"

PELICANCONF = '''\
"""Benchmark settings: article pages plus the all-entries Atom and RSS feeds only."""
AUTHOR = "Bench"
SITENAME = "Bench"
SITEURL = "{siteurl}"
FEED_DOMAIN = SITEURL
RELATIVE_URLS = False
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
PATH = "content"
ARTICLE_PATHS = [""]
PAGE_PATHS = []
STATIC_PATHS = []
PLUGINS = []
THEME = "notmyidea"

FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
FEED_ATOM = None
FEED_RSS = None
CATEGORY_FEED_ATOM = None
CATEGORY_FEED_RSS = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TAG_FEED_ATOM = None
TAG_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
TRANSLATION_FEED_RSS = None
FEED_MAX_ITEMS = {feed_items}

ARTICLE_URL = "posts/{{slug}}.html"
ARTICLE_SAVE_AS = "posts/{{slug}}.html"
DIRECT_TEMPLATES = []
PAGINATED_TEMPLATES = {{}}
DEFAULT_PAGINATION = False
TAG_SAVE_AS = ""
CATEGORY_SAVE_AS = ""
AUTHOR_SAVE_AS = ""
YEAR_ARCHIVE_SAVE_AS = ""
MONTH_ARCHIVE_SAVE_AS = ""
DAY_ARCHIVE_SAVE_AS = ""
DRAFT_SAVE_AS = ""
DRAFT_PAGE_SAVE_AS = ""
PAGE_SAVE_AS = ""
TRANSLATION_FEED = None

CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
CACHE_PATH = "cache"
DELETE_OUTPUT_DIRECTORY = False
'''


def ensure_venv(venv: Path) -> Path | None:
    """Create the Pelican venv if missing; return its `pelican` executable or None."""
    exe = venv / "bin" / "pelican"
    if exe.exists():
        return exe
    print(f"creating {venv} and installing {REQUIREMENT!r} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        REQUIREMENT], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"could not install Pelican ({exc}); the baseline is skipped", file=sys.stderr)
        return None
    return exe if exe.exists() else None


def version(exe: Path) -> str:
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip()


def write_settings(site: Path, siteurl: str, feed_items: int) -> None:
    site.mkdir(parents=True, exist_ok=True)
    text = PELICANCONF.format(siteurl=siteurl.rstrip("/"), feed_items=feed_items)
    (site / "pelicanconf.py").write_text(text, encoding="utf-8")


def clean(site: Path) -> None:
    """Make the next build cold: no output folder, no cache (set aside, see `_measure`)."""
    for name in ("output", "cache", "__pycache__"):
        set_aside(site / name)


def command(exe: Path) -> list[str]:
    return [str(exe), "content", "-s", "pelicanconf.py", "-o", "output"]
