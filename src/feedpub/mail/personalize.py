"""Per-recipient values: the markers a rendered digest holds and how one subscriber fills them.

The digest is rendered once with a marker (`@@fp:name@@`) where each personal value goes;
`Personalizer` splits a body at its markers once and fills them for every recipient. Pure and
light: the sender loads this, never the renderer.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from ..config import Config
from ..errors import DigestError

FIELDS = ("greeting", "subscriber_name", "unsubscribe_url", "preferences_url")
MARKER = "@@fp:{}@@"
_MARKER_RE = re.compile(r"@@fp:([a-z_]+)@@")


def clean_header_text(value: str) -> str:
    """Collapse all whitespace (CR, LF, tabs) to single spaces: safe inside a mail header."""
    return " ".join(value.split())


class Personalizer:
    """Fills the markers of a rendered body with one subscriber's values (pre-split once)."""

    def __init__(self, body: str, *, escape: bool) -> None:
        # Every line break is one "\n" before the body is split, so a CR that ends the text
        # before a marker and an LF that starts the text after it stay two breaks whatever
        # the marker is filled with (the wire form turns each into CRLF).
        body = body.replace("\r\n", "\n").replace("\r", "\n")
        parts = _MARKER_RE.split(body)
        self.static: list[str] = parts[0::2]  # len(static) == len(keys) + 1
        self.keys: list[str] = parts[1::2]
        unknown = set(self.keys) - set(FIELDS)
        if unknown:
            raise DigestError(f"unknown personalization field(s): {', '.join(sorted(unknown))}")
        self.escape = escape

    def value(self, values: Mapping[str, str], key: str) -> str:
        return html.escape(values[key]) if self.escape else values[key]

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.static[0]]
        for key, static in zip(self.keys, self.static[1:], strict=True):
            out.append(self.value(values, key))
            out.append(static)
        return "".join(out)


ISSUE_MARKER = "@@fp-issue@@"  # the issue number, known once the issue is recorded


def view_url(cfg: Config) -> str:
    """The "View in your browser" link of an issue, its number still a marker."""
    return f"{cfg.site.base_url}newsletter/{ISSUE_MARKER}.html"


def fill_issue(body: str, issue_id: int) -> str:
    """`body` with the issue's archive page named (the archive index when not yet recorded)."""
    if ISSUE_MARKER not in body:
        return body
    if issue_id > 0:
        return body.replace(ISSUE_MARKER, str(issue_id))
    return body.replace(f"newsletter/{ISSUE_MARKER}.html", "newsletter/index.html")


def public_values() -> dict[str, str]:
    """What the archive page shows where a message has personal values: nothing personal."""
    return {"greeting": "Hello,", "subscriber_name": "", "unsubscribe_url": "",
            "preferences_url": ""}


def subscriber_values(name: str | None, unsubscribe_url: str,
                      preferences_url: str) -> dict[str, str]:
    """The per-subscriber values the markers stand for."""
    clean = clean_header_text(name) if name else ""
    return {
        "greeting": f"Hello {clean}," if clean else "Hello,",
        "subscriber_name": clean,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
    }
