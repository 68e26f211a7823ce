"""Web: the HTTP side of `feedpub run`: feeds and pages from public/, subscription pages,
health and metrics, WebSub pings.

`app.create_app(cfg)` returns a `FeedpubApp` (an ASGI app). Feed and page files are answered by
a lean handler before Starlette's routing, so the common conditional GET stays cheap. Only
this package maps errors to HTTP statuses.

Never imports: daemon, scheduler or cli. It calls jobs (subscriptions) and the store.
"""
