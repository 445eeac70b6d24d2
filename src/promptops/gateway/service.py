"""The gateway's state and decisions: which connection a ``model`` routes to, which prompt a call belongs to,
limits, and the run each finished call becomes (journaled through the :class:`~.outbox.Outbox`)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import case, func, select

from promptops.auth import service as auth
from promptops.auth.principal import Principal
from promptops.cache import TTLCache
from promptops.db import utcnow
from promptops.errors import NotFound, ProblemError
from promptops.experiments import service as experiments
from promptops.gateway.fingerprint import fingerprint, template_text
from promptops.gateway.http import Pool
from promptops.gateway.limits import (
    Budget,
    LimitStore,
    LocalLimits,
    MonthSpend,
    RateLimit,
    RedisLimits,
    SpendLedger,
    month_start,
    next_month,
)
from promptops.gateway.outbox import END_USER_KEY, Outbox, OutboxMetrics
from promptops.gateway.wire import GatewayError, Wire
from promptops.ids import new_id
from promptops.logging import log
from promptops.providers import service as providers
from promptops.providers.base import Usage
from promptops.providers.calls import estimate_tokens
from promptops.providers.models import ResponseCacheEntry
from promptops.providers.ssrf import check_base_url
from promptops.registry import service as registry
from promptops.runs.models import Run, RunRollup
from promptops.runs.rollup import hour_of
from promptops.runtime import Runtime
from promptops.tenancy import service as tenancy

PROMPT_HEADER = "x-promptops-prompt"
# The experiment unit (user or session id) of a call; else the OpenAI body's ``user``, else Anthropic's
# ``metadata.user_id``. With a prompt reference by label, an experiment running there serves the unit's arm.
UNIT_HEADER = "x-promptops-unit"
EXPERIMENT_HEADER = "x-promptops-experiment"  # on the answer: "<experiment id>/<arm>"
MAX_UNIT_CHARS = 200
CACHE_HEADER = "x-promptops-cache"  # opt-in response cache: seconds to keep the answer
METADATA_KEY = "promptops_prompt"
SSRF_RECHECK_SECONDS = 30.0
MAX_CACHE_TTL_SECONDS = 30 * 24 * 3600
# Project settings (PATCH /api/v1/projects/current) overriding the server's defaults
RATE_SETTING = "gatewayRateLimitPerMinute"
BUDGET_SETTING = "gatewayMonthlyBudgetUsd"
RATE_SOURCES = {
    "api_key": "the key's own rateLimitPerMinute",
    "project": f"project setting {RATE_SETTING}",
    "server": "server default PROMPTOPS_GATEWAY_RATE_LIMIT_PER_MINUTE",
}
BUDGET_SOURCES = {
    "project": f"project setting {BUDGET_SETTING}",
    "server": "server default PROMPTOPS_GATEWAY_MONTHLY_BUDGET_USD",
}


@dataclass(frozen=True)
class Route:
    connection: providers.ResolvedConnection
    model: str

    @property
    def passthrough_openai(self) -> bool:
        return self.connection.type == "openai"

    @property
    def passthrough_anthropic(self) -> bool:
        return self.connection.type == "anthropic"


@dataclass(frozen=True)
class Attribution:
    prompt_id: str | None = None
    version_id: str | None = None
    fingerprint: str | None = None
    warning: str | None = None
    label: str | None = None  # the label the prompt reference resolved by (an experiment may run there)
    experiment_id: str | None = None
    arm: str | None = None
    arm_model: str | None = None  # the arm's model override: the call goes to this model


def unit_of(header: str | None, body: dict[str, Any]) -> str | None:
    """The call's experiment unit: the ``X-PromptOps-Unit`` header, else the OpenAI ``user`` field, else the
    Anthropic ``metadata.user_id`` (a value of 1-200 characters; anything else is no unit)."""
    candidates: list[Any] = [header, body.get("user")]
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        candidates.append(metadata.get("user_id"))
    for value in candidates:
        if isinstance(value, str) and value.strip() and len(value) <= MAX_UNIT_CHARS:
            return value
    return None


@dataclass(frozen=True)
class CallerLimits:
    """The rate limit and budget that apply to one caller in one project."""

    rate: RateLimit
    budget: Budget


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _amount(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def effective_limits(
    key_limit: int | None, project_settings: dict[str, Any], server_rate: int, server_budget: float
) -> CallerLimits:
    """The key's own rate limit, else the project's setting, else the server's; the project's budget, else
    the server's."""
    rate = RateLimit(server_rate, "server")
    if (own := _count(key_limit)) is not None:
        rate = RateLimit(own, "api_key")
    elif (project_rate := _count(project_settings.get(RATE_SETTING))) is not None:
        rate = RateLimit(project_rate, "project")
    budget = Budget(server_budget, "server")
    if (project_budget := _amount(project_settings.get(BUDGET_SETTING))) is not None:
        budget = Budget(project_budget, "project")
    return CallerLimits(rate, budget)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Call:
    """One gateway call being served: who, where to, and what to record when it finishes."""

    principal: Principal
    wire: Wire
    route: Route
    attribution: Attribution
    body: dict[str, Any]
    started: float
    kind: str  # chat | completion | embedding | messages
    cache_ttl: int | None = None
    run_id: str = field(default_factory=lambda: new_id("run"))
    unit: str | None = None  # the end user the call named (seals its run's payloads where the project does)


