"""Hugging Face Inference Endpoints and Text Generation Inference (TGI), native ``/generate`` API.

TGI's native API has no chat format and no SDK that handles failures for us, so this adapter renders chat
messages into a prompt, retries rate limits and outages itself (tenacity), and reads usage from TGI's
``details``. Connections with ``options.api == "openai"`` send chat requests to TGI's OpenAI-compatible
``/v1`` route through the OpenAI adapter instead, which also gives them tools.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from promptops.providers.base import (
    MAX_DETAIL_CHARS,
    ConnectionConfig,
    ContextTooLong,
    ModelRequest,
    ModelResponse,
    ProviderBadRequest,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    Upstream,
    Usage,
    content_text,
    describe,
    error_for_status,
    looks_like_context_error,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from promptops.providers.openai_adapter import OpenAIProvider

# A server asking for a longer pause than this is better reported (with retryAfter) than waited out.
MAX_RETRY_AFTER_SECONDS = 60.0

FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def render_chat(messages: list[dict[str, Any]]) -> str:
    """Chat messages as one plain prompt: ``role: content`` lines, ending with ``assistant:``.

    Deliberately model-agnostic: the model's own chat template is only known to the server, and connections
    that need it should use ``options.api = "openai"`` (TGI applies the template on its ``/v1`` route).
    """
    lines = [f"{message.get('role', 'user')}: {content_text(message.get('content'))}" for message in messages]
    lines.append("assistant:")
    return "\n".join(lines)


def _retry_after_of(exc: BaseException) -> float | None:
    if isinstance(exc, ProviderError):
        value = exc.extra.get("retryAfter")
        if isinstance(value, int | float):
            return float(value)
    return None


def _should_retry(exc: BaseException) -> bool:
    if not (isinstance(exc, ProviderError) and exc.retryable):
        return False
    retry_after = _retry_after_of(exc)
    return retry_after is None or retry_after <= MAX_RETRY_AFTER_SECONDS


_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    """Wait what the server asked for (Retry-After), else back off exponentially with jitter."""
    exc = state.outcome.exception() if state.outcome is not None else None
    retry_after = _retry_after_of(exc) if exc is not None else None
    if retry_after is not None:
        return retry_after
    return float(_backoff(state))


def _header_int(headers: Mapping[str, str] | None, name: str) -> int | None:
    value = headers.get(name) if headers is not None else None
    return int(value) if value is not None and value.strip().isdigit() else None


def _usage(details: Any, headers: Mapping[str, str] | None = None) -> Usage:
    """Token counts from TGI; ``reported=False`` unless both the input and the output count are known.

    Input: ``details.input_length`` (stream), the ``x-prompt-tokens`` header (/generate) or the ``prefill``
    token list (when the caller asked for ``decoder_input_details``). Output: ``details.generated_tokens`` or
    the ``x-generated-tokens`` header. The serverless API reports none of them.
    """
    info: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    output = info.get("generated_tokens")
    if not isinstance(output, int):
        output = _header_int(headers, "x-generated-tokens")
    prompt = info.get("input_length")
    if not isinstance(prompt, int):
        prompt = _header_int(headers, "x-prompt-tokens")
    prefill = info.get("prefill")
    if prompt is None and isinstance(prefill, list) and prefill:
        prompt = len(prefill)
    if isinstance(output, int) and isinstance(prompt, int):
        return Usage(prompt, output)
    return Usage(prompt or 0, output if isinstance(output, int) else 0, reported=False)


def _finish_reason(details: Any) -> str | None:
    if not isinstance(details, Mapping) or not isinstance(details.get("finish_reason"), str):
        return None
    reason: str = details["finish_reason"]
    return FINISH_REASONS.get(reason, reason)


class HuggingFaceProvider:
    """Adapter for TGI / Hugging Face Inference Endpoints (``/generate`` and ``/generate_stream``)."""

    def __init__(self, config: ConnectionConfig) -> None:
        if not config.base_url:
            raise ProviderBadRequest("A Hugging Face connection needs base_url (the endpoint URL)")
        self._config = config
        self._upstream = Upstream.of("the Hugging Face endpoint", config)
        self._base_url = config.base_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        # Redirects are not followed: the base URL passed the SSRF check, a redirect target did not.
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(config.timeout_seconds), follow_redirects=False
        )
        self._openai: OpenAIProvider | None = None
        if config.options.get("api") == "openai":
            from promptops.providers.openai_adapter import OpenAIProvider

            self._openai = OpenAIProvider(replace(config, type="openai", base_url=f"{self._base_url}/v1"))

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one ``/generate`` call (retrying rate limits and outages) and return text and usage."""
        if self._openai is not None and request.is_chat:
            return await self._openai.complete(request)
        payload = self._payload(request)
        async for attempt in self._retrying():
            with attempt:
                response = await self._send("/generate", payload, stream=False)
                data = self._json(response)
        item = data[0] if isinstance(data, list) and data else data
        if not isinstance(item, Mapping) or not isinstance(item.get("generated_text"), str):
            raise ProviderError(
                "The Hugging Face endpoint answered in an unexpected shape (no generated_text)"
            )
        details = item.get("details")
        return ModelResponse(
            text=item["generated_text"],
            usage=_usage(details, response.headers),
            model=request.model,  # TGI serves one model and does not name it in its answers
            finish_reason=_finish_reason(details),
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield token texts from ``/generate_stream``, then one ``done`` event with usage and finish reason."""
        if self._openai is not None and request.is_chat:
            async for delegated in self._openai.stream(request):
                yield delegated
            return
        payload = self._payload(request)
        # Only opening the stream is retried: once tokens went out, a retry would repeat them.
        async for attempt in self._retrying():
            with attempt:
                response = await self._send("/generate_stream", payload, stream=True)
        details: Any = None
        finished = False
        try:
            async for line in response.aiter_lines():
                chunk = self._parse_line(line)
                if chunk is None:
                    continue
                if "error" in chunk:
                    raise self._error_event(chunk)
                token = chunk.get("token")
                if isinstance(token, Mapping) and not token.get("special") and token.get("text"):
                    yield StreamEvent(delta=str(token["text"]))
                if chunk.get("details") is not None or chunk.get("generated_text") is not None:
                    details = chunk.get("details")
                    finished = True
        except ProviderError:
            raise
        except httpx.TimeoutException:
            raise self._upstream.stream_stalled() from None
        except Exception as exc:
            # ValueError is an undecodable event; anything else is the connection breaking.
            reason = "invalid event" if isinstance(exc, ValueError) else describe(exc)
            raise self._upstream.stream_broken(reason) from None
        finally:
            await response.aclose()
        if not finished:
            raise self._upstream.stream_unfinished("the final event")
        yield StreamEvent(
            done=True,
            usage=_usage(details) if isinstance(details, Mapping) else None,
            model=request.model,
            finish_reason=_finish_reason(details),
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool (and the OpenAI-route client, when there is one)."""
        await self._client.aclose()
        if self._openai is not None:
            await self._openai.aclose()

    # --- requests -------------------------------------------------------------------------------------------

    def _payload(self, request: ModelRequest) -> dict[str, Any]:
        if request.tools:
            raise ProviderBadRequest(
                "TGI's /generate API has no tools; set the connection option api='openai' to use its chat route"
            )
        prompt = render_chat(request.messages) if request.messages is not None else request.prompt or ""
        # details=True is what makes TGI report finish reason and token counts.
        parameters: dict[str, Any] = {"details": True, "return_full_text": False}
        if request.max_tokens is not None:
            parameters["max_new_tokens"] = request.max_tokens
        if request.temperature is not None and request.temperature > 0:
            # TGI rejects temperature 0; greedy decoding is what it does when none is given.
            parameters["temperature"] = request.temperature
        if request.top_p is not None and 0 < request.top_p < 1:
            # TGI requires 0 < top_p < 1; top_p = 1 means "no nucleus filtering", its default.
            parameters["top_p"] = request.top_p
        if request.stop:
            parameters["stop"] = request.stop
        if request.seed is not None:
            parameters["seed"] = request.seed
        if request.response_schema is not None:
            parameters["grammar"] = {"type": "json", "value": request.response_schema}
        parameters.update(request.extra)
        return {"inputs": prompt, "parameters": parameters}

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._config.max_retries + 1),
            wait=_wait,
            retry=retry_if_exception(_should_retry),
            reraise=True,
        )

    async def _send(self, path: str, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        """One attempt: POST and turn transport failures and error statuses into provider errors."""
        headers = {"Accept": "text/event-stream"} if stream else None
        request = self._client.build_request("POST", self._base_url + path, json=payload, headers=headers)
        try:
            response = await self._client.send(request, stream=stream)
        except httpx.TimeoutException:
            raise self._upstream.timed_out() from None
        except httpx.TransportError as exc:
            raise self._upstream.unreachable(describe(exc)) from None
        if response.status_code >= 300:
            try:
                await response.aread()
            except httpx.HTTPError:
                pass  # the status alone still says what went wrong
            finally:
                await response.aclose()
            raise self._status_error(response)
        return response

    # --- responses ------------------------------------------------------------------------------------------

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProviderError("The Hugging Face endpoint answered with invalid JSON") from None

    @staticmethod
    def _parse_line(line: str) -> dict[str, Any] | None:
        """The JSON object of one SSE ``data:`` line, or None for blank lines, comments and other fields."""
        line = line.strip()
        if not line.startswith("data:"):
            return None
        data = line[len("data:") :].strip()
        if not data or data == "[DONE]":
            return None
        parsed = json.loads(data)
        if not isinstance(parsed, dict):
            raise ValueError("stream event is not a JSON object")
        return parsed

    # --- errors ---------------------------------------------------------------------------------------------

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        upstream, error_type = _error_body(response)
        safe = self._upstream.safe
        if status < 400:
            return ProviderBadRequest(
                safe(f"The Hugging Face endpoint redirected (HTTP {status}); redirects are not followed")
            )
        return error_for_status(
            status,
            safe(f"The Hugging Face endpoint answered HTTP {status}: {upstream}"),
            context_overflow=status in (400, 413, 422) and looks_like_context_error(upstream),
            # 424 is TGI's "generation failed" (e.g. out of GPU memory); 503 is also how Inference
            # Endpoints say "scaled to zero, starting up". Both are worth retrying.
            outage=status == 424 or error_type in ("overloaded", "generation"),
            # Outages carry it too: the retry loop here (_wait) waits what the server asked for.
            retry_after=retry_after_seconds(response.headers),
        )

    def _error_event(self, event: Mapping[str, Any]) -> ProviderError:
        """An ``{"error": ..., "error_type": ...}`` event inside the stream."""
        upstream = _error_text(event.get("error"))
        message = self._upstream.safe(f"The Hugging Face endpoint reported an error mid-stream: {upstream}")
        if event.get("error_type") == "validation":
            if looks_like_context_error(upstream):
                return ContextTooLong(message)
            return ProviderBadRequest(message)
        return ProviderUnavailable(message)


def _error_text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value) if value is not None else ""


def _error_body(response: httpx.Response) -> tuple[str, str | None]:
    """TGI's ``{"error": ..., "error_type": ...}`` body as (message, type); falls back to the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase, None
    if isinstance(body, Mapping) and "error" in body:
        error_type = body.get("error_type")
        return _error_text(body["error"]), error_type if isinstance(error_type, str) else None
    return json.dumps(body)[:MAX_DETAIL_CHARS], None
