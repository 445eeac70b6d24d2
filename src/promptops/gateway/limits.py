"""Per-key rate limits (an in-process token bucket per API key) and per-project monthly spend budgets."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``per_minute`` requests a minute per key, in bursts of up to ``per_minute`` (0 disables)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float | None:
        """None when the request may go; else the seconds until a token is free."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic()
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


@dataclass
class _Spend:
    month: datetime
    stored: float  # what the database said at ``loaded``
    loaded: float
    since: float  # gateway spend recorded by this process after ``loaded``


class SpendBudget:
    """Monthly spend per project: the database's sum (re-read every ``refresh`` seconds) plus what this
    process spent since, so a burst cannot overrun the budget by more than the calls in flight."""

    def __init__(
        self,
        limit_usd: float,
        load: Callable[[str, datetime], Awaitable[float]],
        refresh: float = 5.0,
    ) -> None:
        self.limit_usd = limit_usd
        self.load = load
        self.refresh = refresh
        self._spend: dict[str, _Spend] = {}

    async def exceeded(self, project_id: str) -> float | None:
        """None while under budget; else the seconds until the month (and the budget) starts over."""
        if self.limit_usd <= 0:
            return None
        now = datetime.now(UTC)
        month = month_start(now)
        spend = self._spend.get(project_id)
        if spend is None or spend.month != month or time.monotonic() - spend.loaded > self.refresh:
            spend = _Spend(month, await self.load(project_id, month), time.monotonic(), 0.0)
            self._spend[project_id] = spend
        if spend.stored + spend.since < self.limit_usd:
            return None
        return (next_month(now) - now).total_seconds()

    def add(self, project_id: str, cost: float) -> None:
        spend = self._spend.get(project_id)
        if spend is not None:
            spend.since += cost
