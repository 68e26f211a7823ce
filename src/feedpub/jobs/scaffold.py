"""`feedpub init`: a new site folder with the commented config, one example article, an empty
templates/ folder with a note, and a .gitignore. Never overwrites anything.

The config written is the reference shipped in the package (`default_config.toml`, the same
text as the repository's config.toml), with the three settings every site must make filled in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from ..config import DEFAULT_CONFIG_NAME, SiteConfig, parse_config
from ..errors import ConfigError
from ..fsutil import atomic_write
from .configcheck import check_config

TEMPLATES_NOTE = """\
Templates placed here replace the built-in ones of the same name.

To change one, copy the built-in template of that name into this folder and edit the copy.
The built-ins ship inside the package, in feedpub/default_templates/: for example
home.html.j2 (the home page), article.html.j2 (an entry), digest.html.j2 and digest.txt.j2
(the newsletter) and new-article.txt.j2 (what `feedpub new` writes).

An empty folder means every built-in template applies.
"""

GITIGNORE = """\
# Built by `feedpub build` / `feedpub run`: made again from articles/ at any time.
public/
# The database, build cache, lock and secret key: keep them, but not in version control.
data/
# Messages written by the maildir delivery backend.
outbox/
"""

EXAMPLE_ARTICLE = """\
date {when} Welcome to {title}

By: {author}

Tags: news

This is the first entry of the site. Every file in articles/ is one entry: the first line
holds the date and the title, then come optional By:, Tags: and Draft: lines, then the text.

Writing the Next One

Run `feedpub new "Title of the entry"` to start an entry from the template, or copy this
file. Paragraphs are separated by blank lines; a short line on its own becomes a subheading.
"""


@dataclass(frozen=True)
class SiteAnswers:
    """The three things every site sets (the rest keeps the commented defaults)."""

    title: str
    base_url: str
    from_address: str


def reference_config() -> str:
    """The commented config.toml shipped in the package."""
    return resources.files("feedpub").joinpath("default_config.toml").read_text("utf-8")


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _set(text: str, section: str, key: str, value: str) -> str:
    """Replace `key = ...` inside `[section]`, keeping the aligned comment after it."""
    start = text.index(f"[{section}]\n")
    pattern = re.compile(rf"^{key} = (\"[^\"\n]*\")([ \t]*#.*)?$", re.MULTILINE)
    match = pattern.search(text, start)
    if match is None:
        raise ConfigError(f"the reference config has no {section}.{key}")
    quoted = _toml_string(value)
    comment = match.group(2) or ""
    if comment:  # keep the comment column where it can
        width = len(match.group(1)) + len(comment) - len(comment.lstrip())
        comment = " " * max(1, width - len(quoted)) + comment.lstrip()
    return text[:match.start()] + f"{key} = {quoted}{comment}" + text[match.end():]


def site_config(answers: SiteAnswers) -> str:
    """The reference config with the answers filled in."""
    url = answers.base_url.strip()
    if url and not url.endswith("/"):
        url += "/"
    text = _set(reference_config(), "site", "title", answers.title.strip())
    text = _set(text, "site", "base_url", url)
    text = _set(text, "digest", "from_address", answers.from_address.strip())
    return _local_port(text, url)


def _local_port(text: str, url: str) -> str:
    """A local base_url with a port: `feedpub run` listens there ([web] port), so the site is
    served at the address the config names."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return text  # reported by the config check
    if port is None or not SiteConfig(base_url=url).local:
        return text
    start = text.index("[web]\n")
    match = re.compile(r"^port = (\d+)", re.MULTILINE).search(text, start)
    if match is None:
        return text
    return text[:match.start(1)] + str(port).ljust(len(match.group(1))) + text[match.end(1):]


def create_site(folder: Path, answers: SiteAnswers, now: datetime) -> list[Path]:
    """Write the new site into `folder` (created if missing) and return the files written.
    Nothing is written when any of them exists already, or when an answer is not valid."""
    text = site_config(answers)
    cfg = check_config(parse_config(text, folder.resolve(), DEFAULT_CONFIG_NAME))
    when = now.astimezone(cfg.site.tz)
    files = {
        folder / DEFAULT_CONFIG_NAME: text,
        folder / ".gitignore": GITIGNORE,
        folder / "templates" / "README.txt": TEMPLATES_NOTE,
        folder / "articles" / f"{when.date().isoformat()}-welcome.txt": EXAMPLE_ARTICLE.format(
            when=when.strftime("%Y-%m-%dT%H:%M"), title=cfg.site.title,
            author=cfg.site.author),
    }
    existing = [path for path in files if path.exists()]
    if (folder / "articles").is_dir() and any((folder / "articles").iterdir()):
        existing.append(folder / "articles")
    if existing:
        raise ConfigError(
            f"{folder}: not creating a site over existing files: "
            f"{', '.join(str(p) for p in existing)} (choose an empty or new folder; "
            "nothing was written)"
        )
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, content.encode("utf-8"))
    return list(files)
