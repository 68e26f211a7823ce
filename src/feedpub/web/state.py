"""What the web app shares between requests: config, store, metrics, CSRF, rate limit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..config import Config
from ..mail.tokens import secret_key
from ..site.pages import page_environment, render_page
from ..store import Store, open_store
from .metrics import Metrics
from .security import Csrf, RateLimiter


class WebState:
    """Per-app state. The store is opened on first use and closed with the app."""

    def __init__(self, cfg: Config, metrics: Metrics,
                 tags: Callable[[Config], list[str]] | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.csrf = Csrf(secret_key(cfg))
        self.limiter = RateLimiter(cfg.web.subscribe_rate, 3600.0)  # per client address
        self.env = page_environment(cfg)
        self.last_build: datetime | None = None
        self._tags_source = tags
        self._tags: list[str] | None = None
        self._store: Store | None = None
        self._lock = threading.Lock()

    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.cfg)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def render(self, template: str, **context: Any) -> str:
        return render_page(self.env, template, self.cfg, **context)

    def known_tags(self) -> list[str]:
        """Tags of the published articles, computed once per build."""
        if self._tags is None:
            if self._tags_source is None:
                from ..jobs.subscriptions import known_tags
                self._tags_source = known_tags
            self._tags = self._tags_source(self.cfg)
        return self._tags

    def rebuilt(self, when: datetime) -> None:
        """Called after a build: forget derived data."""
        self.last_build = when
        self._tags = None
