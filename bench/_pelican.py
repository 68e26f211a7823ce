"""The Pelican baselines: its own virtual environment, site folders and settings.

Pelican is installed into bench/.work/pelican-venv (never into the project's environment).
Two settings, each the closest Pelican comes to one of feedpub's builds of the same articles:

- `feeds`: the all-entries Atom and RSS feeds with every entry (`FEED_MAX_ITEMS = None`) and
  nothing else. `ARTICLE_SAVE_AS = ""` makes Pelican skip each article page before rendering
  it (its writer returns at once for an empty name); no direct templates, no tag, category,
  author, archive or draft pages. Compared with feedpub's `[site] pages = false`, which
  writes every entry too (in its RFC 5005 archive pages, 50 per file, in RSS, Atom and JSON)
  besides the newest 20 in feed.xml, atom.xml, feed.json and each tag's feeds.
- `full`: the same feeds plus one page per article (`posts/<slug>.html`), the home page
  paginated 20 to a page (`index.html`, `page/2.html`, ...) and one unpaginated page per
  tag listing all its articles (`tags/<slug>.html`), as feedpub's full build writes them.
  What differs: Pelican has no previous/next links on article pages in its default theme,
  writes no sitemap.xml, robots.txt or 404 page and no tag feeds; feedpub writes no
  `archives.html`, `tags.html` or category pages, which are off here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _measure import set_aside

REQUIREMENT = "pelican[markdown]>=4,<5"
MODES = ("feeds", "full")

COMMON = '''\
AUTHOR = "Bench"
SITENAME = "Bench"
SITEURL = "{siteurl}"
FEED_DOMAIN = SITEURL
RELATIVE_URLS = False
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
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
TRANSLATION_FEED = None
FEED_MAX_ITEMS = None  # every entry, as feedpub's archive pages carry them

ARTICLE_URL = "posts/{{slug}}.html"
CATEGORY_SAVE_AS = ""
AUTHOR_SAVE_AS = ""
YEAR_ARCHIVE_SAVE_AS = ""
MONTH_ARCHIVE_SAVE_AS = ""
DAY_ARCHIVE_SAVE_AS = ""
DRAFT_SAVE_AS = ""
DRAFT_PAGE_SAVE_AS = ""
PAGE_SAVE_AS = ""

CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
CACHE_PATH = "cache"
DELETE_OUTPUT_DIRECTORY = False
'''

FEEDS_ONLY = '''\
"""Benchmark settings: the all-entries Atom and RSS feeds, no pages at all."""
ARTICLE_SAVE_AS = ""  # the writer returns before rendering: no article pages
DIRECT_TEMPLATES = []
PAGINATED_TEMPLATES = {}
DEFAULT_PAGINATION = False
TAG_SAVE_AS = ""
'''

FULL = '''\
"""Benchmark settings: feeds, article pages, the paginated home page and tag pages."""
ARTICLE_SAVE_AS = "posts/{slug}.html"
DIRECT_TEMPLATES = ["index"]
# A tag page lists all its articles on one page, as feedpub's do (the theme needs its tag
# pages paginated: one page as large as the corpus).
PAGINATED_TEMPLATES = {"index": None, "tag": 1_000_000}
DEFAULT_PAGINATION = 20
PAGINATION_PATTERNS = ((1, "{url}", "{save_as}"),
                       (2, "page/{number}.html", "page/{number}.html"))
TAG_URL = "tags/{slug}.html"
TAG_SAVE_AS = "tags/{slug}.html"
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


def write_settings(site: Path, siteurl: str, mode: str) -> None:
    """pelicanconf.py of one mode (`MODES`) in `site`."""
    site.mkdir(parents=True, exist_ok=True)
    head = FEEDS_ONLY if mode == "feeds" else FULL
    text = head + COMMON.format(siteurl=siteurl.rstrip("/"))
    (site / "pelicanconf.py").write_text(text, encoding="utf-8")


def clean(site: Path) -> None:
    """Make the next build cold: no output folder, no cache (set aside, see `_measure`)."""
    for name in ("output", "cache", "__pycache__"):
        set_aside(site / name)


def command(exe: Path, content: Path) -> list[str]:
    """Build the articles of `content` (shared by both modes) into ./output."""
    return [str(exe), str(content), "-s", "pelicanconf.py", "-o", "output"]
