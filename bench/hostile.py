"""How long `parse_article` takes on hostile articles of about 1 MB (prints figures only).

Each case is generated here, parsed `--repeat` times in this process, and reported as the
median wall time with the outcome (published, or the error's first words). The baseline is a
plain 1 MB Markdown article of ordinary paragraphs, so the ratio shows what hostility costs.

    .venv/bin/python bench/hostile.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from feedpub.articles.scan import parse_article
from feedpub.config import SiteConfig
from feedpub.errors import ArticleError

SITE = SiteConfig(base_url="https://news.example.org/")
MB = 1_000_000


def _md(front: str, body: str) -> str:
    return f"---\ntitle: Hostile\ndate: 2024-03-05\n{front}---\n\n{body}"


CASES: dict[str, Callable[[], tuple[str, str]]] = {
    "baseline: 1 MB of paragraphs": lambda: (
        "a.md", _md("", ("Some ordinary words in a sentence. " * 20 + "\n\n") * (MB // 720))),
    "200,000 nested <div>": lambda: ("b.md", _md("", "<div>" * (MB // 5))),
    "100,000 nested <div> after 500 KB of text": lambda: (
        "c.md", _md("", "word " * (MB // 10) + "\n\n" + "<div>" * (MB // 10))),
    "1,000,000 [ in front matter": lambda: ("d.md", _md("tags: " + "[" * MB + "\n", "x\n")),
    "block mapping 1,400 deep": lambda: (
        "e.md", _md("".join(" " * i + f"k{i}:\n" for i in range(1400)), "x\n")),
    "<ul> of 100,000 unclosed <li>": lambda: ("f.md", _md("", "<ul>" + "<li>x" * (MB // 10))),
    "plain text, 1 MB of control characters": lambda: (
        "g.txt", "date 2024-03-05 T\n\n" + "\x01\x7f]]>" * (MB // 5)),
    "plain text, one 1 MB paragraph": lambda: ("h.txt", "date 2024-03-05 T\n\n" + "w " * (MB // 2)),
    "Markdown: 200,000 '[' in the body": lambda: ("i.md", _md("", "[" * (MB // 5))),
    "Markdown: 100,000 '*a' in the body": lambda: ("j.md", _md("", "*a" * (MB // 20))),
}


def _body_of(unit: str, name: str) -> Callable[[], tuple[str, str]]:
    return lambda: (name, _md("", unit * (MB // len(unit))))


# A 1 MB Markdown body of one unit repeated: the costliest things for markdown-it-py.
for _unit in ("[", "[a](", "*a", "_a", "**a", "~~a", "`", "`a", "<", "<a ", "![", "&", ":",
              "[a]", "](", "[]", "[\n", "a\n", "a\n\n", "- a\n", "> a\n", "# a\n", "> ",
              "- ", "a|b\n", "    a\n", "```\n", "[a]: b\n"):
    CASES[f"Markdown: 1 MB of {_unit!r}"] = _body_of(_unit, "k.md")
CASES["Markdown: 1 MB of '[' then one ']'"] = lambda: ("l.md", _md("", "[" * MB + "]"))
CASES["Markdown: 1 MB of table rows"] = lambda: (
    "m.md", _md("", "a|b\n-|-\n" + "a|b\n" * (MB // 4)))


def run(name: str, make: Callable[[], tuple[str, str]], repeat: int) -> None:
    source, text = make()
    times = []
    outcome = ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            article = parse_article(text, source, SITE)
            outcome = f"published ({len(article.html):,} chars of HTML)"
        except ArticleError as exc:
            outcome = "refused: " + exc.reason[:50]
        times.append(time.perf_counter() - started)
    print(f"{name:45} {len(text) / MB:5.2f} MB  median {statistics.median(times):7.3f} s  "
          f"max {max(times):7.3f} s  {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, make in CASES.items():
        if args.only in name:
            run(name, make, args.repeat)


if __name__ == "__main__":
    main()
