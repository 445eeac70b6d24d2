"""Anthropic Messages API via the official ``anthropic`` SDK.

Requests arrive in the OpenAI chat shape (the provider layer's lingua franca); this adapter moves system
messages into ``system=``, turns tool definitions, tool calls and tool results into Anthropic content blocks,
and reports tool calls back in the OpenAI shape so callers never see the difference. The SDK retries
429/5xx/529 and timeouts itself, honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic

from promptops.providers.base import (
    ConnectionConfig,
    ModelRequest,
    ModelResponse,
    ProviderError,
    StreamEvent,
    Upstream,
    Usage,
    cause_text,
    content_text,
    describe,
    error_for_status,
    looks_like_context_error,
    retry_after_seconds,
)

DEFAULT_MAX_TOKENS = 1024  # the Messages API has no default and rejects requests without max_tokens
# Anthropic-compatible proxies may not need a key; an explicit placeholder also stops the SDK from
# picking up credentials from the server's environment or profile files.
PLACEHOLDER_KEY = "not-needed"

# Anthropic stop reasons in the OpenAI vocabulary the rest of the platform uses.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Error ``type`` values, for errors that arrive inside a stream (HTTP status 200) rather than as a status.
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_DATA_URL = re.compile(r"^data:(?P<media>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


# --- request translation ----------------------------------------------------------------------------------


def _image_block(url: str) -> dict[str, Any]:
    match = _DATA_URL.match(url)
    if match:
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        # The API rejects empty text blocks, which OpenAI-style histories contain (tool-call turns).
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, str):
            if part:
                blocks.append({"type": "text", "text": part})
        elif not isinstance(part, Mapping):
            blocks.append({"type": "text", "text": str(part)})
        elif part.get("type") == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str):
                blocks.append(_image_block(url))
        else:
            # Already an Anthropic block (image, document, tool_result ...): pass it through.
            blocks.append(dict(part))
    return blocks


def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if isinstance(arguments, str) and arguments.strip():
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return {"input": arguments}
        return parsed if isinstance(parsed, dict) else {"input": parsed}
    return {}


def convert_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split OpenAI-style chat messages into Anthropic's ``system`` text and ``messages`` list.

    Tool results (role ``tool``) become ``tool_result`` blocks in a user turn and assistant ``tool_calls``
    become ``tool_use`` blocks. Consecutive turns of the same role are merged because the API wants
    user and assistant turns to alternate.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": list(blocks)})

    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = content_text(content)
            if text:
                system.append(text)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id", "")),
                "content": content_text(content),
            }
            add("user", [result])
        elif role == "assistant":
            blocks = _content_blocks(content)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": str(call.get("id", "")),
                        "name": str(function.get("name", "")),
                        "input": _tool_input(function.get("arguments")),
                    }
                )
            add("assistant", blocks)
        else:
            add("user", _content_blocks(content))
    return ("\n\n".join(system) or None), turns


def convert_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI function tools as Anthropic tools; tools already in Anthropic shape pass through."""
    converted: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function") if tool.get("type") == "function" else None
        if isinstance(function, Mapping):
            item: dict[str, Any] = {
                "name": function.get("name", ""),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if function.get("description"):
                item["description"] = function["description"]
            converted.append(item)
        else:
            converted.append(dict(tool))
    return converted


def convert_tool_choice(choice: Any) -> dict[str, Any] | None:
    """OpenAI ``tool_choice`` ("auto", "required", "none", or a named function) in Anthropic's shape."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"type": {"required": "any"}.get(choice, choice)}
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, Mapping):
            return {"type": "tool", "name": function.get("name", "")}
        return dict(choice)
    return None


@dataclass
class _ToolUse:
    id: str
    name: str
    input: dict[str, Any] | None = None  # set when the block started with a complete input
    partial_json: list[str] = field(default_factory=list)

    def as_openai(self) -> dict[str, Any]:
        arguments = "".join(self.partial_json) or json.dumps(self.input or {})
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


def _input_tokens(usage: Any) -> int:
    # Cached prompt tokens are reported apart from input_tokens; all of them were read by the model.
    total = 0
    for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        total += int(getattr(usage, name, None) or 0)
    return total


def _is_timeout(exc: BaseException) -> bool:
    # The SDK's HTTP library (httpx2) is not a direct dependency, so match its timeout family by name.
    return isinstance(exc, TimeoutError) or any(
        cls.__name__ == "TimeoutException" for cls in type(exc).__mro__
    )


class AnthropicProvider:
    """Adapter for Anthropic's Messages API."""

    def __init__(self, config: ConnectionConfig) -> None:
        self._config = config
        self._upstream = Upstream.of("Anthropic", config)
        api_key = config.api_key or PLACEHOLDER_KEY
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=config.base_url,
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
            # This SDK sends the key as "Authorization: Bearer"; gateways and Anthropic-compatible servers
            # (LiteLLM, Bedrock/Vertex proxies) still read the classic x-api-key header, so send both.
            default_headers={"x-api-key": api_key},
            # Redirects are not followed: the base URL passed the SSRF check, a redirect target did not.
            http_client=anthropic.DefaultAsyncHttpxClient(
                follow_redirects=False, timeout=config.timeout_seconds
            ),
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one non-streaming call and return the text, tool calls and reported usage."""
        try:
            message = await self._client.messages.create(**self._params(request), stream=False)
        except anthropic.AnthropicError as exc:
            raise self._map_error(exc) from None
        texts: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                tool_calls.append(_ToolUse(block.id, block.name, dict(block.input)).as_openai())
        usage = getattr(message, "usage", None)
        return ModelResponse(
            text="".join(texts),
            usage=(
                Usage(_input_tokens(usage), int(getattr(usage, "output_tokens", 0) or 0))
                if usage is not None
                else Usage(0, 0, reported=False)
            ),
            model=message.model or request.model,
            finish_reason=_finish_reason(message.stop_reason),
            tool_calls=tool_calls or None,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as they arrive, then one ``done`` event with usage, finish reason and tool calls."""
        try:
            upstream = await self._client.messages.create(**self._params(request), stream=True)
        except anthropic.AnthropicError as exc:
            raise self._map_error(exc) from None
        model = request.model
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        stopped = False
        tools: dict[int, _ToolUse] = {}
        try:
            async with upstream:
                async for event in upstream:
                    if event.type == "message_start":
                        model = event.message.model or model
                        usage = getattr(event.message, "usage", None)
                        if usage is not None:
                            input_tokens = _input_tokens(usage)
                            output_tokens = getattr(usage, "output_tokens", None)
                    elif event.type == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tools[event.index] = _ToolUse(block.id, block.name, dict(block.input or {}))
                    elif event.type == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield StreamEvent(delta=delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index].partial_json.append(delta.partial_json)
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        usage = getattr(event, "usage", None)
                        if usage is not None:
                            # Both counts are cumulative; input appears here only on newer API versions.
                            output_tokens = usage.output_tokens
                            if getattr(usage, "input_tokens", None) is not None:
                                input_tokens = _input_tokens(usage)
                    elif event.type == "message_stop":
                        stopped = True
        except Exception as exc:
            # Once the response has started, the SDK cannot retry; whatever broke, the answer is incomplete.
            raise self._stream_failure(exc) from None
        if not stopped:
            raise self._upstream.stream_unfinished("message_stop")
        usage_out = Usage(input_tokens, output_tokens or 0) if input_tokens is not None else None
        calls = [tools[index].as_openai() for index in sorted(tools)]
        yield StreamEvent(
            done=True,
            usage=usage_out,
            model=model,
            finish_reason=_finish_reason(stop_reason),
            tool_calls=calls or None,
        )

    async def aclose(self) -> None:
        """Close the SDK's HTTP connection pool."""
        await self._client.close()

    # --- requests -------------------------------------------------------------------------------------------

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        if request.messages is not None:
            system, messages = convert_messages(request.messages)
        else:
            system, messages = None, [{"role": "user", "content": request.prompt or ""}]
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
        }
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = request.stop
        if request.tools:
            params["tools"] = convert_tools(request.tools)
        choice = convert_tool_choice(request.tool_choice)
        if choice is not None:
            params["tool_choice"] = choice
        if request.response_schema is not None:
            params["output_config"] = {"format": {"type": "json_schema", "schema": request.response_schema}}
        # This SDK version no longer names temperature/top_p (newer models reject them), but the API still
        # takes them for the models that do; extra_body puts them in the JSON body as given. Anthropic has
        # no seed parameter, so a requested seed is dropped.
        body: dict[str, Any] = {}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        body.update(request.extra)
        if body:
            params["extra_body"] = body
        return params

    # --- errors ---------------------------------------------------------------------------------------------

    def _map_error(self, exc: anthropic.AnthropicError) -> ProviderError:
        """Translate an SDK exception into the provider layer's error for the same condition."""
        if isinstance(exc, anthropic.APIStatusError):
            return self._map_status(exc)
        if isinstance(exc, anthropic.APITimeoutError):
            return self._upstream.timed_out()
        if isinstance(exc, anthropic.APIConnectionError):
            return self._upstream.unreachable(cause_text(exc) or exc.message)
        return self._upstream.call_failed(exc)

    def _map_status(self, exc: anthropic.APIStatusError) -> ProviderError:
        error_type = exc.type if isinstance(exc.type, str) else None
        status = exc.status_code
        if status < 400:
            # An ``error`` event inside a 200 stream: its type says what the status would have been.
            status = _TYPE_STATUS.get(error_type or "", 500)
        upstream = exc.api_message or (exc.body if isinstance(exc.body, str) else None) or exc.message
        # 529 (overloaded) is an outage like any 5xx: a capacity problem upstream, worth retrying or
        # falling back.
        return error_for_status(
            status,
            self._upstream.safe(f"Anthropic answered HTTP {status} ({error_type or 'error'}): {upstream}"),
            context_overflow=status == 413 or (status in (400, 422) and looks_like_context_error(upstream)),
            # The SDK has honoured Retry-After between its own attempts; only a rate limit passes it on.
            retry_after=retry_after_seconds(exc.response.headers) if status == 429 else None,
        )

    def _stream_failure(self, exc: Exception) -> ProviderError:
        if isinstance(exc, anthropic.APIStatusError):
            return self._map_status(exc)
        if isinstance(exc, anthropic.APITimeoutError) or _is_timeout(exc):
            return self._upstream.stream_stalled()
        # A ValueError is undecodable JSON or an event that fails validation.
        return self._upstream.stream_broken("invalid event" if isinstance(exc, ValueError) else describe(exc))


def _finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)