class Gateway:
    """Held on ``app.state.gateway``; started and stopped with the app."""

    def __init__(self, runtime: Runtime, registry_: CollectorRegistry) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.settings = settings
        directory = settings.gateway_outbox_dir or settings.data_dir / "gateway-outbox"
        self.outbox = Outbox(Path(directory), runtime.db, OutboxMetrics(registry_))
        ledger = SpendLedger(self._month_spend)
        self.limits: LimitStore = (
            RedisLimits(settings.redis_url, settings.redis_key_prefix, ledger, registry_)
            if settings.redis_url
            else LocalLimits(ledger)
        )
        ttl = settings.resolve_cache_ttl_seconds
        self._caller_limits: TTLCache[CallerLimits] = TTLCache(ttl=ttl)
        self._known_limits: TTLCache[CallerLimits] = TTLCache(ttl=24 * 3600)  # while the database is down
        self._connections: TTLCache[list[providers.ResolvedConnection]] = TTLCache(ttl=ttl)
        self._prompts: TTLCache[Attribution] = TTLCache(ttl=ttl)
        self._ssrf_checked: TTLCache[bool] = TTLCache(ttl=SSRF_RECHECK_SECONDS)
        self._pools: dict[tuple[str, str], tuple[str, Pool]] = {}
        self._retired: list[Pool] = []
        self.calls = Counter(
            "promptops_gateway_calls_total",
            "Gateway calls by wire format and outcome",
            ["wire", "status"],
            registry=registry_,
        )

    async def start(self) -> None:
        await self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.limits.aclose()
        for pool in [p for _, p in self._pools.values()] + self._retired:
            await pool.aclose()
        self._pools.clear()
        self._retired.clear()

    # --- routing ---------------------------------------------------------------------------------------------

    async def _project_connections(self, principal: Principal) -> list[providers.ResolvedConnection]:
        async def load() -> list[providers.ResolvedConnection]:
            async with self.runtime.db.transaction() as session:
                rows = await providers.list_connections(session, principal)
                return [providers.resolved(row, self.runtime.box) for row in rows]

        return await self._connections.get_or_load(principal.project_id, load)

    async def route(self, principal: Principal, model: Any, wire: Wire) -> Route:
        """``<connection>/<model>``; else an alias a connection declares in ``options.aliases``; else a model a
        single connection lists in ``allowedModels``; else the embedded local model by its name."""
        if not isinstance(model, str) or not model:
            raise GatewayError(400, "'model' is required", "validation_error", wire=wire, param="model")
        name, slash, rest = model.partition("/")
        if slash and rest:
            try:
                connection = await self.runtime.caller.connection(principal, name)
            except NotFound:
                connection = None
            if connection is not None:
                if connection.allowed_models and rest not in connection.allowed_models:
                    raise GatewayError(
                        404,
                        f"Model {rest!r} is not allowed on connection {name!r}",
                        "model_not_found",
                        wire=wire,
                        param="model",
                    )
                return Route(connection, rest)
        connections = await self._project_connections(principal)
        for connection in connections:
            aliases = connection.config.options.get("aliases")
            if isinstance(aliases, dict) and isinstance(aliases.get(model), str):
                return Route(connection, aliases[model])
        listing = [c for c in connections if model in c.allowed_models]
        if len(listing) == 1:
            return Route(listing[0], model)
        if model == providers.LOCAL_MODEL:
            return Route(providers.LOCAL_CONNECTION, model)
        raise GatewayError(
            404,
            f"The model {model!r} does not exist or you do not have access to it. Use '<connection>/<model>' "
            "with a provider connection of this project, or an alias (see GET /v1/models).",
            "model_not_found",
            wire=wire,
            param="model",
        )

    async def models(self, principal: Principal) -> list[tuple[str, str]]:
        """(model id to send, connection it routes to) for everything this key's project can call."""
        found: dict[str, str] = {f"{providers.LOCAL_NAME}/{providers.LOCAL_MODEL}": providers.LOCAL_NAME}
        for connection in await self._project_connections(principal):
            for model in connection.allowed_models:
                found.setdefault(f"{connection.name}/{model}", connection.name)
            aliases = connection.config.options.get("aliases")
            if isinstance(aliases, dict):
                for alias in aliases:
                    found.setdefault(str(alias), connection.name)
            if not connection.allowed_models:
                found.setdefault(f"{connection.name}/*", connection.name)
        return sorted(found.items())

    async def guard(self, connection: providers.ResolvedConnection) -> None:
        """The SSRF check of the provider layer, on every upstream (re-checked every 30 s per URL)."""
        url = connection.config.base_url
        if not url or self._ssrf_checked.get(url):
            return
        await check_base_url(url, self.settings.provider_allowed_hosts)
        self._ssrf_checked.put(url, True)

    def pool(self, connection: providers.ResolvedConnection, base_url: str) -> Pool:
        """The keep-alive connections to a connection's upstream (new ones when the connection changed)."""
        key = (connection.id or connection.name, base_url)
        found = self._pools.get(key)
        if found is None or found[0] != connection.version:
            if found is not None:
                self._retired.append(found[1])
            found = (connection.version, Pool(base_url, connection.config.timeout_seconds))
            self._pools[key] = found
        return found[1]

    # --- limits ----------------------------------------------------------------------------------------------

    async def caller_limits(self, principal: Principal) -> CallerLimits:
        """What applies to this caller (cached like resolved prompts: a change applies within about a TTL)."""

        cache_key = (principal.kind, principal.id, principal.project_id)
        server_rate = self.settings.gateway_rate_limit_per_minute
        server_budget = self.settings.gateway_monthly_budget_usd

        async def load() -> CallerLimits:
            try:
                async with self.runtime.db.transaction() as session:
                    project = await tenancy.project_settings(session, principal.project_id)
                    own = (
                        await auth.api_key_rate_limit(session, principal.id)
                        if principal.kind == "api_key"
                        else None
                    )
            except Exception as exc:  # the database is down: answers keep flowing, on the last known limits
                known = self._known_limits.get(cache_key)
                log.warning(
                    "gateway_limits_unreadable",
                    error_type=type(exc).__name__,
                    fallback="last known" if known else "server defaults",
                )
                return known or effective_limits(None, {}, server_rate, server_budget)
            limits = effective_limits(own, project, server_rate, server_budget)
            self._known_limits.put(cache_key, limits)
            return limits

        return await self._caller_limits.get_or_load(cache_key, load)

    async def check_limits(self, principal: Principal, wire: Wire) -> None:
        """429 when the caller's rate limit or the project's monthly budget is reached."""
        limits = await self.caller_limits(principal)
        rate = limits.rate
        scope = "api_key" if principal.kind == "api_key" else "user"
        wait = await self.limits.take(f"{scope}:{principal.id}", rate.per_minute)
        if wait is not None:
            who = "this API key" if scope == "api_key" else "this user"
            raise GatewayError(
                429,
                f"Rate limit of {rate.per_minute} requests per minute reached for {who} "
                f"({RATE_SOURCES[rate.source]}); retry in {max(1, math.ceil(wait))} s",
                "rate_limit_exceeded",
                wire=wire,
                retry_after=wait,
                extra={
                    "rateLimit": {
                        "limitPerMinute": rate.per_minute,
                        "scope": scope,
                        "source": rate.source,
                        "shared": self.limits.shared,
                        "retryAfterSeconds": round(wait, 3),
                    }
                },
            )
        budget = limits.budget
        if budget.limit_usd <= 0:
            return
        spent = await self.limits.spent(principal.project_id)
        if spent < budget.limit_usd:
            return
        now = datetime.now(UTC)
        resets = next_month(now)
        raise GatewayError(
            429,
            f"This project's monthly budget of ${budget.limit_usd:g} ({BUDGET_SOURCES[budget.source]}) is used "
            f"up: ${spent:.6g} spent in {month_start(now):%Y-%m} (UTC). It resets at {_utc(resets)}.",
            "budget_exceeded",
            wire=wire,
            retry_after=(resets - now).total_seconds(),
            kind="insufficient_quota" if wire == "openai" else None,
            extra={
                "budget": {
                    "limitUsd": budget.limit_usd,
                    "spentUsd": round(spent, 6),
                    "source": budget.source,
                    "month": f"{month_start(now):%Y-%m}",
                    "resetsAt": _utc(resets),
                }
            },
        )

    async def _month_spend(self, project_id: str, month: datetime) -> MonthSpend:
        gateway = RunRollup.source == "gateway"
        async with self.runtime.db.transaction() as session:
            row = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(case((gateway, RunRollup.cost_usd), else_=0.0)), 0.0),
                        func.coalesce(func.sum(case((gateway, 0.0), else_=RunRollup.cost_usd)), 0.0),
                    ).where(
                        RunRollup.project_id == project_id,
                        RunRollup.grain == 24,
                        RunRollup.bucket >= hour_of(month),
                    )
                )
            ).one()
        return MonthSpend(float(row[0] or 0.0), float(row[1] or 0.0))

    # --- attribution -----------------------------------------------------------------------------------------

    async def attribute(
        self, principal: Principal, header: str | None, body: dict[str, Any], unit: str | None = None
    ) -> Attribution:
        """The prompt a call belongs to: ``X-PromptOps-Prompt``, else ``metadata.promptops_prompt`` (removed
        from the body: upstreams may refuse unknown metadata), else a fingerprint of its template text. With a
        ``unit`` and a reference by label (``name@production``) on which an experiment runs: the unit's arm
        (its version, and its model when the arm overrides it); the exposure is recorded."""
        ref = header
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and METADATA_KEY in metadata:
            value = metadata.pop(METADATA_KEY)
            if not metadata:
                body.pop("metadata")
            ref = ref or (value if isinstance(value, str) else None)
        if ref:
            ref = ref.strip()

            async def load() -> Attribution:
                try:
                    resolved = await registry.resolve_cached(self.runtime.db, principal, ref)
                except ProblemError as exc:
                    return Attribution(warning=f"prompt {ref!r} not attributed: {exc.detail}")
                how = resolved.how
                label = how[len("label:") :] if how.startswith("label:") and how != "label:latest" else None
                return Attribution(resolved.prompt.id, resolved.version.id, label=label)

            found = await self._prompts.get_or_load((principal.project_id, ref), load)
            if found.prompt_id is not None and found.label is not None and unit is not None:
                return await self._arm_of(principal, found, unit)
            if found.prompt_id is not None:
                return found
            return Attribution(fingerprint=fingerprint(template_text(body)), warning=found.warning)
        return Attribution(fingerprint=fingerprint(template_text(body)))

    async def _arm_of(self, principal: Principal, found: Attribution, unit: str) -> Attribution:
        assert found.prompt_id is not None and found.label is not None
        exposures = self.runtime.exposures
        assignment = await experiments.assignment_for(
            self.runtime.db, principal.project_id, found.prompt_id, found.label, unit, exposures.pending_arm
        )
        if assignment is None:
            return found
        arm = assignment.arm
        if assignment.exposed:
            exposures.record(assignment.experiment_id, assignment.unit_hash, arm.name)
        return Attribution(
            found.prompt_id,
            arm.version_id,
            warning=found.warning,
            label=found.label,
            experiment_id=assignment.experiment_id,
            arm=arm.name,
            arm_model=arm.model,
        )

    # --- response cache (the provider layer's table, keyed by the exact upstream request) ----------------------

    @staticmethod
    def cache_key(call: Call, path: str, body: dict[str, Any]) -> str:
        # "gateway" keeps these keys apart from the provider layer's (which hash a normalised request)
        material = ["gateway", call.route.connection.name, call.route.connection.version, path, body]
        return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()

    async def cached(self, principal: Principal, key: str) -> dict[str, Any] | None:
        async with self.runtime.db.transaction() as session:
            entry = (
                await session.execute(
                    select(ResponseCacheEntry).where(
                        ResponseCacheEntry.project_id == principal.project_id,
                        ResponseCacheEntry.key == key,
                        ResponseCacheEntry.expires_at > utcnow(),
                    )
                )
            ).scalar_one_or_none()
            return dict(entry.response) if entry else None

    async def store_cached(self, principal: Principal, key: str, response: dict[str, Any], ttl: int) -> None:
        try:
            async with self.runtime.db.transaction(write=True) as session:
                now = utcnow()
                await session.merge(
                    ResponseCacheEntry(
                        project_id=principal.project_id,
                        key=key,
                        response=response,
                        created_at=now,
                        expires_at=now + timedelta(seconds=ttl),
                    )
                )
        except Exception as exc:  # the cache is an optimisation: never fail the call over it
            log.warning("gateway_cache_store_failed", error_type=type(exc).__name__)

    # --- recording -------------------------------------------------------------------------------------------

    async def finish(
        self,
        call: Call,
        *,
        input_: dict[str, Any],
        output: str | None,
        usage: Usage | None,
        latency_ms: float,
        ttft_ms: float | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        finish_reason: str | None = None,
        error: GatewayError | None = None,
        cached: bool = False,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Journal the finished call as a run (``source="gateway"``). Never raises."""
        try:
            if usage is None or not usage.reported:
                read = orjson.dumps(input_).decode()
                usage = Usage(estimate_tokens(read), estimate_tokens(output or ""), reported=False)
            connection = call.route.connection
            cost = 0.0
            if error is None and not cached:
                price = await self.runtime.caller.price(call.principal, connection, call.route.model)
                cost = providers.cost_usd(price, usage.input_tokens, usage.output_tokens)
            record: dict[str, Any] = {
                "id": call.run_id,
                "project_id": call.principal.project_id,
                "prompt_id": call.attribution.prompt_id,
                "version_id": call.attribution.version_id,
                "fingerprint": call.attribution.fingerprint,
                "experiment_id": call.attribution.experiment_id,
                "experiment_arm": call.attribution.arm,
                "provider": connection.name,
                "provider_type": connection.type,
                "model": call.route.model,
                "params": params if params is not None else _params(call.body),
                "input": input_,
                "output": output,
                "tool_calls": tool_calls,
                "finish_reason": finish_reason,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "usage_estimated": not usage.reported,
                "cost_usd": cost,
                "latency_ms": round(latency_ms, 3),
                "ttft_ms": round(ttft_ms, 3) if ttft_ms is not None else None,
                "status": "error" if error else "ok",
                "error_class": error.code[:60] if error else None,
                "error_message": error.message[:2000] if error else None,
                "source": "gateway",
                "cached": cached,
                "attempt": 1,
                "trace_id": None,
                "actor_id": call.principal.id,
                "created_at": utcnow().isoformat(),
            }
            if call.unit:
                record[END_USER_KEY] = call.unit
            self.outbox.append(record)
            self.limits.add(call.principal.project_id, cost)
            self.calls.labels(call.wire, "error" if error else "ok").inc()
        except Exception as exc:
            self.outbox.metrics.dropped.inc()
            log.error("gateway_record_failed", error_type=type(exc).__name__)

    def journal_run(self, run: Run, call: Call) -> None:
        """Journal a run the provider layer built (the translating path), as a gateway run of this call."""
        from promptops.gateway.outbox import record_of

        run.source = "gateway"
        run.fingerprint = call.attribution.fingerprint
        run.experiment_id = call.attribution.experiment_id
        run.experiment_arm = call.attribution.arm
        record = record_of(run)
        if call.unit:
            record[END_USER_KEY] = call.unit
        self.outbox.append(record)
        self.limits.add(call.principal.project_id, float(run.cost_usd or 0.0))
        self.calls.labels(call.wire, run.status).inc()


PARAM_KEYS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "stop_sequences",
    "seed",
    "n",
    "tool_choice",
    "response_format",
    "stream",
    "top_k",
    "logprobs",
    "presence_penalty",
    "frequency_penalty",
)


def _params(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in PARAM_KEYS if key in body}
