"""Prometheus metrics of one app, in its own CollectorRegistry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    """The counters `/metrics` exposes; one instance per app / daemon."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.builds = Counter("feedpub_builds", "Feed builds run", ["result"],
                              registry=self.registry)
        self.feed_requests = Counter("feedpub_feed_requests", "Feed file requests served",
                                     registry=self.registry)
        self.not_modified = Counter("feedpub_not_modified", "Responses answered with 304",
                                    registry=self.registry)
        self.emails_sent = Counter("feedpub_emails_sent", "Emails handed to the backend",
                                   ["kind"], registry=self.registry)
        self.emails_failed = Counter("feedpub_emails_failed", "Emails that could not be sent",
                                     ["kind"], registry=self.registry)
        self.subscribe_requests = Counter("feedpub_subscribe_requests",
                                          "Subscribe form submissions", ["result"],
                                          registry=self.registry)
        self.last_build = Gauge("feedpub_last_build_timestamp_seconds",
                                "Unix time of the last finished build", registry=self.registry)
        for result in ("ok", "failed"):
            self.builds.labels(result=result)
        for kind in ("confirm", "digest"):
            self.emails_sent.labels(kind=kind)
            self.emails_failed.labels(kind=kind)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
