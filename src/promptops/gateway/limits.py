"""The gateway's limits: a token bucket per caller (an API key, or a user signed in with a session) and a
monthly spend budget per project.

Two stores keep them:

- **In process** (the default): each process has its own buckets, and counts the project's spend as the
  database's sum (re-read every few seconds) plus what it spent itself since. Several processes each allow
  the full rate, and can overrun a budget by what the others spent since their last read.
- **Redis** (``PROMPTOPS_REDIS_URL``): every process shares the buckets (one atomic Lua script per take, on
  Redis' clock) and a counter of the month's gateway spend per project (seeded from the stored runs when it
  does not exist yet, then added to as calls finish). Spend of other sources (playground, evaluations, SDK
  runs) still comes from the database.

Redis failing must not stop model calls: while it does not answer, rate limits are not applied and budgets
fall back to this process's view (fail open), each such decision is counted
(``promptops_gateway_limits_fail_open_total``) and a warning is logged (at most every 30 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter

from promptops.logging import log

T = TypeVar("T")
RateSource = Literal["api_key", "project", "server"]
BudgetSource = Literal["project", "server"]

SPEND_REFRESH_SECONDS = 5.0
MAX_LOCAL_BUCKETS = 100_000
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_PAUSE_SECONDS = 2.0  # after a failure, calls do not wait on Redis again for this long
WARN_EVERY_SECONDS = 30.0


# --- what applies --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """Requests a minute for one caller (0: none), and where the number comes from."""

    per_minute: int
    source: RateSource


@dataclass(frozen=True)
class Budget:
    """A project's monthly spend limit in USD (0: none), and where it comes from."""

    limit_usd: float
    source: BudgetSource


@dataclass(frozen=True)
class MonthSpend:
    """The month's spend the database holds for a project: gateway runs, and every other source."""

    gateway: float
    other: float


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


# --- rate limits ---------------------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class LocalRateLimiter:
    """Token buckets in this process: ``per_minute`` requests a minute per key, in bursts of up to
    ``per_minute``. The rate is passed on every take, so a changed limit applies at once."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, per_minute: int) -> float | None:
        return self.take_now(key, per_minute)

    def take_now(self, key: str, per_minute: int) -> float | None:
        """None when the request may go; else the seconds until a token is free."""
        if per_minute <= 0:
            return None
        now = time.monotonic()
        rate = per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_LOCAL_BUCKETS:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(per_minute), now)
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def _prune(self, now: float) -> None:
        # A bucket untouched for a minute has refilled whatever its rate: forgetting it changes nothing.
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= 60.0]:
            del self._buckets[key]


# Token bucket on Redis' clock (so processes on machines with skewed clocks agree). KEYS[1]: the bucket;
# ARGV[1]: requests a minute. Returns 0 when a token was taken, else the milliseconds until one is free.
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = capacity / 60000.0
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
if now > stamp then
  tokens = math.min(capacity, tokens + (now - stamp) * rate)
  stamp = now
else
  tokens = math.min(capacity, tokens)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.max(1, math.ceil((1 - tokens) / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], 61000)
return wait
"""

# The month's gateway spend of a project: seeded (ARGV[1], from the stored runs) when absent, kept until
# ARGV[2] (Unix seconds). Returns the counter as a string.
SPENT_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
  return ARGV[1]
end
return value
"""

# Adds to an existing counter only: one that is absent is seeded from the database at the next check, and
# the database will hold this call's run by then or soon after.
ADD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
end
return false
"""


# --- spend ---------------------------------------------------------------------------------------------------


@dataclass
class _Month:
    month: datetime
    stored: MonthSpend
    loaded: float  # monotonic time of the read
    since: float  # gateway spend this process added after the read started


class SpendLedger:
    """The month's spend of each project as this process sees it: the database's sums (re-read every
    ``refresh`` seconds, one read at a time per project) plus what this process spent since."""

    def __init__(
        self, load: Callable[[str, datetime], Awaitable[MonthSpend]], refresh: float = SPEND_REFRESH_SECONDS
    ) -> None:
        self.load = load
        self.refresh = refresh
        self._months: dict[str, _Month] = {}
        self._loading: dict[str, asyncio.Future[_Month]] = {}
        self._added: dict[str, float] = {}  # gateway spend added by this process, ever (per project)

    async def stored(self, project_id: str) -> _Month:
        month = month_start(datetime.now(UTC))
        entry = self._months.get(project_id)
        if entry is not None and entry.month == month and time.monotonic() - entry.loaded <= self.refresh:
            return entry
        pending = self._loading.get(project_id)
        if pending is None:
            pending = asyncio.ensure_future(self._read(project_id, month))
            self._loading[project_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(project_id, None))
        return await asyncio.shield(pending)

    async def _read(self, project_id: str, month: datetime) -> _Month:
        before = self._added.get(project_id, 0.0)
        started = time.monotonic()
        try:
            stored = await self.load(project_id, month)
        except Exception as exc:  # the database is down: calls go on, on what was read before (fail open)
            old = self._months.get(project_id)
            log.warning("gateway_spend_unreadable", project_id=project_id, error_type=type(exc).__name__)
            if old is not None and old.month == month:
                old.loaded = started  # tried again after the next refresh interval
                return old
            stored = MonthSpend(0.0, 0.0)
        # what was added while the database was read is likely not in its sums yet: keep it
        entry = _Month(month, stored, started, self._added.get(project_id, 0.0) - before)
        self._months[project_id] = entry
        return entry

    async def spent(self, project_id: str) -> float:
        """Everything the project spent this month, as far as this process knows."""
        entry = await self.stored(project_id)
        return entry.stored.gateway + entry.stored.other + entry.since

    def add(self, project_id: str, cost: float) -> None:
        self._added[project_id] = self._added.get(project_id, 0.0) + cost
        entry = self._months.get(project_id)
        if entry is not None:
            entry.since += cost


