"""An article page's body, put into the rendered page as the UTF-8 bytes it is kept as.

An article's body is most of its page, and is kept as UTF-8 (`Article.html_utf8`). Rendered
as text, it would be decoded (into four bytes a character, once it holds an emoji), copied
into the page, and encoded again with it. When the page template only ever writes the body
as it is (`{{ body | safe }}`), the page is rendered around a mark standing for the body,
and the mark is replaced by the body's bytes: the same bytes, without the round trip.
A template that does anything else with `body` (a filter, a test, a variable of that name)
gets the body itself.
"""

from __future__ import annotations

from jinja2 import Environment, meta, nodes
from markupsafe import Markup

# Stands for the body in the rendered page. NUL is never in a page: the article reader
# removes it from every text, and neither a template nor a setting holds it.
BODY_MARK = Markup("\x00feedpub-article-body\x00")
_MARK_UTF8 = str(BODY_MARK).encode("utf-8")


def body_spliced(env: Environment, name: str) -> bool:
    """Whether every use of `body` in template `name` and those it extends, includes or
    imports writes it as it is (`{{ body | safe }}`), so that `splice` gives the page."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        source, _, _ = env.loader.get_source(env, current)  # type: ignore[union-attr]
        tree = env.parse(source)
        uses = sum(1 for found in tree.find_all(nodes.Name) if found.name == "body")
        written = sum(1 for output in tree.find_all(nodes.Output) for expr in output.nodes
                      if _writes_body(expr))
        if uses != written:
            return False
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:  # a template named at render time: cannot tell
                return False
            todo.append(referenced)
    return True


def _writes_body(expr: nodes.Node) -> bool:
    return (isinstance(expr, nodes.Filter) and expr.name == "safe" and not expr.args
            and not expr.kwargs and expr.dyn_args is None and expr.dyn_kwargs is None
            and isinstance(expr.node, nodes.Name) and expr.node.name == "body")


def splice(page: bytes, body: bytes) -> bytes:
    """The page rendered with `body=BODY_MARK`, encoded, with the body in place of each mark."""
    return page.replace(_MARK_UTF8, body) if _MARK_UTF8 in page else page
