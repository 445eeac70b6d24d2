"""The gateway's HTTP face: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/models``
(OpenAI wire format), ``/v1/messages`` (Anthropic), and ``GET /api/v1/gateway/prompts`` (the unregistered
prompts seen, by fingerprint). Errors on the ``/v1`` routes come in the caller's wire format
(:mod:`promptops.gateway.wire`)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.types import ASGIApp, Receive, Scope, Send

from promptops.auth.deps import Authorize, require
from promptops.auth.principal import Principal
from promptops.errors import ProblemError
from promptops.gateway import translate, upstream
from promptops.gateway.fingerprint import SAMPLE_CHARS, template_text
from promptops.gateway.service import (
    CACHE_HEADER,
    EXPERIMENT_HEADER,
    MAX_CACHE_TTL_SECONDS,
    PROMPT_HEADER,
    UNIT_HEADER,
    Call,
    Gateway,
    unit_of,
)
from promptops.gateway.streams import read_anthropic, read_openai
from promptops.gateway.wire import GatewayError, Wire, error_response, wire_of
from promptops.governance.rbac import Permission as P
from promptops.lifecycle import running
from promptops.runs import service as runs_service
from promptops.runtime import Runtime
from promptops.schemas import ApiOut

WARNING_HEADER = "x-promptops-warning"
RUN_HEADER = "x-promptops-run-id"
FALLBACKS_HEADER = "x-promptops-fallbacks"  # models to try in order when the requested one fails
FALLBACKS_FIELD = "fallbacks"  # the same, in the request body (LiteLLM's name)
FALLBACK_HEADER = "x-promptops-fallback-from"  # on an answer a fallback gave: the model that failed first
MAX_FALLBACKS = 5
# Provider failures another model may not have: rate limits, outages, timeouts (never the caller's own 4xx).
FALLBACK_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


class GatewayAuthorize(Authorize):
    """The usual guard (API key as ``Authorization: Bearer`` or ``x-api-key``, cached), failing in the
    caller's wire format."""

    async def __call__(self, request: Request) -> Principal:
        try:
            return await super().__call__(request)
        except ProblemError as exc:
            raise GatewayError.from_problem(exc, wire_of(request)) from None


CALL = GatewayAuthorize(P.GATEWAY_CALL)
# Not in the OpenAPI document: these routes follow the OpenAI and Anthropic API specifications.
router = APIRouter(prefix="/v1", tags=["gateway"], include_in_schema=False)
prompts_router = APIRouter(prefix="/api/v1/gateway", tags=["gateway"])


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _body(request: Request, gw: Gateway, wire: Wire) -> dict[str, Any]:
    raw = await request.body()
    limit = gw.settings.gateway_max_body_bytes
    if len(raw) > limit:
        raise GatewayError(413, f"Request body exceeds {limit} bytes", "payload_too_large", wire=wire)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(400, "The request body is not valid JSON", "invalid_json", wire=wire) from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", "invalid_json", wire=wire)
    return body


def _cache_ttl(request: Request, gw: Gateway, wire: Wire) -> int | None:
    value = request.headers.get(CACHE_HEADER)
    if value is None:
        return gw.settings.gateway_cache_ttl_seconds or None
    if value.lower() in ("0", "off", "no", "false"):
        return None
    try:
        ttl = int(value)
    except ValueError:
        raise GatewayError(
            400, f"{CACHE_HEADER} must be a number of seconds", "invalid_cache_header", wire=wire
        ) from None
    return max(1, min(ttl, MAX_CACHE_TTL_SECONDS))


