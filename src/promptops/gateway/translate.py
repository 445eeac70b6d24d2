"""Serving a call through the provider layer (:class:`~promptops.providers.calls.ModelCaller`) when the
connection speaks another protocol than the caller (OpenAI client -> Anthropic, local or Hugging Face
connection; Anthropic client -> OpenAI-compatible or local connection), translating request and answer.

What survives the translation: messages (text content; tool calls and tool results), tools and tool_choice,
temperature, max_tokens, top_p, stop, seed; the answer's text, tool calls, finish reason and token usage.
What does not: ``n`` > 1, logprobs, response_format other than a JSON schema, images and other non-text parts.
The provider layer records the run (``collect_runs``); the gateway journals it like any other call.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from promptops.errors import ProblemError
from promptops.gateway.service import Call, Gateway
from promptops.gateway.wire import GatewayError
from promptops.providers.base import content_text
from promptops.providers.calls import CallContext, CallInput, CallOutcome, Target
from promptops.runs.recorder import collect_runs

TO_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _sse(data: Any, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


# --- requests ---------------------------------------------------------------------------------------------------


def _params(body: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in ("temperature", "top_p", "seed", "tool_choice"):
        if body.get(key) is not None:
            params[key] = body[key]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        params["max_tokens"] = limit
    stop = body.get("stop") if body.get("stop") is not None else body.get("stop_sequences")
    if stop is not None:
        params["stop"] = stop
    return params


def _anthropic_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Anthropic messages (content blocks, tool_use, tool_result) as OpenAI-style chat messages."""
    out: list[dict[str, Any]] = []
    if body.get("system"):
        out.append({"role": "system", "content": content_text(body["system"])})
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role", "user"), message.get("content")
        if not isinstance(content, list):
            out.append({"role": role, "content": content_text(content)})
            continue
        texts, calls = [], []
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                calls.append(
                    {
                        "id": block.get("id", ""),
                        "type": "function",
                        "function": {
                            "name": block.get("name", ""),
                            "arguments": orjson.dumps(block.get("input", {})).decode(),
                        },
                    }
                )
            elif block.get("type") == "tool_result":
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id", ""),
                        "content": content_text(block.get("content")),
                    }
                )
        if texts or calls:
            entry: dict[str, Any] = {"role": role, "content": "".join(texts)}
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
    return out


def _anthropic_tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": tool.get("name", ""),
                "description": tool.get("description", ""),
                "parameters": tool.get("input_schema") or {"type": "object"},
            },
        }
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
    ]
    choice = body.get("tool_choice")
    mapped: Any = None
    if isinstance(choice, dict):
        kind = choice.get("type")
        mapped = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if kind == "tool":
            mapped = {"type": "function", "function": {"name": choice.get("name", "")}}
    return tools or None, mapped


def call_input(call: Call) -> tuple[CallInput, dict[str, Any]]:
    body = call.body
    if call.wire == "anthropic":
        tools, choice = _anthropic_tools(body)
        params = _params({**body, "tool_choice": choice})
        return CallInput(messages=_anthropic_messages(body), tools=tools), params
    params = _params(body)
    if call.kind == "completion":
        prompt = body.get("prompt")
        text = "\n".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt or "")
        return CallInput(prompt=text), params
    response_format = body.get("response_format")
    schema = None
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    return CallInput(
        messages=list(body.get("messages") or []), tools=body.get("tools"), response_schema=schema
    ), params


def _context(call: Call) -> CallContext:
    return CallContext(
        principal=call.principal,
        source="gateway",
        prompt_id=call.attribution.prompt_id,
        version_id=call.attribution.version_id,
    )


def _error(outcome: CallOutcome, call: Call) -> GatewayError:
    assert outcome.error is not None
    return GatewayError.from_problem(outcome.error, call.wire)


# --- answers ----------------------------------------------------------------------------------------------------


