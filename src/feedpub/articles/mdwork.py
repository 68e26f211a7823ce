"""Bounds on the work markdown-it-py does for one Markdown body.

markdown-it-py is pure Python and costs a few microseconds per line and per markup
character (`[`, `*`, `<`, ...) however short the file: a 1 MB body of brackets, emphasis
openers or one-character lines takes seconds to minutes. Two things keep it linear and
bounded without changing what an accepted article renders to:

- `literal_brackets`, an inline rule tried first: a run of `[` and `!` with no `]` anywhere
  after it can open no link or image, so it is plain text; the rule takes the whole run at
  once instead of letting the link rules rescan the rest of the paragraph from every `[`.
- an estimate of the parser's work, weighted by what each thing costs, refused past
  `MAX_WORK` with an `ArticleError` naming the line where it passed: the lines, in one
  linear pass before markdown-it sees the body (`check_block_work`); the markup characters
  of the text that the inline rules will read (paragraphs, headings, table cells; not code
  or raw HTML blocks), in a core rule between the block and the inline parse
  (`bound_inline_work`). Neither changes a token.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline

from ..errors import ArticleError

# Work units are roughly microseconds of markdown-it-py on a busy 2-core machine: 800,000
# keeps the worst body under about a second there. 1 MB of prose wrapped at 80 columns
# costs about 400,000; the articles of a usual site, a few thousand.
MAX_WORK = 800_000

WORK_FIX = ("split it into several articles, or remove long runs of markup characters "
            "(brackets, '*', '_', '<', '&') and very short lines")

# What each costs, measured on runs of it: every line goes through the block rules (a list
# item more); every character that stops markdown-it's text rule goes through the inline
# rules, the link rules rescanning from brackets and '](' the most.
LINE_WORK = 30
HARD_BREAK_WORK = 60  # per "  \n" (markdown-it trims the pending text there)
LIST_ITEM_WORK = 90  # per list item or heading line
LINK_TAIL_WORK = 150  # per '](' (a link destination is scanned from there)
CODE_RUN_WORK = 15  # per run of backticks (taken at once)
_CODE_RUN = re.compile(r"`+")
_LIST_ITEM = re.compile(r"^[ \t>]*(?:[-*+]|[0-9]{1,9}[.)]|#{1,6})(?:[ \t]|$)", re.MULTILINE)
_CHAR_WORK = {
    "[": 20, "!": 20, "]": 6, "(": 3, ")": 1, "*": 40, "_": 30, "~": 18, "<": 8,
    "&": 18, "\\": 3, ":": 5, "%": 6, "#": 25, "$": 3, "+": 3, "-": 3, "=": 3, ">": 3,
    "@": 3, "^": 3, "{": 3, "}": 3, "|": 3,
}
# `[` and `!` after the last `]` are taken in runs by `literal_brackets`: a run costs 4.
RUN_WORK = 4
_AFTER_LAST_CLOSE = {c: w for c, w in _CHAR_WORK.items() if c not in "[!"}
_BRACKET_RUN = re.compile(r"[\[!]+")
_CHUNK = 4096


def _block_work(text: str) -> int:
    return (text.count("\n") * LINE_WORK
            + sum(1 for _ in _LIST_ITEM.finditer(text)) * LIST_ITEM_WORK)


def _inline_work(text: str, start: int, end: int, last_close: int) -> int:
    """The inline rules' work on text[start:end]; `last_close` is the last `]` in text."""
    cut = max(start, min(end, last_close + 1))
    work = 0
    for part, weights in ((text[start:cut], _CHAR_WORK), (text[cut:end], _AFTER_LAST_CLOSE)):
        work += (part.count("](") * LINK_TAIL_WORK + part.count("  \n") * HARD_BREAK_WORK
                 + sum(1 for _ in _CODE_RUN.finditer(part)) * CODE_RUN_WORK
                 + sum(w * part.count(c) for c, w in weights.items()))
    return work + sum(1 for _ in _BRACKET_RUN.finditer(text, cut, end)) * RUN_WORK


