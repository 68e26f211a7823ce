"""Bounce scores in the store (real SQLite): Mailman's model, each report applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedpub.store import open_store
from feedpub.store.reports import BounceRules, MailReports, ReportRecord

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
RULES = BounceRules(bounce_limit=3, soft_score=0.5, reset_days=7)


def record(key: str, kind: str, sid: int | None) -> ReportRecord:
    return ReportRecord(key, kind, sid, 1, "ann@example.com", f"{kind} reason {key}")


def test_scores_add_up_reset_after_quiet_days_and_reach_the_limit(site) -> None:
    with open_store(site) as store:
        ann, _ = store.add_subscriber("ann@example.com")
        reports = MailReports(store)
        assert reports.apply(record("a", "soft", ann.id), RULES, T0).status == "active"
        assert reports.apply(record("b", "hard", ann.id), RULES, T0 + timedelta(days=1)).new
        assert reports.reasons()["ann@example.com"].endswith("(score 1.5)")
        # eight quiet days: the score starts again from this bounce
        later = T0 + timedelta(days=9)
        assert reports.apply(record("c", "soft", ann.id), RULES, later).status == "active"
        assert reports.reasons()["ann@example.com"] == "soft: soft reason c (score 0.5)"
        reports.apply(record("d", "hard", ann.id), RULES, later)
        applied = reports.apply(record("e", "hard", ann.id), RULES, later)
        assert applied.status == "active"  # 2.5 < 3
        applied = reports.apply(record("f", "soft", ann.id), RULES, later)
        assert applied.status == "bounced"  # 3.0 reaches bounce_limit
        assert store.get_subscriber("ann@example.com").status == "bounced"  # type: ignore[union-attr]


def test_a_key_is_applied_once_and_a_complaint_unsubscribes(site) -> None:
    with open_store(site) as store:
        bob, _ = store.add_subscriber("bob@example.com")
        reports = MailReports(store)
        first = reports.apply(record("k", "complaint", bob.id), RULES, T0)
        again = reports.apply(record("k", "complaint", bob.id), RULES, T0)
        assert (first.new, first.status) == (True, "unsubscribed")
        assert (again.new, again.kind) == (False, "complaint")
        assert reports.seen("k") == "complaint" and reports.seen("other") is None
        assert sum(reports.counts().values()) == 1
        unknown = reports.apply(record("u", "unrecognised", None), RULES, T0)
        assert unknown.new and unknown.status is None
        assert reports.counts()[(1, "unrecognised")] == 1
