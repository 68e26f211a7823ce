"""Subscription pages: subscribe form, confirm link, unsubscribe (incl. RFC 8058 one-click),
preferences. Forms carry a signed double-submit CSRF token; links carry signed tokens."""

from __future__ import annotations

import logging
import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import DeliveryError, FeedpubError, SubscriberError
from ..jobs import subscriptions as subs
from ..logfmt import log_event
from ..mail.tokens import TokenError, link
from ..store import CADENCES, Subscriber, normalize_email
from .security import CSRF_COOKIE, CSRF_FIELD
from .state import WebState

log = logging.getLogger("feedpub.web")

CADENCE_LABELS = {"daily": "Daily digest", "weekly": "Weekly digest"}
NO_STORE = {"cache-control": "no-store"}


def _state(request: Request) -> WebState:
    state: WebState = request.app.state.feedpub
    return state


def page(request: Request, template: str, status: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a page template (with a CSRF token for its forms) into a no-store response."""
    state = _state(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    new_cookie = cookie is None or len(cookie) > 64
    if new_cookie:
        cookie = state.csrf.new_cookie_value()
    assert cookie is not None
    html = state.render(template, csrf_token=state.csrf.form_token(cookie),
                        cadences=[(c, CADENCE_LABELS.get(c, c)) for c in CADENCES], **context)
    response = HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
    if new_cookie:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
    return response


def error_page(request: Request, status: int, heading: str, message: str,
               retry: bool = False, headers: dict[str, str] | None = None) -> HTMLResponse:
    return page(request, "error.html.j2", status, headers, heading=heading, message=message,
                retry=retry)


def bad_link(request: Request, exc: FeedpubError) -> HTMLResponse:
    """The 400 page for a tampered, expired or stale link; nothing was changed."""
    log_event(log, "bad_token", level=logging.WARNING, path=request.url.path, reason=str(exc))
    return error_page(request, 400, "This link does not work", f"{exc}. Nothing was changed.",
                      retry=True)


async def _csrf_ok(request: Request, form: Any) -> bool:
    ok = _state(request).csrf.check(request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD))
    if not ok:
        log_event(log, "csrf_rejected", level=logging.WARNING, path=request.url.path)
    return ok


def _csrf_failed(request: Request) -> HTMLResponse:
    return error_page(request, 403, "Please try again",
                      "This form has expired or was not sent from this site. Reload the page "
                      "and submit it again.")


def _same_page(request: Request) -> str:
    """A relative form action: this path with its token (host-independent behind proxies)."""
    return request.url.path.rsplit("/", 1)[-1] + "?" + request.url.query


def _cadence(value: object) -> str | None:
    return value if isinstance(value, str) and value in CADENCES else None


async def subscribe_form(request: Request) -> Response:
    cfg = _state(request).cfg
    return page(request, "subscribe.html.j2", error=None, email="", name="",
                cadence=cfg.digest.default_cadence)


async def subscribe_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    if not await _csrf_ok(request, form):
        return _csrf_failed(request)
    client = request.client.host if request.client else "unknown"
    wait = state.limiter.hit(client)
    if wait:
        state.metrics.subscribe_requests.labels(result="rate_limited").inc()
        log_event(log, "subscribe_rate_limited", level=logging.WARNING, client=client)
        return error_page(request, 429, "Too many requests",
                          f"Too many subscribe requests from your address. Please try again "
                          f"in {int(wait // 60) + 1} minutes.",
                          headers={"retry-after": str(math.ceil(wait))})
    email = str(form.get("email") or "")[:320]
    name = str(form.get("name") or "")[:200] or None
    cadence = _cadence(form.get("cadence"))
    try:
        address = normalize_email(email)
    except SubscriberError:
        state.metrics.subscribe_requests.labels(result="invalid").inc()
        return page(request, "subscribe.html.j2", 400, email=email, name=name or "",
                    cadence=cadence or state.cfg.digest.default_cadence,
                    error="Please enter a valid email address, such as name@example.org.")
    try:
        result = await run_in_threadpool(subs.request_subscription, state.cfg, state.store(),
                                         address, name, cadence)
    except DeliveryError as exc:
        state.metrics.subscribe_requests.labels(result="failed").inc()
        state.metrics.emails_failed.labels(kind="confirm").inc()
        log_event(log, "confirm_mail_failed", level=logging.ERROR, reason=str(exc))
        return error_page(request, 503, "Please try again later",
                          "We could not send the confirmation email just now. Nothing was "
                          "lost; please try again in a few minutes.")
    if result.kind == "limited":
        # Someone keeps asking for this address: answer as usual but mail nothing more.
        state.metrics.subscribe_requests.labels(result="address_limited").inc()
        log_event(log, "subscribe_address_limited", level=logging.WARNING, client=client)
        return page(request, "confirm.html.j2")
    state.metrics.subscribe_requests.labels(result="ok").inc()
    state.metrics.emails_sent.labels(kind="confirm").inc()
    return page(request, "confirm.html.j2")


async def confirm_page(request: Request) -> Response:
    """The confirm link's page: one button. Opening it (as mail scanners do) changes
    nothing; only the button's POST confirms."""
    state = _state(request)
    try:
        sub = await run_in_threadpool(subs.confirmable, state.cfg, state.store(),
                                      request.query_params.get("token", ""))
    except TokenError as exc:
        return bad_link(request, exc)
    if sub.status == "active":
        return _welcome(request, sub)
    return page(request, "confirm_subscription.html.j2", **subs.describe(sub, state.cfg),
                action=_same_page(request))


async def confirm_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    token = request.query_params.get("token", "")
    try:
        await run_in_threadpool(subs.confirmable, state.cfg, state.store(), token)
        if not await _csrf_ok(request, form):
            return _csrf_failed(request)
        sub = await run_in_threadpool(subs.confirm_subscription, state.cfg, state.store(),
                                      token)
    except TokenError as exc:
        return bad_link(request, exc)
    return _welcome(request, sub)


def _welcome(request: Request, sub: Subscriber) -> HTMLResponse:
    cfg = _state(request).cfg
    return page(request, "welcome.html.j2", **subs.describe(sub, cfg),
                preferences_url=link(cfg, "preferences", sub.id, sub.email))


async def unsubscribe_page(request: Request) -> Response:
    state = _state(request)
    token = request.query_params.get("token", "")
    try:
        sub = await run_in_threadpool(subs.subscriber_for, state.cfg, state.store(),
                                      "unsubscribe", token)
    except TokenError as exc:
        return bad_link(request, exc)
    return page(request, "unsubscribe.html.j2", done=False, email=sub.email,
                action=_same_page(request),
                preferences_url=link(state.cfg, "preferences", sub.id, sub.email))


async def unsubscribe_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == "One-Click"
    token = request.query_params.get("token", "")
    try:
        if not one_click:
            # A bad link gets the 400 page that says so, whatever the form carried.
            await run_in_threadpool(subs.subscriber_for, state.cfg, state.store(),
                                    "unsubscribe", token)
            if not await _csrf_ok(request, form):
                return _csrf_failed(request)
        sub = await run_in_threadpool(subs.unsubscribe, state.cfg, state.store(), token)
    except TokenError as exc:
        return bad_link(request, exc)
    log_event(log, "unsubscribe_request", subscriber=sub.id, one_click=one_click)
    return page(request, "unsubscribe.html.j2", done=True, email=sub.email)


async def preferences_page(request: Request) -> Response:
    return await _preferences(request, saved=False)


async def _preferences(request: Request, *, saved: bool) -> Response:
    state = _state(request)
    try:
        sub = await run_in_threadpool(subs.subscriber_for, state.cfg, state.store(),
                                      "preferences", request.query_params.get("token", ""))
    except TokenError as exc:
        return bad_link(request, exc)
    all_tags = sorted(set(await run_in_threadpool(state.known_tags)) | set(sub.tags))
    return page(request, "preferences.html.j2", **subs.describe(sub, state.cfg),
                saved=saved, error=None, all_tags=all_tags, action=_same_page(request),
                unsubscribe_url=link(state.cfg, "unsubscribe", sub.id, sub.email))


async def preferences_submit(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    if not await _csrf_ok(request, form):
        return _csrf_failed(request)
    cadence = _cadence(form.get("cadence"))
    tags = [str(t)[:100] for t in form.getlist("tags")][:200]
    try:
        await run_in_threadpool(subs.update_preferences, state.cfg, state.store(),
                                request.query_params.get("token", ""), cadence=cadence,
                                tags=tags)
    except TokenError as exc:
        return bad_link(request, exc)
    return await _preferences(request, saved=True)


ROUTES = [
    Route("/subscribe", subscribe_form, methods=["GET", "HEAD"]),
    Route("/subscribe", subscribe_submit, methods=["POST"]),
    Route("/confirm", confirm_page, methods=["GET", "HEAD"]),
    Route("/confirm", confirm_submit, methods=["POST"]),
    Route("/unsubscribe", unsubscribe_page, methods=["GET", "HEAD"]),
    Route("/unsubscribe", unsubscribe_submit, methods=["POST"]),
    Route("/preferences", preferences_page, methods=["GET", "HEAD"]),
    Route("/preferences", preferences_submit, methods=["POST"]),
]
