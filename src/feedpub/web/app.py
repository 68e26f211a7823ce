"""The HTTP side of `feedpub run`: feeds and pages from public/, subscription pages, health.

`create_app(cfg)` returns a `FeedpubApp` (an ASGI app). Feed and page files are answered by a
lean handler before Starlette's routing, so the common conditional GET stays cheap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from ..config import Config
from ..errors import ArticleError
from .connections import ConnectionLimits, connection_cap, limited_protocol
from .devtools import HOME_PATHS, OUTBOX_ROUTES, article_error_rows, home_with_banner
from .fastpath import protocol_class
from .metrics import Metrics
from .routes import ROUTES, error_page
from .security import SECURITY_HEADERS, SecurityHeadersMiddleware
from .state import WebState
from .static import DYNAMIC_PATHS, FileCache, StaticFiles

log = logging.getLogger("feedpub.web")

MAX_BODY = 64 * 1024


async def _healthz(request: Request) -> Response:
    state: WebState = request.app.state.feedpub
    errors: list[ArticleError] = request.app.state.article_errors
    body: dict[str, Any] = {
        "status": "degraded" if errors else "ok", "version": __version__,
        "last_build": state.last_build.isoformat() if state.last_build else None}
    if errors:  # still 200: the site is served; the writer has work to do
        body["articles_skipped"] = article_error_rows(errors)
    return Response(json.dumps(body), media_type="application/json",
                    headers={"cache-control": "no-store"})


async def _metrics(request: Request) -> Response:
    state: WebState = request.app.state.feedpub
    return Response(state.metrics.render(), media_type=state.metrics.content_type,
                    headers={"cache-control": "no-store"})


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_page(request, 404, "Page not found",
                          "There is no page at this address.")
    if status == 405:
        return error_page(request, 405, "Not allowed", "This address does not accept that.")
    return error_page(request, status, "Something went wrong", "Please try again later.")


async def _internal_error(send: Send) -> None:
    """A plain 500 with the security headers, unless the response had already started."""
    body = b"Internal Server Error"
    try:
        await send({"type": "http.response.start", "status": 500, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
            *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": body})
    except RuntimeError:  # the response had started: the server closes the connection
        pass


class FeedpubApp:
    """ASGI entry point: static files first, then the Starlette routes and error pages."""

    def __init__(self, cfg: Config, metrics: Metrics | None = None, *,
                 dev: bool = False) -> None:
        self.cfg = cfg
        self.dev = dev
        # Articles the last build skipped; on the home page too when the site is used locally.
        self.article_errors: list[ArticleError] = []
        self.banner = dev or cfg.site.local
        self.metrics = metrics or Metrics()
        self.metrics.track_mail_reports(cfg)  # bounces and complaints, read at each scrape
        self.cache = FileCache(cfg.public_dir, cache_control=cfg.web.cache_control,
                               base_url=cfg.site.base_url, hub=cfg.feeds.websub_hub)
        self.static = StaticFiles(self.cache, on_feed=self.metrics.feed_requests.inc,
                                  on_not_modified=self.metrics.not_modified.inc)
        self.state = WebState(cfg, self.metrics)
        self.connection_limits: ConnectionLimits | None = None  # set by server_options

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                yield
            finally:
                self.state.close()

        self.starlette = Starlette(
            routes=[*ROUTES, Route("/healthz", _healthz), Route("/metrics", _metrics),
                    *(OUTBOX_ROUTES if dev else [])],
            exception_handlers={HTTPException: _http_error, Exception: _http_error},
            lifespan=lifespan, max_body_size=MAX_BODY,
        )
        self.starlette.state.feedpub = self.state
        self.starlette.state.article_errors = self.article_errors
        # Behind a reverse proxy listed in [web] trusted_proxies, the pages see the client's
        # address (for the sign-up rate limit) and scheme; from anyone else X-Forwarded-For
        # is ignored. Static files need neither, so they skip this step. The security headers
        # go on outside everything, so Starlette's own 413 and 500 answers carry them too.
        proxied = ProxyHeadersMiddleware(cast(Any, self.starlette),
                                         trusted_hosts=list(cfg.web.trusted_proxies))
        self.dynamic = cast(ASGIApp, SecurityHeadersMiddleware(cast(ASGIApp, proxied)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.banner and self.article_errors and scope["type"] == "http" \
                and scope["path"] in HOME_PATHS and scope["method"] in ("GET", "HEAD"):
            await home_with_banner(self.cfg.public_dir, self.article_errors)(scope, receive,
                                                                              send)
            return
        if scope["type"] == "http" and scope["path"] not in DYNAMIC_PATHS:
            try:
                if await self.static(scope, receive, send):
                    return
            except Exception:
                log.exception("serving %s failed", scope["path"])
                await _internal_error(send)
                return
        await self.dynamic(scope, receive, send)

    def rebuilt(self, written: Iterable[str] = (), when: datetime | None = None,
                skipped: Iterable[ArticleError] | None = None) -> None:
        """Tell the app a build finished so cached files and derived data are refreshed
        (and, given `skipped`, which articles it could not publish)."""
        if skipped is not None:
            self.article_errors[:] = list(skipped)
        self.cache.invalidate(list(written) or None)
        self.state.rebuilt(when or datetime.now(UTC))


def create_app(cfg: Config, metrics: Metrics | None = None, *,
               dev: bool = False) -> FeedpubApp:
    """The web app for one site (`dev`: the local tools of `feedpub run --dev` too)."""
    return FeedpubApp(cfg, metrics, dev=dev)


def server_options(app: FeedpubApp, descriptors: int = 0) -> dict[str, Any]:
    """How uvicorn serves `app`: the 304 short path and the connection limits of [web]
    (`descriptors`: the open-file limit the connections must stay under, 0 if unknown),
    proxy headers left to the app (its pages need them, its files do not), no access log and
    no Server header."""
    web = app.cfg.web
    limits = ConnectionLimits(connection_cap(web.max_connections, descriptors),
                              web.header_timeout)
    app.connection_limits = limits
    return {"http": limited_protocol(protocol_class(app.static), limits),
            "proxy_headers": False, "server_header": False, "access_log": False,
            "log_config": None}


__all__ = ["FeedpubApp", "Metrics", "create_app", "server_options"]
