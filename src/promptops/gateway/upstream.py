"""Pass-through to an upstream of the caller's own wire format (OpenAI -> ``openai`` connection, Anthropic ->
``anthropic`` connection): the request body goes out as sent (with the connection's model name and key), and
the answer's bytes come back untouched (JSON, or SSE chunk by chunk), so every wire field survives.

The provider layer's protections apply: the SSRF guard, the connection's concurrency limit and timeout, and
retries (the connection's ``maxRetries``) of connection failures, 429 and 5xx before any byte went back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response as HttpResponse
from starlette.responses import StreamingResponse

from promptops.errors import ProblemError
from promptops.gateway.http import Response, UpstreamError
from promptops.gateway.service import Call, Gateway
from promptops.gateway.streams import Reading, SseReader, UsageFilter, read_anthropic, read_openai
from promptops.gateway.wire import GatewayError
from promptops.providers.base import retry_after_seconds

OPENAI_BASE = "https://api.openai.com/v1"
ANTHROPIC_BASE = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
MAX_RETRY_WAIT = 2.0
# Client headers passed on to the upstream (everything else, above all the PromptOps key, stays here).
ANTHROPIC_FORWARD = ("anthropic-version", "anthropic-beta")
RESPONSE_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "request-id", "openai-processing-ms")


def _base_and_headers(call: Call, client_headers: Any) -> tuple[str, dict[str, str]]:
    """The upstream's base URL (paths are appended) and the headers the call goes out with."""
    config = call.route.connection.config
    key = config.api_key or "not-needed"
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    if call.wire == "anthropic":
        base = (config.base_url or ANTHROPIC_BASE).rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
        headers["x-api-key"] = key
        for name in ANTHROPIC_FORWARD:
            if value := client_headers.get(name):
                headers[name] = value
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    else:
        base = (config.base_url or OPENAI_BASE).rstrip("/")
        headers["authorization"] = f"Bearer {key}"
    return base, headers


def _read(call: Call, data: Any) -> Reading:
    if not isinstance(data, dict):
        return Reading(done=True)
    return read_anthropic(data) if call.wire == "anthropic" else read_openai(data)


def _upstream_message(data: bytes) -> str:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data[:500].decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))[:2000]
    return str(error or body)[:2000]


def record_input(call: Call) -> dict[str, Any]:
    """What a run records as the call's input: chat messages (with Anthropic's system prompt first), or text."""
    body = call.body
    if call.kind == "embedding":
        texts = body.get("input")
        return {"texts": [str(t) for t in texts] if isinstance(texts, list) else [str(texts)]}
    if call.kind == "completion":
        prompt = body.get("prompt")
        return {"prompt": "\n".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)}
    messages = list(body.get("messages") or [])
    if call.wire == "anthropic" and body.get("system"):
        messages.insert(0, {"role": "system", "content": body["system"]})
    return {"messages": messages}


def adds_usage(call: Call) -> bool:
    """Whether an OpenAI-wire stream is sent upstream with ``stream_options.include_usage`` the client did
    not ask for (then taken out again by :class:`~.streams.UsageFilter`), so its run records the upstream's
    token counts rather than estimates. A connection whose server refuses the field opts out with
    ``options.stream_usage = false`` (as the provider layer does)."""
    if (
        call.wire != "openai"
        or call.kind not in ("chat", "completion")
        or call.body.get("stream") is not True
    ):
        return False
    if call.route.connection.config.options.get("stream_usage", True) is False:
        return False
    options = call.body.get("stream_options")
    return options is None or (isinstance(options, dict) and options.get("include_usage") is not True)


async def _send(gw: Gateway, call: Call, path: str, client_headers: Any, add_usage: bool = False) -> Response:
    connection = call.route.connection
    try:
        await gw.guard(connection)
    except ProblemError as exc:
        raise GatewayError.from_problem(exc, call.wire) from None
    base, headers = _base_and_headers(call, client_headers)
    body = {**call.body, "model": call.route.model}
    if add_usage:
        body["stream_options"] = {**(call.body.get("stream_options") or {}), "include_usage": True}
    content = orjson.dumps(body)
    pool = gw.pool(connection, base)
    attempts = max(0, connection.config.max_retries) + 1
    for attempt in range(1, attempts + 1):
        try:
            response = await pool.post(path, headers, content)
        except TimeoutError:
            if attempt == attempts:
                raise GatewayError(
                    504, "The model provider did not answer in time", "provider_timeout", wire=call.wire
                ) from None
            await asyncio.sleep(0.1 * attempt)
            continue
        except UpstreamError as exc:
            if attempt == attempts:
                raise GatewayError(
                    502,
                    f"The model provider could not be reached ({exc})",
                    "provider_unavailable",
                    wire=call.wire,
                ) from None
            await asyncio.sleep(0.1 * attempt)
            continue
        if response.status_code in RETRY_STATUSES and attempt < attempts:
            wait = retry_after_seconds(response.headers)
            await response.aread()
            await response.aclose()
            await asyncio.sleep(min(MAX_RETRY_WAIT, wait if wait is not None else 0.2 * attempt))
            continue
        return response
    raise AssertionError("unreachable")


