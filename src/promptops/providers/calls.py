"""Every model call in the product goes through :class:`ModelCaller`: connection lookup, SSRF check,
concurrency limit, optional response cache, fallbacks, cost, and a recorded Run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select

from promptops.auth.principal import Principal
from promptops.cache import TTLCache
from promptops.config import Settings
from promptops.crypto import SecretBox
from promptops.db import Database, utcnow
from promptops.errors import ProblemError, ValidationProblem
from promptops.ids import new_id
from promptops.logging import log
from promptops.providers import service
from promptops.providers.base import (
    EmbeddingResponse,
    EmbeddingsNotSupported,
    ModelRequest,
    ModelResponse,
    ProviderError,
    StreamEvent,
    Usage,
)
from promptops.providers.factory import ProviderPool
from promptops.providers.models import ResponseCacheEntry
from promptops.providers.ssrf import check_base_url
from promptops.runs.models import Run
from promptops.runs.recorder import RunRecorder

# Parameters a prompt's modelConfig.params may carry that map onto ModelRequest fields.
KNOWN_PARAMS = {"temperature", "max_tokens", "top_p", "stop", "seed", "tool_choice"}
PARAM_ALIASES = {"maxTokens": "max_tokens", "topP": "top_p", "toolChoice": "tool_choice"}
SSRF_RECHECK_SECONDS = 30.0
# The output limit a call gets when neither the prompt, the request nor the connection sets max_tokens (the
# embedded model is slow per token; hosted APIs would otherwise apply their own, often unbounded, default).
DEFAULT_MAX_TOKENS = 1024
DEFAULT_MAX_TOKENS_BY_TYPE = {"local": 256}


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class CallInput:
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    response_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class CallContext:
    principal: Principal
    source: str
    prompt_id: str | None = None
    version_id: str | None = None
    trace_id: str | None = None


@dataclass
class CallOutcome:
    target: Target
    run: Run
    text: str | None
    usage: Usage | None
    cost_usd: float
    latency_ms: float
    ttft_ms: float | None = None
    cached: bool = False
    fallback_from: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    error: ProblemError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class EmbedOutcome:
    """The vectors of one embedding call (empty on error) and the Run that recorded it."""

    target: Target
    run: Run
    vectors: list[list[float]]
    usage: Usage | None
    cost_usd: float
    latency_ms: float
    error: ProblemError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


MAX_EMBED_TEXTS = 256


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters a token) for providers that report no usage."""
    return max(1, round(len(text) / 4)) if text else 0


def _unexpected(exc: Exception) -> ProviderError:
    log.exception("provider_adapter_error", error_type=type(exc).__name__)
    return ProviderError(
        f"Unexpected failure in the provider adapter ({type(exc).__name__})", code="provider_error"
    )


def _input_text(call: CallInput) -> str:
    if call.prompt is not None:
        return call.prompt
    return "\n".join(str(m.get("content", "")) for m in call.messages or [])


