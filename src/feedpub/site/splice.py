"""An article page's body, put into the rendered page as the UTF-8 bytes it is kept as.

An article's body is most of its page, and is kept as UTF-8 (`Article.html_utf8`). Rendered
as text, it would be decoded (into four bytes a character, once it holds an emoji), copied
into the page, and encoded again with it. When the page's templates only ever write the
body as it is (`{{ body | safe }}`, where nothing captures or filters what is written), the
page is rendered around a mark standing for the body, and the mark is replaced by the body's
bytes: the same bytes, without the round trip. Templates that do anything else with `body`
get the body itself.
"""

from __future__ import annotations

import secrets

from jinja2 import Environment, TemplateNotFound, meta, nodes
from markupsafe import Markup

# Stands for the body in the rendered page: NUL around a token drawn for this process, which
# no text of the site can hold by chance (a title may hold NUL, from a YAML escape).
BODY_MARK = Markup(f"\x00feedpub-body-{secrets.token_hex(16)}\x00")
_MARK_UTF8 = str(BODY_MARK).encode("utf-8")

# Nodes whose content is written where it stands. Anything else between a `{{ body | safe }}`
# and the page (a `{% filter %}`, a `{% set %}` block, a macro, a call block) may change it.
_WRITTEN = (nodes.Template, nodes.Output, nodes.Block, nodes.If, nodes.For, nodes.With,
            nodes.Scope, nodes.ScopedEvalContextModifier, nodes.EvalContextModifier)
# Templates rendered from Python with the page's variables (`pages.tag_list`).
_ALSO = ("_tags.html.j2",)


def body_spliced(env: Environment, name: str) -> bool:
    """Whether template `name`, those it extends, includes or imports, and `_ALSO` use `body`
    only as `{{ body | safe }}` where it is written as it is, so that `splice` gives the page
    rendering the body itself would. Unsure means no."""
    seen: set[str] = set()
    todo = [name, *_ALSO]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            source, _, _ = env.loader.get_source(env, current)  # type: ignore[union-attr]
        except TemplateNotFound:
            if current == name:
                return False
            continue  # `ignore missing`, one of a list, or no such template: nothing written
        tree = env.parse(source)
        if not _written_as_is(tree, True):
            return False
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:  # a template named at render time: cannot tell
                return False
            todo.append(referenced)
    return True


def _written_as_is(node: nodes.Node, written: bool) -> bool:
    """Whether, below `node` (written where it stands when `written`), `body` only appears
    as `{{ body | safe }}` written where it stands, `super()` only as `{{ super() }}`,
    blocks and includes only where they are written, and `self` not at all."""
    for child in node.iter_child_nodes():
        if isinstance(node, nodes.Output) and written and (_writes_body(child)
                                                           or _writes_super(child)):
            continue
        if isinstance(child, nodes.Name) and child.name in ("body", "self", "super"):
            return False
        if isinstance(child, nodes.Block | nodes.Include) and not written:
            return False
        if not _written_as_is(child, written and isinstance(child, _WRITTEN)):
            return False
    return True


def _writes_body(expr: nodes.Node) -> bool:
    return (isinstance(expr, nodes.Filter) and expr.name == "safe" and not expr.args
            and not expr.kwargs and expr.dyn_args is None and expr.dyn_kwargs is None
            and isinstance(expr.node, nodes.Name) and expr.node.name == "body")


def _writes_super(expr: nodes.Node) -> bool:
    return (isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Name)
            and expr.node.name == "super" and not expr.args and not expr.kwargs
            and expr.dyn_args is None and expr.dyn_kwargs is None)


def splice(page: bytes, body: bytes) -> bytes:
    """The page rendered with `body=BODY_MARK`, encoded, with the body in place of each mark."""
    return page.replace(_MARK_UTF8, body) if _MARK_UTF8 in page else page
