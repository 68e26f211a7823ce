"""An article's HTML as readable plain text, for the text/plain part of digests.

Pure: a sanitized HTML fragment with absolute links in, text out. Paragraphs are one line
each (the `wrap` filter of the digest templates re-flows them); structure is kept in the
plain-text conventions that `digest.wrap_text` understands: headings underlined, list items
as `- item` or `1. item`, quotes as `> `, preformatted lines indented by four spaces, links
as `text <URL>`. No markup survives: scripts, styles and unknown elements are dropped or
reduced to their text.
"""

from __future__ import annotations

import re

import lxml.html
from lxml.etree import _Element

DROP = frozenset({"script", "style", "template", "head", "title", "noscript", "iframe",
                  "object", "embed", "svg", "math", "form", "button", "input", "select",
                  "textarea"})
HEADINGS = {"h1": "=", "h2": "=", "h3": "-", "h4": "-", "h5": "-", "h6": "-"}
BLOCKS = frozenset({"p", "div", "section", "article", "header", "footer", "main", "aside",
                    "nav", "figure", "figcaption", "address", "details", "summary", "dl",
                    "dt", "dd", "center", "ul", "ol", "pre", "blockquote", "table", "hr",
                    *HEADINGS, *DROP})
LINK_SCHEMES = ("http://", "https://", "mailto:")
_SPACE = re.compile(r"\s+")
RULE_WIDTH = 69  # 72 columns less the digest's indent


def _tag(el: _Element) -> str:
    return el.tag.lower() if isinstance(el.tag, str) else ""  # "" for comments etc.


def _collapse(text: str | None) -> str:
    return _SPACE.sub(" ", text) if text else ""


def _clean(text: str) -> str:
    """Trim every line of an inline run (line breaks come from <br> only)."""
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


def _inline(el: _Element) -> str:
    parts = [_collapse(el.text)]
    for child in el:
        parts.append(_inline_child(child))
        parts.append(_collapse(child.tail))
    return "".join(parts)


def _inline_child(el: _Element) -> str:
    tag = _tag(el)
    if not tag or tag in DROP:
        return ""
    if tag == "br":
        return "\n"
    if tag == "img":
        alt = " ".join((el.get("alt") or "").split())
        return f"[{alt}]" if alt else ""
    if tag == "a":
        return _link(el)
    if tag in BLOCKS:  # a block inside inline content (e.g. a list in a link): its text
        return " " + _collapse(el.text_content()) + " "
    return _inline(el)


def _link(el: _Element) -> str:
    text = " ".join(_inline(el).split())
    href = (el.get("href") or "").strip()
    if not href.startswith(LINK_SCHEMES) or href in (text, f"mailto:{text}"):
        return text
    return f"{text} <{href}>" if text else f"<{href}>"


def _flow(el: _Element, depth: int = 0) -> list[str]:
    """The blocks inside `el`: runs of inline content become paragraphs."""
    blocks: list[str] = []
    run = [_collapse(el.text)]

    def flush() -> None:
        text = _clean("".join(run))
        if text:
            blocks.append(text)
        run.clear()

    for child in el:
        if _tag(child) in BLOCKS:
            flush()
            blocks.extend(_block(child, depth))
        else:
            run.append(_inline_child(child))
        run.append(_collapse(child.tail))
    flush()
    return blocks


def _block(el: _Element, depth: int) -> list[str]:
    tag = _tag(el)
    if tag in DROP:
        return []
    if tag in HEADINGS:
        title = " ".join(_inline(el).split())
        return [f"{title}\n{HEADINGS[tag] * min(max(len(title), 3), RULE_WIDTH)}"] if title else []
    if tag in ("ul", "ol"):
        items = _list(el, depth)
        return ["\n".join(items)] if items else []
    if tag == "pre":
        lines = el.text_content().expandtabs(4).rstrip().split("\n")
        return ["\n".join(("    " + line).rstrip() for line in lines)] if any(lines) else []
    if tag == "blockquote":
        inner = "\n\n".join(_flow(el, depth)).split("\n")
        return ["\n".join(f"> {line}".rstrip() for line in inner)] if any(inner) else []
    if tag == "hr":
        return ["* * *"]
    if tag == "table":
        rows = [" | ".join(" ".join(_inline(cell).split()) for cell in row
                           if _tag(cell) in ("td", "th"))
                for row in el.iter("tr")]
        return ["\n".join("  " + row for row in rows if row.strip())] if rows else []
    return _flow(el, depth)


def _list(el: _Element, depth: int) -> list[str]:
    """One line per item (its paragraphs joined); nested lists under the item's text."""
    ordered = _tag(el) == "ol"
    try:
        number = int(el.get("start", "1"))
    except ValueError:
        number = 1
    pad = "  " * depth
    lines: list[str] = []
    for item in el:
        if _tag(item) != "li":
            continue
        marker = f"{number}. " if ordered else "- "
        number += 1
        text: list[str] = []
        nested: list[str] = []
        for block in _flow(item, depth + 1):
            if _is_list_block(block, depth + 1):
                nested.append(block)
            else:
                text.append(" ".join(block.split()))
        lines.append(f"{pad}{marker}{' '.join(text)}".rstrip())
        under = pad + " " * len(marker)  # nested items line up under the item's text
        for block in nested:
            lines.extend(under + line[len(pad) + 2:] for line in block.split("\n"))
    return lines


_ITEM = re.compile(r"\s*(?:[-*]|\d{1,3}[.)])(?:\s|$)")


def _is_list_block(block: str, depth: int) -> bool:
    return block.startswith("  " * depth) and bool(_ITEM.match(block))


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: paragraphs separated by blank lines, no markup."""
    if not fragment.strip():
        return ""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    return "\n\n".join(_flow(root))