def _usage_openai(outcome: CallOutcome) -> dict[str, int]:
    usage = outcome.usage
    i, o = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def openai_answer(call: Call, outcome: CallOutcome) -> dict[str, Any]:
    created = int(time.time())
    if call.kind == "completion":
        return {
            "id": "cmpl-" + call.run_id,
            "object": "text_completion",
            "created": created,
            "model": call.body.get("model"),
            "choices": [
                {
                    "text": outcome.text or "",
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": outcome.finish_reason or "stop",
                }
            ],
            "usage": _usage_openai(outcome),
        }
    message: dict[str, Any] = {"role": "assistant", "content": outcome.text or None}
    if outcome.tool_calls:
        message["tool_calls"] = outcome.tool_calls
    return {
        "id": "chatcmpl-" + call.run_id,
        "object": "chat.completion",
        "created": created,
        "model": call.body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": outcome.finish_reason or "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage_openai(outcome),
    }


def _anthropic_content(outcome: CallOutcome) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if outcome.text:
        content.append({"type": "text", "text": outcome.text})
    for tool_call in outcome.tool_calls or []:
        function = tool_call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {}
        content.append(
            {
                "type": "tool_use",
                "id": tool_call.get("id", ""),
                "name": function.get("name", ""),
                "input": arguments,
            }
        )
    return content


def anthropic_answer(call: Call, outcome: CallOutcome) -> dict[str, Any]:
    usage = outcome.usage
    return {
        "id": "msg_" + call.run_id,
        "type": "message",
        "role": "assistant",
        "model": call.body.get("model"),
        "content": _anthropic_content(outcome),
        "stop_reason": TO_ANTHROPIC_STOP.get(outcome.finish_reason or "stop", outcome.finish_reason),
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
        },
    }


# --- serving ----------------------------------------------------------------------------------------------------


def _journal(gw: Gateway, call: Call, runs: list[Any]) -> None:
    if runs:  # the final attempt carries the id the response announces (X-PromptOps-Run-Id)
        runs[-1].id = call.run_id
    for run in runs:
        gw.journal_run(run, call)


async def complete(gw: Gateway, call: Call) -> Response:
    inputs, params = call_input(call)
    target = Target(call.route.connection.name, call.route.model, params)
    with collect_runs() as runs:
        try:
            outcome = await gw.runtime.caller.call(_context(call), target, inputs, cache_ttl=call.cache_ttl)
        except ProblemError as exc:
            raise GatewayError.from_problem(exc, call.wire) from None
    _journal(gw, call, runs)
    if outcome.error is not None:
        raise _error(outcome, call)
    return _json(
        anthropic_answer(call, outcome) if call.wire == "anthropic" else openai_answer(call, outcome)
    )


async def embed(gw: Gateway, call: Call) -> Response:
    texts = call.body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise GatewayError(
            400, "'input' must be a string or a list of strings", "validation_error", param="input"
        )
    target = Target(call.route.connection.name, call.route.model)
    with collect_runs() as runs:
        try:
            outcome = await gw.runtime.caller.embed(_context(call), target, texts)
        except ProblemError as exc:
            raise GatewayError.from_problem(exc, call.wire) from None
    _journal(gw, call, runs)
    if outcome.error is not None:
        raise GatewayError.from_problem(outcome.error, call.wire)
    as_base64 = call.body.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if as_base64 else v,
        }
        for i, v in enumerate(outcome.vectors)
    ]
    tokens = outcome.usage.input_tokens if outcome.usage else 0
    return _json(
        {
            "object": "list",
            "data": data,
            "model": call.body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def stream(gw: Gateway, call: Call) -> Response:
    """SSE in the caller's format from the provider layer's text deltas. A failure before the first delta is
    an ordinary error response; after it, an in-band error event."""
    inputs, params = call_input(call)
    target = Target(call.route.connection.name, call.route.model, params)
    queue: asyncio.Queue[str | CallOutcome | BaseException] = asyncio.Queue()

    async def pump() -> None:
        # One task runs the whole call, so the run collector lives in one context from start to end.
        with collect_runs() as runs:
            try:
                async for item in gw.runtime.caller.stream(_context(call), target, inputs):
                    await queue.put(item)
            except BaseException as exc:  # surfaced to the consumer
                await queue.put(exc)
            finally:
                _journal(gw, call, runs)

    task = asyncio.get_running_loop().create_task(pump())
    first = await queue.get()
    if isinstance(first, ProblemError):
        raise GatewayError.from_problem(first, call.wire)
    if isinstance(first, BaseException):
        raise first
    if isinstance(first, CallOutcome) and first.error is not None:
        raise _error(first, call)
    items = _drain(queue, task, first, call)
    events = (
        _anthropic_events(call, first, items)
        if call.wire == "anthropic"
        else _openai_events(call, first, items)
    )
    return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})