def _forwarded_headers(response: Response) -> dict[str, str]:
    return {name: response.headers[name] for name in RESPONSE_HEADERS if name in response.headers}


async def forward(gw: Gateway, call: Call, path: str, client_headers: Any) -> HttpResponse:
    """Serve ``call`` from an upstream of its own wire format. The connection's concurrency permit is held
    until the answer is read (JSON) or the stream has ended (SSE: released by the relay)."""
    stream = bool(call.body.get("stream"))
    add_usage = adds_usage(call)
    semaphore = gw.runtime.caller.pool.semaphore(call.route.connection)
    await semaphore.acquire()
    relaying = False
    try:
        refused: bytes | None = None
        try:
            response = await _send(gw, call, path, client_headers, add_usage)
            if add_usage and response.status_code == 400:
                refused = await response.aread()
                await response.aclose()
                if b"stream_options" in refused or b"include_usage" in refused:
                    # a server that does not know the field: send the call as the client did
                    add_usage, refused = False, None
                    response = await _send(gw, call, path, client_headers)
        except GatewayError as error:
            await _finish_error(gw, call, error)
            raise
        if refused is not None:
            return await _answer(gw, call, response, refused)
        if response.status_code >= 400 or not stream:
            data = await response.aread()
            await response.aclose()
            return await _answer(gw, call, response, data)
        relaying = True
        # Start the relay now: a started generator is finalised (permit released, run recorded) even if the
        # client disconnects before the response body is sent, which a never-started one would not be.
        relay = _relay(gw, call, response, semaphore, UsageFilter() if add_usage else None)
        first = await anext(relay, b"")
        return StreamingResponse(
            _prepend(first, relay),
            status_code=200,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", **_forwarded_headers(response)},
        )
    finally:
        if not relaying:
            semaphore.release()


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _finish_error(gw: Gateway, call: Call, error: GatewayError, output: str | None = None) -> None:
    await gw.finish(
        call,
        input_=record_input(call),
        output=output,
        usage=None,
        latency_ms=(time.perf_counter() - call.started) * 1000,
        error=error,
    )


async def _answer(gw: Gateway, call: Call, response: Response, data: bytes) -> HttpResponse:
    status = response.status_code
    if status >= 400:
        message = _upstream_message(data)
        if status in (401, 403):  # the connection's key was refused: not the caller's PromptOps key
            error = GatewayError(
                502,
                f"The model provider refused the connection's credentials: {message}",
                "provider_auth_failed",
                wire=call.wire,
            )
            await _finish_error(gw, call, error)
            raise error
        await _finish_error(gw, call, GatewayError(status, message, f"upstream_{status}", wire=call.wire))
        return HttpResponse(
            data, status_code=status, media_type="application/json", headers=_forwarded_headers(response)
        )
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    reading = _read(call, parsed)
    await gw.finish(
        call,
        input_=record_input(call),
        output=reading.output if call.kind != "embedding" else None,
        usage=reading.usage,
        latency_ms=(time.perf_counter() - call.started) * 1000,
        tool_calls=reading.calls(),
        finish_reason=reading.finish_reason,
    )
    if call.cache_ttl and isinstance(parsed, dict):
        await gw.store_cached(call.principal, gw.cache_key(call, "", call.body), parsed, call.cache_ttl)
    return HttpResponse(
        data, status_code=200, media_type="application/json", headers=_forwarded_headers(response)
    )


async def _relay(
    gw: Gateway,
    call: Call,
    response: Response,
    semaphore: asyncio.Semaphore,
    usage_filter: UsageFilter | None = None,
) -> AsyncIterator[bytes]:
    """The upstream's bytes as they arrive (without what :func:`adds_usage` asked for), read on the side."""
    reader = SseReader(call.wire, call.started)
    failure: str | None = None
    try:
        async for chunk in response.aiter_raw():
            reader.feed(chunk)
            if usage_filter is None:
                yield chunk
            elif passed := usage_filter.feed(chunk):
                yield passed
        if usage_filter is not None and (rest := usage_filter.flush()):
            yield rest
    except (UpstreamError, TimeoutError, OSError) as exc:
        failure = f"The stream from the model provider ended unexpectedly ({type(exc).__name__})"
    except BaseException:  # the client went away (cancelled): still record what was streamed
        failure = "The client closed the stream before it ended"
        raise
    finally:
        await response.aclose()
        semaphore.release()
        reading = reader.reading
        error = None
        message = failure or reading.error or (None if reading.done else "The stream ended before its end")
        if message is not None:
            error = GatewayError(502, message, "stream_incomplete", wire=call.wire)
        await gw.finish(
            call,
            input_=record_input(call),
            output=reading.output,
            usage=reading.usage,
            latency_ms=(time.perf_counter() - call.started) * 1000,
            ttft_ms=reading.ttft_ms,
            tool_calls=reading.calls(),
            finish_reason=reading.finish_reason,
            error=error,
        )