def _fallback_models(request: Request, body: dict[str, Any], wire: Wire) -> list[str]:
    """The models to try, in order, when the requested one fails with a provider error: the
    ``X-PromptOps-Fallbacks`` header (comma-separated) or a ``fallbacks`` list in the body (as LiteLLM accepts
    it; taken out of the body, so the upstream never sees it)."""
    listed = body.pop(FALLBACKS_FIELD, None)
    header = request.headers.get(FALLBACKS_HEADER)
    if header is not None:
        listed = [item.strip() for item in header.split(",") if item.strip()]
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(isinstance(m, str) and m for m in listed):
        raise GatewayError(
            400, "fallbacks must be a list of model names", "validation_error", wire=wire, param="fallbacks"
        )
    if len(listed) > MAX_FALLBACKS:
        raise GatewayError(
            400, f"At most {MAX_FALLBACKS} fallbacks", "validation_error", wire=wire, param="fallbacks"
        )
    return listed


async def _dispatch(gw: Gateway, call: Call, path: str, client_headers: Any) -> Response:
    """One attempt: pass-through to an upstream of the caller's wire format, else translation through the
    provider layer."""
    passthrough = (
        call.route.passthrough_anthropic if call.wire == "anthropic" else call.route.passthrough_openai
    )
    if passthrough:
        response = await _cached(gw, call) if call.cache_ttl else None
        return response or await upstream.forward(gw, call, path, client_headers)
    if call.kind == "embedding":
        return await translate.embed(gw, call)
    if call.body.get("stream"):
        return await translate.stream(gw, call)
    return await translate.complete(gw, call)


async def _serve(request: Request, principal: Principal, kind: str, path: str) -> Response:
    started = time.perf_counter()
    gw = gateway_of(request)
    wire: Wire = "anthropic" if kind == "messages" else "openai"
    await gw.check_limits(principal, wire)
    body = await _body(request, gw, wire)
    fallbacks = _fallback_models(request, body, wire)
    unit = unit_of(request.headers.get(UNIT_HEADER), body)
    attribution = await gw.attribute(principal, request.headers.get(PROMPT_HEADER), body, unit)
    if attribution.arm_model is not None:  # the unit's arm serves the same prompt on another model
        body["model"] = attribution.arm_model
    # Every model is routed before any call, so a misspelt fallback is a 404 now rather than after an outage.
    routes = [await gw.route(principal, model, wire) for model in [body.get("model"), *fallbacks]]
    stream = bool(body.get("stream"))
    cache_ttl = None if stream or kind == "embedding" else _cache_ttl(request, gw, wire)
    for position, route in enumerate(routes):
        # Each attempt is its own call and run (as in the provider layer), answered only if it is the last
        # resort or it did not fail with a provider error.
        call = Call(principal, wire, route, attribution, body, started, kind, cache_ttl, unit=unit)
        last = position == len(routes) - 1
        try:
            response = await _dispatch(gw, call, path, request.headers)
        except GatewayError as error:
            if last or error.status not in FALLBACK_STATUSES:
                raise
            continue
        if last or response.status_code not in FALLBACK_STATUSES:
            break
    if position > 0:
        response.headers[FALLBACK_HEADER] = _UNSAFE_HEADER_CHARS.sub("?", str(body.get("model")))[:200]
    response.headers[RUN_HEADER] = call.run_id
    if attribution.experiment_id is not None:
        response.headers[EXPERIMENT_HEADER] = f"{attribution.experiment_id}/{attribution.arm}"
    if attribution.warning:
        response.headers[WARNING_HEADER] = _UNSAFE_HEADER_CHARS.sub("?", attribution.warning)[:500]
    return response


async def _cached(gw: Gateway, call: Call) -> Response | None:
    hit = await gw.cached(call.principal, gw.cache_key(call, "", call.body))
    if hit is None:
        return None
    reading = read_anthropic(hit) if call.wire == "anthropic" else read_openai(hit)
    await gw.finish(
        call,
        input_=upstream.record_input(call),
        output=reading.output,
        usage=reading.usage,
        latency_ms=(time.perf_counter() - call.started) * 1000,
        tool_calls=reading.calls(),
        finish_reason=reading.finish_reason,
        cached=True,
    )
    return Response(orjson.dumps(hit), media_type="application/json", headers={"x-promptops-cache": "hit"})


