"""Prometheus metrics of one app, in its own CollectorRegistry (never the global one)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..config import Config


class HotCounter(Collector):
    """A counter for the static-file path: a plain integer bumped by the event loop thread
    (no lock, no label lookup), read when /metrics is scraped."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


class MailReportsCollector(Collector):
    """Bounces, complaints and unsubscribe mails as recorded in the store, read per scrape
    (so every process reports the same totals), and the 30-day complaint rate."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def describe(self) -> list[CounterMetricFamily]:
        return []  # nothing read at registration: the store is read per scrape

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        from ..jobs.bounces import COMPLAINT_LINE, stored_report_stats

        stats = stored_report_stats(self.cfg)
        if stats is None:
            return
        reports = CounterMetricFamily("feedpub_mail_reports", "Reports that came back by mail",
                                      labels=["kind"])
        for kind, count in stats.totals.items():
            reports.add_metric([kind], count)
        yield reports
        yield GaugeMetricFamily("feedpub_complaint_rate_30d", "Spam complaints per message "
                                "sent in the last 30 days", value=stats.complaint_rate)
        yield GaugeMetricFamily("feedpub_complaint_rate_limit", "The complaint rate mailbox "
                                "providers allow (Gmail: 0.3%)", value=COMPLAINT_LINE)


class Metrics:
    """The counters `/metrics` exposes; one instance per app / daemon."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.builds = Counter("feedpub_builds", "Feed builds run", ["result"],
                              registry=self.registry)
        self.feed_requests = HotCounter("feedpub_feed_requests", "Feed file requests served")
        self.not_modified = HotCounter("feedpub_not_modified", "Responses answered with 304")
        self.registry.register(self.feed_requests)
        self.registry.register(self.not_modified)
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

    def track_mail_reports(self, cfg: Config) -> None:
        """Expose the store's mail report counts (see `MailReportsCollector`)."""
        self.registry.register(MailReportsCollector(cfg))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
