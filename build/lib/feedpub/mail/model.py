"""The mail wing's records: values only, so the store can keep them without loading a renderer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Digest:
    """One rendered issue (or one variant of it, for a tag filter), before personalization."""

    cadence: str
    subject: str
    html: str  # inlined CSS; holds @@fp:...@@ markers for the per-subscriber values
    text: str
    article_ids: tuple[str, ...]
