"""Bounds on the work one article may cause: nesting depth of front matter and HTML.

A YAML composer and an HTML tree builder both recurse (or rescan) once per level of
nesting, so a small file nested 100,000 deep costs minutes or a RecursionError. Both are
measured here first, in one linear pass, and refused past `MAX_DEPTH` with an
`ArticleError` naming the file and line.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..errors import ArticleError

MAX_DEPTH = 100  # default of [articles] max_depth

DEPTH_FIX = "flatten the nesting (at most {depth} levels)"


class _DepthExceeded(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


@functools.cache
def _bounded_loader() -> Any:
    """The loader class, made on first use: PyYAML costs a build that reads no Markdown
    article (most rebuilds) about 15 ms to import."""
    import yaml

    class BoundedLoader(yaml.BaseLoader):
        """PyYAML's BaseLoader (every value a string, list or mapping; no tags, no objects)
        whose composer refuses nodes nested deeper than `max_depth`."""

        max_depth = MAX_DEPTH
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > self.max_depth:
                    raise _DepthExceeded(self.peek_event().start_mark.line)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return BoundedLoader


def load_front_matter(front: str, source: str, max_depth: int = MAX_DEPTH) -> Any:
    """The front matter's data (BaseLoader rules). Nesting past `max_depth` is an
    ArticleError; other YAML errors propagate as yaml.YAMLError."""
    loader = _bounded_loader()(front)
    loader.max_depth = max_depth
    try:
        return loader.get_single_data()
    except _DepthExceeded as exc:
        raise ArticleError(source, f"the front matter is nested more than {max_depth} levels "
                           "deep", line=exc.line + 2,
                           fix=DEPTH_FIX.format(depth=max_depth)) from None
    finally:
        loader.dispose()


# HTML elements that never hold others (void) or whose end tag may be left out (a new one
# closes the last): neither adds a level however many follow one another.
_VOID = "area base br col embed hr img input link meta param source track wbr"
_OPTIONAL_END = ("p li dt dd tr td th option optgroup rb rt rp rtc thead tbody tfoot colgroup "
                 "caption html head body")
_FLAT = frozenset(f"{_VOID} {_OPTIONAL_END}".split())
# The tag name only: matching attributes as well would rescan the rest of the file from
# every "<" that is never closed by a ">".
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")


def html_depth(text: str, limit: int) -> tuple[int, int]:
    """(deepest element nesting seen, 0-based offset where it first passed `limit`, or -1).

    A linear scan of start and end tags in raw HTML (as a Markdown body may hold); an upper
    bound of the depth a browser builds, since end tags are matched by count only."""
    depth = deepest = 0
    for match in _TAG.finditer(text):
        if match.group(2).lower() in _FLAT:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest, match.start()
    return deepest, -1


def check_html_depth(body: str, source: str, first_line: int,
                     max_depth: int = MAX_DEPTH) -> None:
    """Refuse a body whose raw HTML nests deeper than `max_depth` (before any sanitizer or
    tree builder sees it); `first_line` is the file's line number of the body's start."""
    if "<" not in body:
        return
    _, where = html_depth(body, max_depth)
    if where >= 0:
        line = first_line + body.count("\n", 0, where)
        raise ArticleError(source, f"the HTML is nested more than {max_depth} levels deep",
                           line=line, fix=DEPTH_FIX.format(depth=max_depth))
