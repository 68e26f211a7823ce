"""Micro-benchmark of the forbidden-character check (`articles.model.has_forbidden`).

Usage (from the repository root):

    .venv/bin/python bench/forbidden.py               # 2,000 articles of the build corpus
    .venv/bin/python bench/forbidden.py --articles 500 --rounds 9

It times the check on the raw text of every article of bench/build.py's corpus (most carry
emoji, CJK, Arabic or other text beyond Latin-1), against the check it replaced (kept below
as the baseline: a translate fast path for ASCII and Latin-1 text, then regexes over the
whole string), interleaved round by round. It prints µs per article (median of the rounds,
and the spread) and asserts only that both checks agree.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _corpus  # noqa: E402
from feedpub.articles.model import FORBIDDEN_CHARS, has_forbidden  # noqa: E402

# The previous check (baseline).
_FORBIDDEN_BMP = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
                            "\ufdd0-\ufdef\ufffd-\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_LEADS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xC2, 0xED, 0xEF,
                *range(0xF0, 0xF5)])
_NOT_LEADS = bytes(b for b in range(256) if b not in _LEADS)
_C1_CONTROLS = re.compile(rb"\xc2[\x80-\x9f]")


def previous_check(text: str) -> bool:
    data = text.encode("utf-8", "surrogatepass")
    leads = data.translate(None, _NOT_LEADS)
    if not leads:
        return False
    if not leads.strip(b"\xc2"):
        return _C1_CONTROLS.search(data) is not None
    if _FORBIDDEN_BMP.search(text):
        return True
    return bool(_ASTRAL.search(text)) and bool(FORBIDDEN_CHARS.search(text))


def per_article(check: Callable[[str], bool], texts: list[str]) -> float:
    """µs per article of one pass over `texts`."""
    started = time.perf_counter()
    for text in texts:
        check(text)
    return (time.perf_counter() - started) / len(texts) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20240305)
    args = parser.parse_args()
    corpus = _corpus.make_corpus(args.articles, args.seed)
    texts = [_corpus.to_text(a) for a in corpus]
    wide = sum(1 for a in corpus if _corpus.beyond_latin1(a))
    astral = sum(1 for t in texts if any(ord(c) > 0xFFFF for c in t))
    assert [has_forbidden(t) for t in texts] == [previous_check(t) for t in texts]
    print(f"{len(texts)} articles, {sum(map(len, texts)) / len(texts):.0f} characters on "
          f"average; {wide / len(texts):.0%} beyond Latin-1, {astral / len(texts):.0%} with "
          "an emoji or other character past U+FFFF")
    ascii_only = [t.encode("ascii", "ignore").decode("ascii") for t in texts]
    for label, sample in (("realistic corpus", texts), ("same, ASCII only", ascii_only)):
        before: list[float] = []
        after: list[float] = []
        for _ in range(args.rounds):
            before.append(per_article(previous_check, sample))
            after.append(per_article(has_forbidden, sample))
        b, a = statistics.median(before), statistics.median(after)
        print(f"{label:18}: previous {b:7.1f} µs/article (runs {min(before):.1f}-"
              f"{max(before):.1f}), now {a:6.1f} µs/article (runs {min(after):.1f}-"
              f"{max(after):.1f}); {b / a:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
