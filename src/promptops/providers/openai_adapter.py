"""OpenAI wire protocol: api.openai.com, Azure OpenAI and every OpenAI-compatible server.

vLLM, TGI's ``/v1`` route, Ollama, llama.cpp's server and OpenRouter all speak this protocol, so one adapter
built on the official SDK covers them. The SDK retries 429/5xx/timeouts itself (honouring ``Retry-After``);
this module only translates requests, responses and the SDK's exceptions into the provider layer's terms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
import openai
import orjson

from promptops.providers.base import (
    ConnectionConfig,
    EmbeddingResponse,
    ModelRequest,
    ModelResponse,
    ProviderBadRequest,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    Upstream,
    Usage,
    cause_text,
    describe,
    error_for_status,
    looks_like_context_error,
    retry_after_seconds,
)

# Local servers (vLLM, llama.cpp, Ollama) accept any key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
# Used when an Azure connection names no API version; a GA version every Azure resource serves.
DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass
class _ToolCallBuilder:
    """One tool call assembled from stream deltas (id and name arrive first, arguments in pieces)."""

    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": "".join(self.arguments)},
        }


@dataclass
class _StreamState:
    model: str
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: dict[int, _ToolCallBuilder] = field(default_factory=dict)

    def final_tool_calls(self) -> list[dict[str, Any]] | None:
        if not self.tool_calls:
            return None
        return [self.tool_calls[index].as_dict() for index in sorted(self.tool_calls)]


class OpenAIProvider:
    """Adapter for the OpenAI chat/completions protocol via the official ``openai`` SDK."""

    def __init__(self, config: ConnectionConfig) -> None:
        self._config = config
        self._upstream = Upstream.of(
            "Azure OpenAI" if config.type == "azure_openai" else "the OpenAI-compatible endpoint", config
        )
        api_key = config.api_key or PLACEHOLDER_KEY
        # Redirects are not followed: the base URL passed the SSRF check, a redirect target did not.
        # The SDK's aiohttp transport (openai[aiohttp]) costs about half the CPU per call of its default one,
        # which matters when an evaluation makes hundreds of calls a second (bench/eval.py).
        http_client = openai.DefaultAioHttpClient(follow_redirects=False, timeout=config.timeout_seconds)
        self._client: openai.AsyncOpenAI
        if config.type == "azure_openai":
            if not config.base_url:
                raise ProviderBadRequest("An Azure OpenAI connection needs base_url (the resource endpoint)")
            self._client = openai.AsyncAzureOpenAI(
                azure_endpoint=config.base_url,
                api_version=config.api_version or DEFAULT_AZURE_API_VERSION,
                api_key=api_key,
                timeout=config.timeout_seconds,
                max_retries=config.max_retries,
                http_client=http_client,
            )
        else:
            self._client = openai.AsyncOpenAI(
                api_key=api_key,
                base_url=config.base_url,
                timeout=config.timeout_seconds,
                max_retries=config.max_retries,
                http_client=http_client,
            )

    @property
    def _legacy_completions(self) -> bool:
        return self._config.options.get("api") == "completions"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one non-streaming call and return the text, tool calls and reported usage."""
        try:
            if not request.is_chat and self._legacy_completions:
                legacy = await self._client.completions.create(**self._legacy_params(request), stream=False)
                choice = legacy.choices[0] if legacy.choices else None
                return ModelResponse(
                    text=choice.text if choice else "",
                    usage=self._usage(legacy.usage),
                    model=legacy.model or request.model,
                    finish_reason=choice.finish_reason if choice else None,
                )
            # The body is posted as built and the answer read as plain JSON: on a fast upstream the SDK's typed
            # request transform and response models cost more CPU than the HTTP exchange (bench/eval.py). The
            # SDK still does the auth, Azure deployment routing, retries and error statuses.
            raw = await self._client.post(
                "/chat/completions", body=self._chat_body(request), cast_to=httpx2.Response
            )
        except openai.OpenAIError as exc:
            raise self._map_error(exc) from None
        chat = self._json_answer(raw)
        choices = chat.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderUnavailable(f"{self._upstream.title} returned no choices")
        first: dict[str, Any] = choices[0]
        message = first.get("message")
        message = message if isinstance(message, dict) else {}
        calls = message.get("tool_calls")
        tool_calls = (
            [_without_none(c) for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        )
        usage = chat.get("usage")
        return ModelResponse(
            text=_text(message, "content") or "",
            usage=self._usage_of(usage if isinstance(usage, dict) else None),
            model=_text(chat, "model") or request.model,
            finish_reason=_text(first, "finish_reason"),
            tool_calls=tool_calls or None,
        )

    def _json_answer(self, raw: httpx2.Response) -> dict[str, Any]:
        try:
            body = orjson.loads(raw.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise ProviderUnavailable(
                f"{self._upstream.title} answered with something that is not a JSON object"
            )
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as they arrive, then one ``done`` event with usage, finish reason and tool calls."""
        legacy = not request.is_chat and self._legacy_completions
        state = _StreamState(model=request.model)
        # Without include_usage most servers stream no token counts at all. The few that reject the field
        # (old Azure API versions) can be served with options.stream_usage = false.
        usage_option: dict[str, Any] = {}
        if self._config.options.get("stream_usage", True) is not False:
            usage_option["stream_options"] = {"include_usage": True}
        try:
            if legacy:
                upstream: Any = await self._client.completions.create(
                    **self._legacy_params(request), **usage_option, stream=True
                )
            else:
                upstream = await self._client.chat.completions.create(
                    **self._chat_params(request), **usage_option, stream=True
                )
        except openai.OpenAIError as exc:
            raise self._map_error(exc) from None
        try:
            async with upstream:
                async for chunk in upstream:
                    delta = self._absorb(state, chunk, legacy)
                    if delta:
                        yield StreamEvent(delta=delta)
        except Exception as exc:
            # Once the response has started, the SDK cannot retry; whatever broke, the answer is incomplete.
            raise self._stream_failure(exc) from None
        if state.finish_reason is None:
            # Every OpenAI-style stream ends its last choice with a finish reason; without one the
            # connection was closed early (e.g. a proxy cut it) even though no error was raised.
            raise self._upstream.stream_unfinished("the model finished")
        yield StreamEvent(
            done=True,
            usage=state.usage,
            model=state.model,
            finish_reason=state.finish_reason,
            tool_calls=state.final_tool_calls(),
        )

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResponse:
        """One vector per text from ``/embeddings``, in input order, with the reported token count."""
        try:
            # Floats rather than the SDK's default base64: not every OpenAI-compatible server does base64.
            result = await self._client.embeddings.create(model=model, input=texts, encoding_format="float")
        except openai.OpenAIError as exc:
            raise self._map_error(exc) from None
        items = sorted(result.data, key=lambda item: item.index)
        usage = (
            Usage(int(result.usage.prompt_tokens or 0), 0)
            if getattr(result, "usage", None) is not None
            else Usage(0, 0, reported=False)
        )
        return EmbeddingResponse(
            vectors=[list(item.embedding) for item in items], usage=usage, model=result.model or model
        )

    async def aclose(self) -> None:
        """Close the SDK's HTTP connection pool."""
        await self._client.close()

    # --- requests -------------------------------------------------------------------------------------------

    def _common_params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model}
        optional = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "top_p": request.top_p,
            "stop": request.stop,
            "seed": request.seed,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        if request.extra:
            # extra_body reaches the JSON body unvalidated, so server-specific knobs (top_k, min_p,
            # guided_json ...) work without the SDK knowing them.
            params["extra_body"] = dict(request.extra)
        return params

    def _chat_params(self, request: ModelRequest) -> dict[str, Any]:
        params = self._common_params(request)
        if request.messages is not None:
            params["messages"] = request.messages
        else:
            params["messages"] = [{"role": "user", "content": request.prompt or ""}]
        if request.tools:
            params["tools"] = request.tools
        if request.tool_choice is not None:
            params["tool_choice"] = request.tool_choice
        if request.response_schema is not None:
            params["response_format"] = _response_format(request.response_schema)
        return params

    def _chat_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body of a chat completion (``extra_body`` merged in, as the SDK would)."""
        params = self._chat_params(request)
        extra = params.pop("extra_body", None) or {}
        return {**params, **extra, "stream": False}

    def _legacy_params(self, request: ModelRequest) -> dict[str, Any]:
        if request.tools:
            raise ProviderBadRequest(
                "Tools need the chat API; this connection uses the legacy completions API"
            )
        params = self._common_params(request)
        params["prompt"] = request.prompt or ""
        if request.response_schema is not None:
            # Not part of OpenAI's legacy API, but vLLM and llama.cpp honour it on /v1/completions.
            extra = dict(params.get("extra_body") or {})
            extra.setdefault("response_format", _response_format(request.response_schema))
            params["extra_body"] = extra
        return params

    # --- responses ------------------------------------------------------------------------------------------

    @staticmethod
    def _usage_of(usage: dict[str, Any] | None) -> Usage:
        if usage is None:
            return Usage(0, 0, reported=False)
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))

    @staticmethod
    def _usage(usage: Any) -> Usage:
        if usage is None:
            return Usage(0, 0, reported=False)
        return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))

    def _absorb(self, state: _StreamState, chunk: Any, legacy: bool) -> str:
        """Fold one chunk into ``state``; return its text delta."""
        if getattr(chunk, "model", None):
            state.model = chunk.model
        if getattr(chunk, "usage", None) is not None:
            state.usage = self._usage(chunk.usage)
        text: list[str] = []
        for choice in chunk.choices or []:
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason
            if legacy:
                text.append(choice.text or "")
                continue
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                text.append(delta.content)
            for piece in delta.tool_calls or []:
                builder = state.tool_calls.setdefault(piece.index, _ToolCallBuilder())
                if piece.id:
                    builder.id = piece.id
                if piece.type:
                    builder.type = piece.type
                if piece.function is not None:
                    # The name comes whole in the first delta; some servers repeat it in later ones.
                    if piece.function.name and not builder.name:
                        builder.name = piece.function.name
                    if piece.function.arguments:
                        builder.arguments.append(piece.function.arguments)
        return "".join(text)

    # --- errors ---------------------------------------------------------------------------------------------

    def _map_error(self, exc: openai.OpenAIError) -> ProviderError:
        """Translate an SDK exception into the provider layer's error for the same condition."""
        upstream = self._upstream
        if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
            return upstream.timed_out()
        if isinstance(exc, openai.APIConnectionError):
            return upstream.unreachable(cause_text(exc) or exc.message)
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc)
        if isinstance(exc, openai.APIError):
            return ProviderUnavailable(upstream.safe(f"{upstream.title} reported an error: {exc.message}"))
        return upstream.call_failed(exc)

    def _map_status(self, exc: openai.APIStatusError) -> ProviderError:
        status = exc.status_code
        upstream = _upstream_message(exc.body) or exc.message
        return error_for_status(
            status,
            self._upstream.safe(f"{self._upstream.title} answered HTTP {status}: {upstream}"),
            context_overflow=exc.code == "context_length_exceeded"
            or (status in (400, 413, 422) and looks_like_context_error(upstream)),
            # The SDK has honoured Retry-After between its own attempts; only a rate limit passes it on.
            retry_after=retry_after_seconds(exc.response.headers) if status == 429 else None,
        )

    def _stream_failure(self, exc: Exception) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return self._upstream.stream_stalled()
        if isinstance(exc, openai.APIStatusError):
            return self._map_status(exc)
        if isinstance(exc, openai.APIConnectionError):
            reason = cause_text(exc) or "connection lost"
        elif isinstance(exc, openai.APIError):
            reason = f"upstream error: {exc.message}"
        elif isinstance(exc, ValueError):  # undecodable JSON or a chunk that fails validation
            reason = "invalid chunk"
        else:
            reason = describe(exc)
        return self._upstream.stream_broken(reason)


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    # strict=False: strict mode rejects schemas without additionalProperties=false on every object,
    # which most hand-written schemas lack.
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": False}}


def _refused(exc: BaseException) -> bool:
    """Whether the connection could not be made at all (refused, no route, unknown host). The aiohttp
    transport reports those as connect *timeouts*; the original aiohttp error is in the exception chain."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectorError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _without_none(value: Any) -> Any:
    """``value`` with every ``None`` member of its objects left out (as the SDK's ``exclude_none`` dump)."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value


def _upstream_message(body: object) -> str | None:
    """The human-readable message inside an error body (OpenAI's ``error.message`` or a bare string)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            if isinstance(message, str) and message:
                return message
        elif isinstance(inner, str) and inner:
            return inner
        return None
    if isinstance(body, str) and body.strip():
        return body
    return None