def _first_line_past(text: str, done: int, limit: int,
                     cost: Callable[[int, int], int]) -> int:
    """Offset of the line of `text` where `done` plus the cost so far passes `limit`
    (chunks first, then the lines of the chunk that passes), or -1."""
    for start in range(0, len(text), _CHUNK):
        end = min(len(text), start + _CHUNK)
        chunk_cost = cost(start, end)
        if done + chunk_cost > limit:
            line = start
            while line < end:
                stop = text.find("\n", line, end) + 1 or end
                done += cost(line, stop)
                if done > limit:
                    return line
                line = stop
        done += chunk_cost
    return -1 if done <= limit else text.rfind("\n", 0, len(text) - 1) + 1


class WorkExceeded(Exception):
    """Raised from inside markdown-it when the inline text would pass the bound."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line  # 0-based line of the body


def block_work(body: str) -> int:
    """The block parser's estimated work on `body` (lines, list items, headings)."""
    return _block_work(body)


def inline_work(text: str) -> int:
    """The inline parser's estimated work on one inline text (a paragraph, a cell)."""
    return _inline_work(text, 0, len(text), text.rfind("]"))


def work_error(source: str, line: int) -> ArticleError:
    return ArticleError(source, "the Markdown has too much markup to parse in bounded time "
                        "(too many short lines or markup characters)", line=line, fix=WORK_FIX)


def check_block_work(body: str, source: str, first_line: int,
                     limit: int = MAX_WORK) -> int:
    """Refuse a body with too many lines for the block parser (`first_line` is the file's
    line number of the body's start); otherwise the work left for the inline text."""
    work = _block_work(body)
    if work > limit:
        where = _first_line_past(body, 0, limit,
                                 lambda start, end: _block_work(body[start:end]))
        raise work_error(source, first_line + body.count("\n", 0, max(where, 0)))
    return limit - work


WORK_KEY = "feedpub_work_left"  # in the render environment: what the inline text may cost


def bound_inline_work(state: StateCore) -> None:
    """Core rule between the block and the inline parse: add up the inline text's work and
    raise `WorkExceeded` with the line where it passes what the environment allows."""
    left = state.env.get(WORK_KEY) if isinstance(state.env, dict) else None
    if not isinstance(left, int):
        return
    done = 0
    for token in state.tokens:
        if token.type != "inline" or not token.content:
            continue
        text = token.content
        last_close = text.rfind("]")
        cost = _inline_work(text, 0, len(text), last_close)
        if done + cost > left:
            def span(start: int, end: int, text: str = text, last_close: int = last_close) -> int:
                return _inline_work(text, start, end, last_close)

            where = _first_line_past(text, done, left, span)
            row = token.map[0] if token.map else 0
            raise WorkExceeded(row + text.count("\n", 0, max(where, 0)))
        done += cost


def literal_brackets(state: StateInline, silent: bool) -> bool:
    """Take a run of `[` and `!` that no `]` follows anywhere in the source as text.

    Identical output: the link and image rules need a `]` after their `[`, and every other
    inline rule ignores these characters, so markdown-it would add them to the pending text
    one by one. In lookahead (`silent`, from a link label scan) the scan can only be looking
    for a `]` that does not exist, so skipping the run changes no result."""
    pos = state.pos
    if state.src[pos] not in "[!" or state.html_terminator_last("]") > pos:
        return False
    run = _BRACKET_RUN.match(state.src, pos, state.posMax)
    if run is None:
        return False
    if not silent:
        state.append_pending(run.group())
    state.pos = run.end()
    return True


def install(md: MarkdownIt) -> MarkdownIt:
    """Add `literal_brackets` before every other inline rule, and `bound_inline_work`
    before the inline parse (it acts only when the render environment has `WORK_KEY`)."""
    md.inline.ruler.before("text", "literal_brackets", literal_brackets)
    md.core.ruler.before("inline", "bound_inline_work", bound_inline_work)
    return md