Caller = Annotated[Principal, Depends(CALL)]


@router.post("/chat/completions", summary="OpenAI-compatible chat completions (JSON or SSE)")
async def chat_completions(request: Request, principal: Caller) -> Response:
    return await _serve(request, principal, "chat", "/chat/completions")


@router.post("/completions", summary="OpenAI-compatible (legacy) text completions")
async def completions(request: Request, principal: Caller) -> Response:
    return await _serve(request, principal, "completion", "/completions")


@router.post("/embeddings", summary="OpenAI-compatible embeddings")
async def embeddings(request: Request, principal: Caller) -> Response:
    return await _serve(request, principal, "embedding", "/embeddings")


@router.post("/messages", summary="Anthropic-compatible Messages API (JSON or SSE)")
async def messages(request: Request, principal: Caller) -> Response:
    return await _serve(request, principal, "messages", "/messages")


@router.get("/models", summary="Models this key's project can route to (OpenAI or Anthropic list shape)")
async def models(request: Request, principal: Caller) -> Response:
    found = await gateway_of(request).models(principal)
    if wire_of(request) == "anthropic":
        data: list[dict[str, Any]] = [
            {"type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"}
            for model, _ in found
        ]
        body: dict[str, Any] = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    else:
        body = {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": connection}
                for model, connection in found
            ],
        }
    return Response(orjson.dumps(body), media_type="application/json")


class PromptGroupOut(ApiOut):
    fingerprint: str = Field(description="Hash of the normalised system (or first) message text")
    runs: int
    cost_usd: float
    sample_text: str = Field(description="That text as last seen (first 500 characters)")
    sample_model: str = Field(description="<connection>/<model> of the last call")
    first_seen: datetime
    last_seen: datetime


class PromptGroupsOut(ApiOut):
    items: list[PromptGroupOut]


@prompts_router.get(
    "/prompts",
    response_model=PromptGroupsOut,
    summary="Unregistered prompts seen by the gateway, grouped by fingerprint (most calls first)",
)
async def gateway_prompts(
    request: Request,
    principal: Annotated[Principal, Depends(require(P.RUN_READ))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PromptGroupsOut:
    async with gateway_of(request).runtime.db.transaction() as session:
        groups = await runs_service.fingerprint_groups(session, principal, limit)
    items = [
        PromptGroupOut(
            fingerprint=group.fingerprint,
            runs=group.runs,
            cost_usd=group.cost_usd,
            sample_text=(template_text(group.sample_input) or "")[:SAMPLE_CHARS],
            sample_model=group.sample_model,
            first_seen=group.first_seen,
            last_seen=group.last_seen,
        )
        for group in groups
    ]
    return PromptGroupsOut(items=items)


class GatewayBodyLimit:
    """Answers an over-size ``/v1`` request (by its Content-Length) with a 413 in the caller's wire format,
    before the generic body limit of the API turns it into problem+json."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                    request = Request(scope)
                    error = GatewayError(
                        413,
                        f"Request body exceeds {self.limit} bytes",
                        "payload_too_large",
                        wire=wire_of(request),
                    )
                    await error_response(error)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


@asynccontextmanager
async def serving(runtime: Runtime, gateway: Gateway, *, migrate: bool) -> AsyncIterator[None]:
    """An app's lifespan: the runtime (:func:`promptops.lifecycle.running`), then the gateway's outbox."""
    async with running(runtime, migrate=migrate):
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()


def install_gateway(app: FastAPI, runtime: Runtime) -> Gateway:
    """Add the gateway's routes, error handler and state to ``app`` (start/stop it in the app's lifespan;
    add :class:`GatewayBodyLimit` as the outermost middleware)."""
    gateway = Gateway(runtime, app.state.metrics.registry)
    app.state.gateway = gateway
    app.include_router(router)
    app.include_router(prompts_router)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        return error_response(exc)

    return gateway
