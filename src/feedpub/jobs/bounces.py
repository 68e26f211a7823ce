"""Read the bounce mailbox and apply what it says: bounces, complaints, unsubscribe mails.

For each mail: its key (a SHA-256 of its bytes) is looked up; a new one is parsed, matched
to a subscriber (VERP token first, reported address second) and recorded together with its
effect in one transaction; only then is the mail removed from the mailbox. Unrecognised mail
is recorded (so it is counted once) and left where it is.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..bounces.mailbox import open_mailbox
from ..bounces.parse import KINDS, Report, parse_report
from ..config import Config
from ..mail import verp
from ..store import Store, open_store
from ..store.reports import BounceRules, MailReports, ReportRecord, sent_since

log = logging.getLogger(__name__)
COMPLAINT_LINE = 0.003  # Gmail's and Yahoo's limit for spam complaints (0.3%)
RATE_DAYS = 30


@dataclass
class FetchReport:
    """What one read of the mailbox did: new reports per kind, mails skipped as seen."""

    mailbox: str = ""
    new: Counter[str] = field(default_factory=Counter)
    already_seen: int = 0
    removed: int = 0
    unsubscribed: int = 0
    bounced: int = 0

    @property
    def summary(self) -> str:
        kinds = ", ".join(f"{self.new[k]} {k}" for k in KINDS)
        return (f"{self.mailbox}: {kinds}; {self.already_seen} seen before; {self.removed} "
                f"removed; {self.unsubscribed} unsubscribed, {self.bounced} marked bounced")


def _rules(cfg: Config) -> BounceRules:
    return BounceRules(bounce_limit=cfg.delivery.bounce_limit,
                       soft_score=cfg.bounces.soft_score, reset_days=cfg.bounces.bounce_reset)


def _record(store: Store, key: str, report: Report) -> ReportRecord:
    """Match the report to a subscriber: VERP token first, then the reported addresses."""
    claim = report.claim
    if claim is not None:
        sub = store.get_subscriber_by_id(claim.subscriber_id)
        if sub is not None:
            return ReportRecord(key, report.kind, sub.id, claim.issue_id, sub.email,
                                report.reason)
    for address in report.addresses:
        try:
            sub = store.get_subscriber(address)
        except Exception:  # noqa: BLE001 - a malformed reported address names nobody
            sub = None
        if sub is not None:
            return ReportRecord(key, report.kind, sub.id, None, sub.email, report.reason)
    kind = report.kind
    reason = report.reason
    if kind != "unrecognised":  # a report about nobody we know: counted, left in place
        reason = f"{kind} for an unknown address {', '.join(report.addresses) or '-'}: {reason}"
        kind = "unrecognised"
    return ReportRecord(key, kind, None, None,
                        report.addresses[0] if report.addresses else None, reason)


def fetch_bounces(cfg: Config, *, now: datetime | None = None) -> FetchReport:
    """Read the configured mailbox once. Raises DeliveryError when it cannot be opened."""
    result = FetchReport()
    rules = _rules(cfg)
    mailto = cfg.digest.from_address

    def reader(address: str) -> verp.VerpClaim | None:
        return verp.claim_from_address(cfg, address)

    with open_store(cfg) as store, open_mailbox(cfg) as box:
        result.mailbox = box.name
        reports = MailReports(store)
        for handle, data in box.messages():
            key = hashlib.sha256(data).hexdigest()
            kind = reports.seen(key)
            if kind is None:
                record = _record(store, key, parse_report(data, verp=reader, mailto=mailto))
                applied = reports.apply(record, rules, now or datetime.now(UTC))
                kind = applied.kind
                if applied.new:
                    result.new[kind] += 1
                    result.unsubscribed += applied.status == "unsubscribed"
                    result.bounced += applied.status == "bounced"
                    log.info("mail report %s: %s %s", key[:12], kind, record.reason)
                else:
                    result.already_seen += 1
            else:
                result.already_seen += 1
            if kind != "unrecognised":
                box.done(handle)  # only now: the result above is committed
                result.removed += 1
    return result


@dataclass(frozen=True)
class ReportStats:
    """Reports counted for /metrics and `feedpub status`."""

    totals: dict[str, int]
    complaints_30d: int
    sent_30d: int

    @property
    def complaint_rate(self) -> float:
        return self.complaints_30d / self.sent_30d if self.sent_30d else 0.0

    @property
    def rate_line(self) -> str:
        verdict = "over" if self.complaint_rate >= COMPLAINT_LINE else "under"
        return (f"{self.complaint_rate:.2%} of {self.sent_30d} sent in {RATE_DAYS} days "
                f"({verdict} the 0.3% line)")


def stored_report_stats(cfg: Config) -> ReportStats | None:
    """The report counts of the configured store; None while it does not exist yet."""
    from .deliverability import store_exists

    if not store_exists(cfg):
        return None
    with open_store(cfg) as store:
        return report_stats(store)


def report_stats(store: Store, now: datetime | None = None) -> ReportStats:
    since = (now or datetime.now(UTC)) - timedelta(days=RATE_DAYS)
    reports = MailReports(store)
    totals: Counter[str] = Counter()
    for (_, kind), count in reports.counts().items():
        totals[kind] += count
    recent = reports.counts(since=since)
    complaints = sum(c for (_, kind), c in recent.items() if kind == "complaint")
    return ReportStats(totals={k: totals[k] for k in KINDS}, complaints_30d=complaints,
                       sent_30d=sent_since(store, since))


def issue_reports(cfg: Config, issue_ids: list[int]) -> tuple[dict[int, Counter[str]], list[str]]:
    """Reports per issue (kind -> count) and the newest reasons, for `digest status`."""
    with open_store(cfg) as store:
        reports = MailReports(store)
        per: dict[int, Counter[str]] = {}
        for (issue, kind), count in reports.counts(issue_ids=issue_ids).items():
            if issue is not None:
                per.setdefault(issue, Counter())[kind] += count
        lines = [f"#{r.issue_id} {r.kind} {r.address}: {r.reason}"
                 for r in reports.recent(issue_ids)]
    return per, lines


def subscriber_reasons(cfg: Config) -> dict[str, str]:
    """Address -> last bounce or complaint reason (with the bounce score)."""
    with open_store(cfg) as store:
        return MailReports(store).reasons()