async def _drain(
    queue: asyncio.Queue[str | CallOutcome | BaseException],
    task: asyncio.Task[None],
    first: str | CallOutcome,
    call: Call,
) -> AsyncIterator[str | CallOutcome]:
    """The items after ``first`` until the outcome; cancels the call when the client goes away."""
    try:
        if isinstance(first, CallOutcome):
            return
        while True:
            item = await queue.get()
            if isinstance(item, ProblemError):
                raise GatewayError.from_problem(item, call.wire)
            if isinstance(item, BaseException):
                raise item
            yield item
            if isinstance(item, CallOutcome):
                return
    finally:
        if not task.done():
            task.cancel()


async def _chain(
    first: str | CallOutcome, items: AsyncIterator[str | CallOutcome]
) -> AsyncIterator[str | CallOutcome]:
    yield first
    async for item in items:
        yield item


async def _openai_events(
    call: Call, first: str | CallOutcome, items: AsyncIterator[str | CallOutcome]
) -> AsyncIterator[bytes]:
    chat = call.kind != "completion"
    base = {
        "id": ("chatcmpl-" if chat else "cmpl-") + call.run_id,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": call.body.get("model"),
    }

    def chunk(delta: dict[str, Any] | str, finish: str | None = None) -> bytes:
        if chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**base, "choices": [choice]})

    if chat:
        yield chunk({"role": "assistant", "content": ""})
    try:
        async for item in _chain(first, items):
            if isinstance(item, str):
                yield chunk({"content": item} if chat else item)
                continue
            if item.error is not None:
                yield _sse(_error(item, call).body())
                break
            if chat and item.tool_calls:
                calls = [{"index": i, **c} for i, c in enumerate(item.tool_calls)]
                yield chunk({"tool_calls": calls})
            yield chunk({} if chat else "", item.finish_reason or "stop")
            options = call.body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                yield _sse({**base, "choices": [], "usage": _usage_openai(item)})
    except GatewayError as error:
        yield _sse(error.body())
    yield b"data: [DONE]\n\n"


async def _anthropic_events(
    call: Call, first: str | CallOutcome, items: AsyncIterator[str | CallOutcome]
) -> AsyncIterator[bytes]:
    message: dict[str, Any] = {
        "id": "msg_" + call.run_id,
        "type": "message",
        "role": "assistant",
        "model": call.body.get("model"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    yield _sse({"type": "message_start", "message": message}, "message_start")
    yield _sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        "content_block_start",
    )
    try:
        async for item in _chain(first, items):
            if isinstance(item, str):
                delta = {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": item},
                }
                yield _sse(delta, "content_block_delta")
                continue
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            if item.error is not None:
                yield _sse(_error(item, call).body(), "error")
                return
            for index, block in enumerate(_anthropic_content(item), start=1):
                if block["type"] != "tool_use":
                    continue
                start = {**block, "input": {}}
                yield _sse(
                    {"type": "content_block_start", "index": index, "content_block": start},
                    "content_block_start",
                )
                partial = {"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}
                yield _sse(
                    {"type": "content_block_delta", "index": index, "delta": partial}, "content_block_delta"
                )
                yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            answer = anthropic_answer(call, item)
            yield _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": answer["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": answer["usage"]["output_tokens"]},
                },
                "message_delta",
            )
            yield _sse({"type": "message_stop"}, "message_stop")
    except GatewayError as error:
        yield _sse(error.body(), "error")
