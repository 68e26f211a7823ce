"""Bounds on the work markdown-it-py does for one Markdown body.

markdown-it-py is pure Python and costs a few microseconds per line and per markup
character (`[`, `*`, `<`, ...) however short the file: a 1 MB body of brackets, emphasis
openers or one-character lines takes seconds to minutes. Two things keep it linear and
bounded without changing what an accepted article renders to:

- `literal_brackets`, an inline rule tried first: a run of `[` and `!` with no `]` anywhere
  after it can open no link or image, so it is plain text; the rule takes the whole run at
  once instead of letting the link rules rescan the rest of the paragraph from every `[`.
- `check_markdown_work`, one linear pass over the body before markdown-it sees it: an
  estimate of the parser's work (lines and markup characters, weighted by what each costs)
  and an `ArticleError` naming the line where it passes `MAX_WORK`.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline

from ..errors import ArticleError

# Work units are roughly microseconds of markdown-it-py on a busy 2-core machine: 800,000
# keeps the worst body under about a second there. 1 MB of prose wrapped at 80 columns
# costs about 500,000; the articles of a usual site, a few thousand.
MAX_WORK = 800_000

WORK_FIX = ("split it into several articles, or remove long runs of markup characters "
            "(brackets, '*', '_', '<', '&') and very short lines")

# What each costs, measured on runs of it: every line goes through the block rules (a list
# item more); every character that stops markdown-it's text rule goes through the inline
# rules, the link rules rescanning from brackets and '](' the most.
LINE_WORK = 30
HARD_BREAK_WORK = 60  # per "  \n" (markdown-it trims the pending text there)
LIST_ITEM_WORK = 90
LINK_TAIL_WORK = 150  # per '](' (a link destination is scanned from there)
CODE_RUN_WORK = 15  # per run of backticks (taken at once)
_CODE_RUN = re.compile(r"`+")
_LIST_ITEM = re.compile(r"^[ \t>]*(?:[-*+]|[0-9]{1,9}[.)])(?:[ \t]|$)", re.MULTILINE)
_CHAR_WORK = {
    "[": 20, "!": 20, "]": 6, "(": 3, ")": 1, "*": 40, "_": 30, "~": 18, "<": 8,
    "&": 18, "\\": 3, ":": 5, "%": 6, "#": 25, "$": 3, "+": 3, "-": 3, "=": 3, ">": 3,
    "@": 3, "^": 3, "{": 3, "}": 3, "|": 3,
}
# `[` and `!` after the last `]` are taken in runs by `literal_brackets`: a run costs 4.
RUN_WORK = 4
_AFTER_LAST_CLOSE = {c: w for c, w in _CHAR_WORK.items() if c not in "[!"}
_BRACKET_RUN = re.compile(r"[\[!]+")
_CHUNK = 8192


def _work(text: str, weights: dict[str, int]) -> int:
    work = (text.count("\n") * LINE_WORK + text.count("](") * LINK_TAIL_WORK
            + text.count("  \n") * HARD_BREAK_WORK
            + sum(1 for _ in _LIST_ITEM.finditer(text)) * LIST_ITEM_WORK
            + sum(1 for _ in _CODE_RUN.finditer(text)) * CODE_RUN_WORK
            + sum(w * text.count(c) for c, w in weights.items()))
    if weights is _AFTER_LAST_CLOSE:
        work += sum(1 for _ in _BRACKET_RUN.finditer(text)) * RUN_WORK
    return work


def _span_work(body: str, start: int, end: int, last_close: int) -> int:
    cut = max(start, min(end, last_close + 1))
    return (_work(body[start:cut], _CHAR_WORK)
            + _work(body[cut:end], _AFTER_LAST_CLOSE))


def markdown_work(body: str, limit: int = MAX_WORK) -> tuple[int, int]:
    """(estimated work, 0-based offset of the line where it first passed `limit`, or -1)."""
    last_close = body.rfind("]")
    total = _span_work(body, 0, len(body), last_close)
    if total <= limit:
        return total, -1
    done = 0
    for start in range(0, len(body), _CHUNK):
        end = min(len(body), start + _CHUNK)
        cost = _span_work(body, start, end, last_close)
        if done + cost > limit:
            line = start
            while line < end:
                stop = body.find("\n", line, end) + 1 or end
                done += _span_work(body, line, stop, last_close)
                if done > limit:
                    return total, line
                line = stop
        done += cost
    return total, body.rfind("\n", 0, len(body) - 1) + 1  # the chunks' seams add up less


def check_markdown_work(body: str, source: str, first_line: int,
                        limit: int = MAX_WORK) -> None:
    """Refuse a body whose Markdown would take markdown-it-py more than about a second;
    `first_line` is the file's line number of the body's start."""
    _, where = markdown_work(body, limit)
    if where >= 0:
        raise ArticleError(source, "the Markdown has too much markup to parse in bounded time "
                           "(too many short lines or markup characters)",
                           line=first_line + body.count("\n", 0, where), fix=WORK_FIX)



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
    """Add `literal_brackets` before every other inline rule."""
    md.inline.ruler.before("text", "literal_brackets", literal_brackets)
    return md
