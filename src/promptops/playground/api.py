"""``POST /api/v1/playground/run``: JSON answer, or Server-Sent Events when ``stream`` is true."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.context import current_request_id
from promptops.errors import ProblemError
from promptops.governance.rbac import Permission as P
from promptops.playground import service
from promptops.providers.calls import CallOutcome
from promptops.providers.schemas import CallResultOut, PlaygroundIn, PlaygroundOut, UsageOut
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/playground", tags=["playground"])


LIMIT_REASONS = frozenset({"length", "max_tokens"})


def truncation_notice(finish_reason: str | None, params: dict[str, Any]) -> str | None:
    """A sentence when the answer was cut by the output limit rather than ended by the model."""
    if finish_reason not in LIMIT_REASONS:
        return None
    limit = params.get("max_tokens")
    at = f"max_tokens={limit}" if limit is not None else "the output limit"
    return f"The answer was cut at {at}; raise params.max_tokens for a longer answer."


def result_out(index: int, outcome: CallOutcome) -> CallResultOut:
    usage = outcome.usage
    params = dict(outcome.run.params or {})
    notice = truncation_notice(outcome.finish_reason, params) if outcome.ok else None
    return CallResultOut(
        params=params,
        truncated=notice is not None,
        notice=notice,
        index=index,
        provider=outcome.target.provider,
        model=outcome.target.model,
        status="ok" if outcome.ok else "error",
        text=outcome.text,
        tool_calls=outcome.tool_calls,
        finish_reason=outcome.finish_reason,
        usage=UsageOut(
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, estimated=not usage.reported
        )
        if usage
        else None,
        cost_usd=outcome.cost_usd,
        latency_ms=round(outcome.latency_ms, 3),
        ttft_ms=round(outcome.ttft_ms, 3) if outcome.ttft_ms is not None else None,
        cached=outcome.cached,
        run_id=outcome.run.id,
        fallback_from=outcome.fallback_from,
        error=outcome.error.to_problem() if outcome.error else None,
    )


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.post(
    "/run",
    response_model=PlaygroundOut,
    summary="Render and call one or several models side by side (SSE when stream=true)",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run(
    body: PlaygroundIn, request: Request, principal: Annotated[Principal, Depends(require(P.PLAYGROUND_RUN))]
) -> Any:
    runtime = runtime_of(request)
    if body.stream:
        prepared = await service.prepare(runtime, principal, body)
        return StreamingResponse(
            _events(request, prepared, service.stream(runtime, principal, prepared, body)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    played = await service.run(runtime, principal, body)
    prepared, outcomes = played.prepared, played.outcomes
    results = [result_out(i, o) for i, o in enumerate(outcomes)]
    if len(outcomes) == 1 and outcomes[0].error is not None:
        error = outcomes[0].error
        problem = {
            **error.to_problem(request.url.path),
            "runId": outcomes[0].run.id,
            "requestId": current_request_id(),
        }
        return JSONResponse(problem, status_code=error.status, media_type="application/problem+json")
    return PlaygroundOut(
        kind=prepared.kind,
        rendered=prepared.rendered,
        prompt_id=prepared.prompt_id,
        version_id=prepared.version_id,
        results=results,
    )


async def _events(
    request: Request, prepared: service.Prepared, items: AsyncIterator[tuple[int, str | CallOutcome]]
) -> AsyncIterator[bytes]:
    """The SSE stream: ``start`` (what was rendered, which models), ``delta``s, one ``result`` per model,
    ``error`` in-band when a call fails after the headers went out, ``end``."""
    yield _sse(
        "start",
        {
            "kind": prepared.kind,
            "rendered": prepared.rendered,
            "promptId": prepared.prompt_id,
            "versionId": prepared.version_id,
            "requestId": current_request_id(),
            "models": [
                {"index": i, "provider": t.provider, "model": t.model} for i, t in enumerate(prepared.targets)
            ],
        },
    )
    try:
        async for index, item in items:
            if isinstance(item, CallOutcome):
                yield _sse("result", result_out(index, item).model_dump(mode="json", by_alias=True))
            else:
                yield _sse("delta", {"index": index, "text": item})
    except ProblemError as error:
        # Headers are gone already: report the failure in-band, then end the stream properly.
        yield _sse("error", {**error.to_problem(request.url.path), "requestId": current_request_id()})
    yield _sse("end", {})
