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
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from ..config import Config
from .fastpath import protocol_class
from .metrics import Metrics
from .routes import ROUTES, error_page
from .security import SecurityHeadersMiddleware
from .state import WebState
from .static import DYNAMIC_PATHS, FileCache, StaticFiles

log = logging.getLogger("feedpub.web")

MAX_BODY = 64 * 1024


async def _healthz(request: Request) -> Response:
    state: WebState = request.app.state.feedpub
    body = {"status": "ok", "version": __version__,
            "last_build": state.last_build.isoformat() if state.last_build else None}
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


class FeedpubApp:
    """ASGI entry point: static files first, then the Starlette routes and error pages."""

    def __init__(self, cfg: Config, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.metrics.track_mail_reports(cfg)  # bounces and complaints, read at each scrape
        self.cache = FileCache(cfg.public_dir, cache_control=cfg.web.cache_control,
                               base_url=cfg.site.base_url, hub=cfg.feeds.websub_hub)
        self.static = StaticFiles(self.cache, on_feed=self.metrics.feed_requests.inc,
                                  on_not_modified=self.metrics.not_modified.inc)
        self.state = WebState(cfg, self.metrics)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                yield
            finally:
                self.state.close()

        self.starlette = Starlette(
            routes=[*ROUTES, Route("/healthz", _healthz), Route("/metrics", _metrics)],
            middleware=[Middleware(SecurityHeadersMiddleware)],
            exception_handlers={HTTPException: _http_error, Exception: _http_error},
            lifespan=lifespan, max_body_size=MAX_BODY,
        )
        self.starlette.state.feedpub = self.state
        # Behind a reverse proxy on this machine, the pages see the client's address (for the
        # sign-up rate limit) and scheme. Static files need neither, so they skip this step.
        self.dynamic = cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, self.starlette),
                                                             trusted_hosts="127.0.0.1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in DYNAMIC_PATHS \
                and await self.static(scope, receive, send):
            return
        await self.dynamic(scope, receive, send)

    def rebuilt(self, written: Iterable[str] = (), when: datetime | None = None) -> None:
        """Tell the app a build finished so cached files and derived data are refreshed."""
        self.cache.invalidate(list(written) or None)
        self.state.rebuilt(when or datetime.now(UTC))


def create_app(cfg: Config, metrics: Metrics | None = None) -> FeedpubApp:
    """The web app for one site."""
    return FeedpubApp(cfg, metrics)


def server_options(app: FeedpubApp) -> dict[str, Any]:
    """How uvicorn serves `app`: the 304 short path, proxy headers left to the app (its pages
    need them, its files do not), no access log and no Server header."""
    return {"http": protocol_class(app.static), "proxy_headers": False, "server_header": False,
            "access_log": False, "log_config": None}


__all__ = ["FeedpubApp", "Metrics", "create_app", "server_options"]
