"""Local-use helpers of `feedpub run`: the article-error banner and the `/_outbox/` pages.

The banner is shown on the home page when the site is used locally (`base_url` on a loopback
address, or `run --dev`) and some articles could not be published, as `hugo server` does. The
outbox pages exist only with `run --dev`: they show the messages the maildir backend wrote,
decoded, with working links.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import ArticleError, FeedpubError
from ..jobs import localmail

NO_STORE = {"cache-control": "no-store"}
BANNER_ID = "feedpub-article-errors"
HOME_PATHS = frozenset(("/", "/index.html"))
_STYLE = ("position:relative;z-index:1000;margin:0;padding:1em 1.5em;background:#fdecea;"
          "color:#611a15;border-bottom:3px solid #b00020;font:15px/1.4 system-ui,sans-serif")


def article_error_rows(errors: Sequence[ArticleError]) -> list[dict[str, object]]:
    """The errors as JSON-ready rows (for /healthz and the log)."""
    return [{"file": e.source, "line": e.line, "message": e.reason, "fix": e.fix}
            for e in errors]


def banner(errors: Sequence[ArticleError]) -> str:
    items = "".join(
        f"<li><code>{html.escape(e.source)}{'' if e.line is None else f':{e.line}'}</code>: "
        f"{html.escape(e.reason)}{f' <em>({html.escape(e.fix)})</em>' if e.fix else ''}</li>"
        for e in errors)
    return (f'<div id="{BANNER_ID}" role="alert" style="{_STYLE}"><strong>'
            f"{len(errors)} article(s) not published because of errors</strong> "
            "(shown on this local server only; fix the file, then reload this page after the "
            f"rebuild)<ul style=\"margin:.5em 0 0\">{items}</ul></div>")


def with_banner(page: bytes, errors: Sequence[ArticleError]) -> bytes:
    """The home page with the banner right after <body ...>."""
    text = page.decode("utf-8", "replace")
    start = text.find("<body")
    end = text.find(">", start) + 1 if start >= 0 else 0
    return (text[:end] + banner(errors) + text[end:]).encode("utf-8")


def home_with_banner(public: Path, errors: Sequence[ArticleError]) -> Response:
    try:
        page = (public / "index.html").read_bytes()
    except OSError:
        page = b"<!doctype html><html><body><p>The site has not been built yet.</p></body></html>"
    return Response(with_banner(page, errors), media_type="text/html; charset=utf-8",
                    headers=NO_STORE)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
        "</title></head><body style=\"font:15px/1.5 system-ui,sans-serif;margin:2em\">"
        f"<p><a href=\"/_outbox/\">Outbox</a></p>{body}</body></html>", headers=NO_STORE)


async def outbox_list(request: Request) -> Response:
    cfg = request.app.state.feedpub.cfg
    entries = await run_in_threadpool(localmail.list_outbox, cfg)
    rows = "".join(
        f"<tr><td><a href=\"/_outbox/{e.number}\">{e.number}</a></td>"
        f"<td>{html.escape(e.date.isoformat(timespec='minutes') if e.date else '-')}</td>"
        f"<td>{html.escape(e.to)}</td><td>{html.escape(e.subject)}</td></tr>"
        for e in reversed(entries))
    body = (f"<h1>Outbox ({len(entries)})</h1><table><tr><th>#</th><th>Date</th><th>To</th>"
            f"<th>Subject</th></tr>{rows}</table>" if entries else
            "<h1>Outbox</h1><p>No message yet.</p>")
    return _page("Outbox", body)


async def outbox_message(request: Request) -> Response:
    cfg = request.app.state.feedpub.cfg
    try:
        message = await run_in_threadpool(localmail.read_message, cfg,
                                          int(request.path_params["number"]))
    except FeedpubError as exc:
        return _page("Outbox", f"<p>{html.escape(str(exc))}</p>")
    heads = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                    for k, v in message.headers)
    links = "".join(f"<li><a href=\"{html.escape(u)}\">{html.escape(u)}</a></li>"
                    for u in message.links)
    shown = (f"<iframe title=\"HTML part\" sandbox style=\"width:100%;height:60vh\" "
             f"srcdoc=\"{html.escape(message.html)}\"></iframe>" if message.html else "")
    body = (f"<h1>{html.escape(message.entry.subject)}</h1><dl>{heads}</dl>"
            f"<h2>Links</h2><ul>{links}</ul>{shown}"
            f"<h2>Text part</h2><pre style=\"white-space:pre-wrap\">"
            f"{html.escape(message.text)}</pre>")
    return _page(message.entry.subject, body)


OUTBOX_ROUTES = [
    Route("/_outbox/", outbox_list),
    Route("/_outbox/{number:int}", outbox_message),
]
