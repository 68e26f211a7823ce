"""Feeds: RSS 2.0, Atom 1.0 and JSON Feed files (subscription, tag and archive feeds).

`plan` decides which files exist and which entries each holds, `entries` prepares the shared
entry values, `xml` writes RSS and Atom, `jsonfeed` writes JSON Feed, and `writers.plan_feeds`
ties them into planned output files with keys and lazy renderers. Built from articles alone.

Never imports: site, mail, delivery, store, jobs, web, scheduler, daemon or cli. Feeds and
delivery never import each other.

The documented entry points stay importable from here (`feedpub.feeds.plan_feeds`,
`feedpub.feeds.FEED_CONTENT_TYPES`, `feedpub.feeds.tag_slugs`); they are loaded on first use,
so importing a light module of this package does not load feedgen.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"plan_feeds": "writers", "FEED_CONTENT_TYPES": "plan", "tag_slugs": "plan"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