class ModelCaller:
    def __init__(
        self, settings: Settings, db: Database, box: SecretBox, recorder: RunRecorder, ttl: float
    ) -> None:
        self.settings = settings
        self.db = db
        self.box = box
        self.recorder = recorder
        self.pool = ProviderPool()
        self.connections: TTLCache[service.ResolvedConnection] = TTLCache(ttl=ttl)
        self.prices: TTLCache[service.Price | None] = TTLCache(ttl=ttl)
        self._ssrf_checked: TTLCache[bool] = TTLCache(ttl=SSRF_RECHECK_SECONDS)

    def forget_connections(self, project_id: str) -> None:
        self.connections.invalidate(lambda key: key[0] == project_id)
        self.prices.invalidate(lambda key: key[0] == project_id)

    async def aclose(self) -> None:
        await self.pool.aclose()

    # --- building blocks ----------------------------------------------------------------------------------

    async def connection(self, principal: Principal, name: str) -> service.ResolvedConnection:
        async def load() -> service.ResolvedConnection:
            async with self.db.transaction() as session:
                return await service.load_connection(session, principal, name, self.box)

        return await self.connections.get_or_load((principal.project_id, name), load)

    async def price(
        self, principal: Principal, connection: service.ResolvedConnection, model: str
    ) -> service.Price | None:
        async def load() -> service.Price | None:
            async with self.db.transaction() as session:
                return await service.price_for(session, principal.project_id, connection, model)

        return await self.prices.get_or_load((principal.project_id, connection.name, model), load)

    async def _guard(self, connection: service.ResolvedConnection) -> None:
        url = connection.config.base_url
        if not url or self._ssrf_checked.get(url):
            return
        await check_base_url(url, self.settings.provider_allowed_hosts)
        self._ssrf_checked.put(url, True)

    @staticmethod
    def effective_params(
        connection: service.ResolvedConnection, target: Target, *, generation: bool = True
    ) -> dict[str, Any]:
        """The parameters a call is made with (and its run records): the connection's defaults, the target's
        (prompt and request) on top, names normalised, and the default output limit when none is set."""
        params = {
            PARAM_ALIASES.get(k, k): v for k, v in {**connection.default_params, **target.params}.items()
        }
        if generation and params.get("max_tokens") is None:
            params["max_tokens"] = DEFAULT_MAX_TOKENS_BY_TYPE.get(connection.type, DEFAULT_MAX_TOKENS)
        return params

    @staticmethod
    def request_for(connection: service.ResolvedConnection, target: Target, call: CallInput) -> ModelRequest:
        if connection.allowed_models and target.model not in connection.allowed_models:
            raise ValidationProblem(
                f"Model {target.model!r} is not allowed on connection {connection.name!r}; "
                f"allowed: {', '.join(connection.allowed_models)}",
                code="model_not_allowed",
            )
        params = ModelCaller.effective_params(connection, target)
        known = {k: v for k, v in params.items() if k in KNOWN_PARAMS}
        extra = {k: v for k, v in params.items() if k not in KNOWN_PARAMS}
        stop = known.get("stop")
        return ModelRequest(
            model=target.model,
            prompt=call.prompt,
            messages=call.messages,
            temperature=known.get("temperature"),
            max_tokens=known.get("max_tokens"),
            top_p=known.get("top_p"),
            stop=[stop] if isinstance(stop, str) else stop,
            seed=known.get("seed"),
            tools=call.tools,
            tool_choice=known.get("tool_choice"),
            response_schema=call.response_schema,
            extra=extra,
        )

    @staticmethod
    def cache_key(connection: service.ResolvedConnection, request: ModelRequest) -> str:
        material = {
            "connection": connection.name,
            # changes with the connection's URL, key or settings, so answers of an old endpoint are not served
            "connectionVersion": connection.version,
            "type": connection.type,
            "model": request.model,
            "prompt": request.prompt,
            "messages": request.messages,
            "params": [request.temperature, request.max_tokens, request.top_p, request.stop, request.seed],
            "tools": request.tools,
            "toolChoice": request.tool_choice,
            "schema": request.response_schema,
            "extra": request.extra,
        }
        return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()

    async def _cached(self, principal: Principal, key: str) -> dict[str, Any] | None:
        async with self.db.transaction() as session:
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

    async def _store_cache(
        self, principal: Principal, key: str, response: dict[str, Any], ttl_seconds: int
    ) -> None:
        async with self.db.transaction(write=True) as session:
            now = utcnow()
            await session.merge(
                ResponseCacheEntry(
                    project_id=principal.project_id,
                    key=key,
                    response=response,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                )
            )

    def _run(
        self,
        ctx: CallContext,
        connection: service.ResolvedConnection,
        target: Target,
        request: ModelRequest,
        attempt: int,
    ) -> Run:
        params = self.effective_params(
            connection, target, generation=request.prompt is not None or bool(request.messages)
        )
        return Run(
            id=new_id("run"),
            project_id=ctx.principal.project_id,
            prompt_id=ctx.prompt_id,
            version_id=ctx.version_id,
            provider=connection.name,
            provider_type=connection.type,
            model=target.model,
            params=params,
            input={"prompt": request.prompt}
            if request.prompt is not None
            else {"messages": request.messages},
            source=ctx.source,
            trace_id=ctx.trace_id,
            actor_id=ctx.principal.id,
            attempt=attempt,
            created_at=utcnow(),
            status="ok",
        )

    async def _finish(
        self,
        ctx: CallContext,
        connection: service.ResolvedConnection,
        run: Run,
        text: str,
        usage: Usage | None,
        started: float,
        *,
        ttft_ms: float | None = None,
        cached: bool = False,
        tool_calls: list[dict[str, Any]] | None = None,
        finish_reason: str | None = None,
        call: CallInput,
        target: Target,
    ) -> CallOutcome:
        if usage is None or not usage.reported:
            usage = Usage(estimate_tokens(_input_text(call)), estimate_tokens(text), reported=False)
        price = await self.price(ctx.principal, connection, target.model)
        cost = 0.0 if cached else service.cost_usd(price, usage.input_tokens, usage.output_tokens)
        latency = round((time.perf_counter() - started) * 1000, 3)
        run.output, run.tool_calls, run.finish_reason = text, tool_calls, finish_reason
        run.input_tokens, run.output_tokens, run.usage_estimated = (
            usage.input_tokens,
            usage.output_tokens,
            not usage.reported,
        )
        run.cost_usd, run.latency_ms, run.ttft_ms, run.cached = cost, latency, ttft_ms, cached
        await self.recorder.record(run)
        return CallOutcome(
            target,
            run,
            text,
            usage,
            cost,
            latency,
            ttft_ms,
            cached,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
        )

    async def _fail(
        self, run: Run, error: ProblemError, started: float, target: Target, partial: str = ""
    ) -> CallOutcome:
        run.status = "error"
        run.error_class = error.code
        run.error_message = error.detail[:2000]
        run.output = partial or None
        run.latency_ms = (time.perf_counter() - started) * 1000
        await self.recorder.record(run)
        return CallOutcome(target, run, partial or None, None, 0.0, run.latency_ms, error=error)

    # --- calls --------------------------------------------------------------------------------------------

    async def call(
        self,
        ctx: CallContext,
        target: Target,
        call: CallInput,
        *,
        fallbacks: list[Target] | None = None,
        cache_ttl: int | None = None,
    ) -> CallOutcome:
        """Call ``target`` (then each fallback while the failure is retryable); every attempt is a Run."""
        chain = [target, *(fallbacks or [])]
        outcome: CallOutcome | None = None
        for attempt, current in enumerate(chain, start=1):
            outcome = await self._call_one(ctx, current, call, attempt, cache_ttl)
            if attempt > 1:
                outcome.fallback_from = chain[0].label
            retryable = isinstance(outcome.error, ProviderError) and outcome.error.retryable
            if outcome.ok or not retryable:
                return outcome
        assert outcome is not None
        return outcome

    async def _call_one(
        self, ctx: CallContext, target: Target, call: CallInput, attempt: int, cache_ttl: int | None
    ) -> CallOutcome:
        connection = await self.connection(ctx.principal, target.provider)
        request = self.request_for(connection, target, call)
        run = self._run(ctx, connection, target, request, attempt)
        started = time.perf_counter()
        key = self.cache_key(connection, request) if cache_ttl else None
        if key is not None:
            hit = await self._cached(ctx.principal, key)
            if hit is not None:
                usage = Usage(hit["inputTokens"], hit["outputTokens"], hit.get("reported", True))
                return await self._finish(
                    ctx,
                    connection,
                    run,
                    hit["text"],
                    usage,
                    started,
                    cached=True,
                    tool_calls=hit.get("toolCalls"),
                    finish_reason=hit.get("finishReason"),
                    call=call,
                    target=target,
                )
        try:
            await self._guard(connection)
            adapter = self.pool.adapter(connection)
            async with self.pool.semaphore(connection):
                response: ModelResponse = await adapter.complete(request)
        except ProblemError as error:
            return await self._fail(run, error, started, target)
        except Exception as exc:  # an adapter bug must still leave a failed run, not a lost one
            return await self._fail(run, _unexpected(exc), started, target)
        outcome = await self._finish(
            ctx,
            connection,
            run,
            response.text,
            response.usage,
            started,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            call=call,
            target=target,
        )
        if key is not None and cache_ttl:
            assert outcome.usage is not None
            await self._store_cache(
                ctx.principal,
                key,
                {
                    "text": response.text,
                    "inputTokens": outcome.usage.input_tokens,
                    "outputTokens": outcome.usage.output_tokens,
                    "reported": outcome.usage.reported,
                    "toolCalls": response.tool_calls,
                    "finishReason": response.finish_reason,
                },
                cache_ttl,
            )
        return outcome

    async def embed(self, ctx: CallContext, target: Target, texts: list[str]) -> EmbedOutcome:
        """Embed ``texts`` with ``target`` (one vector per text); recorded as a Run like any other call.

        The Run's input is ``{"texts": [...]}`` and its output ``"N embeddings"``; tokens are the provider's
        count, else estimated. Connections whose adapter cannot embed fail with ``embeddings_not_supported``.
        """
        if not texts or len(texts) > MAX_EMBED_TEXTS:
            raise ValidationProblem(
                f"an embedding call takes 1 to {MAX_EMBED_TEXTS} texts, got {len(texts)}",
                code="invalid_embedding_input",
            )
        connection = await self.connection(ctx.principal, target.provider)
        if connection.allowed_models and target.model not in connection.allowed_models:
            raise ValidationProblem(
                f"Model {target.model!r} is not allowed on connection {connection.name!r}; "
                f"allowed: {', '.join(connection.allowed_models)}",
                code="model_not_allowed",
            )
        run = self._run(ctx, connection, target, ModelRequest(model=target.model), 1)
        run.input = {"texts": list(texts)}
        started = time.perf_counter()
        try:
            await self._guard(connection)
            adapter = self.pool.adapter(connection)
            embed = getattr(adapter, "embed", None)
            if embed is None:
                raise EmbeddingsNotSupported(
                    f"connection {connection.name!r} ({connection.type}) cannot embed text; "
                    "use an OpenAI-compatible or the local connection"
                )
            async with self.pool.semaphore(connection):
                response: EmbeddingResponse = await embed(target.model, list(texts))
            if len(response.vectors) != len(texts):
                raise ProviderError(
                    f"the provider returned {len(response.vectors)} embeddings for {len(texts)} texts"
                )
        except ProblemError as error:
            failed = await self._fail(run, error, started, target)
            return EmbedOutcome(target, failed.run, [], None, 0.0, failed.latency_ms, error)
        except Exception as exc:
            failed = await self._fail(run, _unexpected(exc), started, target)
            return EmbedOutcome(target, failed.run, [], None, 0.0, failed.latency_ms, failed.error)
        usage = response.usage
        if not usage.reported:
            usage = Usage(sum(estimate_tokens(t) for t in texts), 0, reported=False)
        price = await self.price(ctx.principal, connection, target.model)
        cost = service.cost_usd(price, usage.input_tokens, 0)
        latency = round((time.perf_counter() - started) * 1000, 3)
        run.output = f"{len(response.vectors)} embeddings"
        run.input_tokens, run.output_tokens, run.usage_estimated = usage.input_tokens, 0, not usage.reported
        run.cost_usd, run.latency_ms = cost, latency
        await self.recorder.record(run)
        return EmbedOutcome(target, run, response.vectors, usage, cost, latency)

    async def stream(
        self, ctx: CallContext, target: Target, call: CallInput, *, fallbacks: list[Target] | None = None
    ) -> AsyncIterator[str | CallOutcome]:
        """Yield text deltas as they arrive, then one :class:`CallOutcome`.

        A fallback is tried only while nothing has been streamed yet (the caller cannot take text back).
        """
        chain = [target, *(fallbacks or [])]
        for attempt, current in enumerate(chain, start=1):
            sent_any = False
            outcome: CallOutcome | None = None
            async for item in self._stream_one(ctx, current, call, attempt):
                if isinstance(item, CallOutcome):
                    outcome = item
                else:
                    sent_any = True
                    yield item
            assert outcome is not None
            if attempt > 1:
                outcome.fallback_from = chain[0].label
            retryable = isinstance(outcome.error, ProviderError) and outcome.error.retryable
            if outcome.ok or sent_any or not retryable or attempt == len(chain):
                yield outcome
                return

    async def _stream_one(
        self, ctx: CallContext, target: Target, call: CallInput, attempt: int
    ) -> AsyncIterator[str | CallOutcome]:
        connection = await self.connection(ctx.principal, target.provider)
        request = self.request_for(connection, target, call)
        run = self._run(ctx, connection, target, request, attempt)
        started = time.perf_counter()
        parts: list[str] = []
        ttft: float | None = None
        final: StreamEvent | None = None
        try:
            await self._guard(connection)
            adapter = self.pool.adapter(connection)
            async with self.pool.semaphore(connection):
                async for event in adapter.stream(request):
                    if event.done:
                        final = event
                        break
                    if event.delta:
                        if ttft is None:
                            ttft = (time.perf_counter() - started) * 1000
                        parts.append(event.delta)
                        yield event.delta
        except ProblemError as error:
            yield await self._fail(run, error, started, target, "".join(parts))
            return
        except Exception as exc:
            yield await self._fail(run, _unexpected(exc), started, target, "".join(parts))
            return
        yield await self._finish(
            ctx,
            connection,
            run,
            "".join(parts),
            final.usage if final else None,
            started,
            ttft_ms=ttft,
            tool_calls=final.tool_calls if final else None,
            finish_reason=final.finish_reason if final else None,
            call=call,
            target=target,
        )