# --- the stores ----------------------------------------------------------------------------------------------


class LimitStore(Protocol):
    """Where buckets and spend live (:class:`LocalLimits` or :class:`RedisLimits`)."""

    shared: bool

    async def take(self, key: str, per_minute: int) -> float | None:
        """None when the request may go; else the seconds until a token is free."""
        ...

    async def spent(self, project_id: str) -> float: ...

    def add(self, project_id: str, cost: float) -> None: ...

    async def settle(self) -> None: ...

    async def aclose(self) -> None: ...


class LocalLimits:
    """Both limits in this process."""

    shared = False

    def __init__(self, ledger: SpendLedger) -> None:
        self.ledger = ledger
        self.buckets = LocalRateLimiter()

    async def take(self, key: str, per_minute: int) -> float | None:
        return self.buckets.take_now(key, per_minute)

    async def spent(self, project_id: str) -> float:
        return await self.ledger.spent(project_id)

    def add(self, project_id: str, cost: float) -> None:
        self.ledger.add(project_id, cost)

    async def settle(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class FailOpen:
    """Runs Redis operations; on failure counts a fail-open decision, logs (throttled) and pauses Redis use
    briefly, so a dead or unreachable Redis costs calls at most one short timeout now and then."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "promptops_gateway_limits_fail_open_total",
            "Gateway limit decisions taken without Redis because it failed (calls let through)",
            ["operation"],
            registry=registry,
        )
        self._paused_until = 0.0
        self._warned_at = -WARN_EVERY_SECONDS
        self._failing = False

    async def run(self, operation: str, work: Callable[[], Coroutine[Any, Any, T]]) -> tuple[bool, T | None]:
        """(True, result), or (False, None) when Redis failed or is paused after a failure."""
        from redis.exceptions import RedisError

        if time.monotonic() < self._paused_until:
            self.counter.labels(operation).inc()
            return False, None
        try:
            result = await work()
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            self._paused_until = now + REDIS_PAUSE_SECONDS
            self._failing = True
            self.counter.labels(operation).inc()
            if now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning(
                    "gateway_limits_redis_unavailable",
                    operation=operation,
                    error_type=type(exc).__name__,
                    error=str(exc)[:200],
                    effect="rate limits not applied, budgets checked per process",
                )
            return False, None
        if self._failing:
            self._failing = False
            log.info("gateway_limits_redis_recovered", operation=operation)
        return True, result


class RedisLimits:
    """Both limits in Redis, shared by every process that uses the same URL and key prefix."""

    shared = True

    def __init__(self, url: str, prefix: str, ledger: SpendLedger, registry: CollectorRegistry) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),  # once, on a fresh connection (e.g. Redis restarted)
            health_check_interval=30,
            decode_responses=True,
        )
        self.prefix = prefix
        self.ledger = ledger
        self.guard = FailOpen(registry)
        self._take = self.client.register_script(TAKE_SCRIPT)
        self._spent = self.client.register_script(SPENT_SCRIPT)
        self._add = self.client.register_script(ADD_SCRIPT)
        self._pending: set[asyncio.Task[None]] = set()
        self._checked: set[str] = set()  # spend counters this process checked (only those are added to)

    def bucket_key(self, key: str) -> str:
        return f"{self.prefix}gateway:rate:{key}"

    def spend_key(self, project_id: str, month: datetime) -> str:
        return f"{self.prefix}gateway:spend:{project_id}:{month:%Y-%m}"

    async def take(self, key: str, per_minute: int) -> float | None:
        if per_minute <= 0:
            return None

        async def work() -> Any:
            return await self._take(keys=[self.bucket_key(key)], args=[per_minute])

        ok, wait_ms = await self.guard.run("rate_limit", work)
        if not ok or not wait_ms:
            return None
        return int(wait_ms) / 1000.0

    async def spent(self, project_id: str) -> float:
        entry = await self.ledger.stored(project_id)
        month = entry.month
        key = self.spend_key(project_id, month)
        self._checked.add(key)
        # kept a week into the next month, so a late call of the old month still finds it
        expires = int(next_month(month).timestamp()) + 7 * 86_400

        async def work() -> Any:
            return await self._spent(keys=[key], args=[repr(entry.stored.gateway), expires])

        ok, counter = await self.guard.run("budget_check", work)
        if not ok or counter is None:
            return await self.ledger.spent(project_id)
        return entry.stored.other + float(counter)

    def add(self, project_id: str, cost: float) -> None:
        """Count a finished call's cost (in the background: the answer does not wait on Redis)."""
        self.ledger.add(project_id, cost)
        key = self.spend_key(project_id, month_start(datetime.now(UTC)))
        if cost <= 0 or key not in self._checked:  # no budget applied to the call: nothing to count
            return

        async def work() -> Any:
            return await self._add(keys=[key], args=[repr(cost)])

        async def send() -> None:
            await self.guard.run("budget_add", work)

        task = asyncio.get_running_loop().create_task(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the spend still being sent to Redis."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.settle()
        await self.client.aclose()
