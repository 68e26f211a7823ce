"""When a deferred message is tried next, or given up: the retry schedule, as pure values.

Postfix's model: the first retry `retry_first` after the failure, each later wait twice the
one before, never more than `retry_max_interval`, and no retry once the message has been in
the queue for `retry_give_up` (the last wait is shortened to end exactly then, so the final
try happens at the deadline).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..config import DeliveryConfig


def retry_delay(settings: DeliveryConfig, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed try (1 = the first)."""
    first, cap = float(settings.retry_first), float(settings.retry_max_interval)
    exponent = max(0, attempts - 1)
    if exponent > 60 or first * 2 ** exponent >= cap:
        return cap
    return first * 2 ** exponent


def next_attempt(settings: DeliveryConfig, attempts: int, now: datetime,
                 queued_at: datetime | None) -> datetime | None:
    """The time of the next try after the `attempts`-th temporary failure at `now`, or None
    when the message is to be given up (its deadline has passed)."""
    deadline = (queued_at or now) + timedelta(seconds=float(settings.retry_give_up))
    if now >= deadline:
        return None
    return min(now + timedelta(seconds=retry_delay(settings, attempts)), deadline)
