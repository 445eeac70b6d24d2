"""Wrappers that record the calls made with the official ``openai`` and ``anthropic`` clients as runs.

``wrap_openai(client)`` replaces ``client.chat.completions.create`` on that client object (sync or async)
and ``wrap_anthropic(client)`` ``client.messages.create``. A call may pass ``promptops_prompt=p`` (a fetched
:class:`~promptops_sdk.Prompt`): it is removed before the call and attributes the run to that version. A
streamed answer is recorded when the stream ends (or is closed, or fails), with the time to first token.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from promptops_sdk._tracing import build_run

Submit = Callable[[dict[str, Any]], Any]
_NOT_PARAMS = {"model", "messages", "system", "stream", "stream_options", "tools", "tool_choice", "timeout"}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _dump(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json", exclude_none=True) if callable(dump) else obj


class _Call:
    """One wrapped call: what was asked, and what came back (whole or streamed chunk by chunk)."""

    def __init__(self, family: str, kwargs: dict[str, Any], submit: Submit) -> None:
        self.family = family
        self.submit = submit
        self.prompt = kwargs.pop("promptops_prompt", None)
        self.trace_id = kwargs.pop("promptops_trace_id", None)
        self.model = kwargs.get("model")
        messages = list(kwargs.get("messages") or [])
        if family == "anthropic" and kwargs.get("system"):
            messages = [{"role": "system", "content": kwargs["system"]}, *messages]
        self.input = [_dump(m) for m in messages]
        self.params = {
            k: v
            for k, v in kwargs.items()
            if k not in _NOT_PARAMS and not k.startswith("extra_") and isinstance(v, str | int | float | bool)
        }
        self.created_at = datetime.now(UTC)
        self.started = time.perf_counter()
        self.ttft_ms: float | None = None
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.done = False

    def finish(self, error: BaseException | None = None, *, latency_ms: float | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.submit(
            build_run(
                prompt=self.prompt,
                model=self.model,
                provider=self.family,
                input=self.input,
                output="".join(self.text) if (self.text or error is None) else None,
                params=self.params,
                tool_calls=[self.tool_calls[i] for i in sorted(self.tool_calls)] or None,
                finish_reason=self.finish_reason,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                latency_ms=latency_ms
                if latency_ms is not None
                else (time.perf_counter() - self.started) * 1000,
                ttft_ms=self.ttft_ms,
                error=error,
                trace_id=self.trace_id,
                created_at=self.created_at,
            )
        )

    # --- whole answers ----------------------------------------------------------------------------------------

    def answer(self, response: Any) -> None:
        self.model = _get(response, "model") or self.model
        usage = _get(response, "usage")
        if self.family == "openai":
            choices = _get(response, "choices") or []
            if choices:
                message = _get(choices[0], "message")
                self.text.append(_get(message, "content") or "")
                for index, call in enumerate(_get(message, "tool_calls") or []):
                    self.tool_calls[index] = _dump(call)
                self.finish_reason = _get(choices[0], "finish_reason")
            self.input_tokens = _get(usage, "prompt_tokens", 0) or 0
            self.output_tokens = _get(usage, "completion_tokens", 0) or 0
        else:
            for index, block in enumerate(_get(response, "content") or []):
                if _get(block, "type") == "text":
                    self.text.append(_get(block, "text") or "")
                elif _get(block, "type") == "tool_use":
                    self.tool_calls[index] = {
                        "id": _get(block, "id"),
                        "name": _get(block, "name"),
                        "input": _dump(_get(block, "input")),
                    }
            self.finish_reason = _get(response, "stop_reason")
            self.input_tokens = _get(usage, "input_tokens", 0) or 0
            self.output_tokens = _get(usage, "output_tokens", 0) or 0
        self.finish()

    # --- streams ----------------------------------------------------------------------------------------------

    def chunk(self, chunk: Any) -> None:
        if self.family == "openai":
            self._openai_chunk(chunk)
        else:
            self._anthropic_event(chunk)

    def _first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000

    def _openai_chunk(self, chunk: Any) -> None:
        self.model = _get(chunk, "model") or self.model
        usage = _get(chunk, "usage")
        if usage is not None:
            self.input_tokens = _get(usage, "prompt_tokens", 0) or 0
            self.output_tokens = _get(usage, "completion_tokens", 0) or 0
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta")
            content = _get(delta, "content")
            if content:
                self._first_token()
                self.text.append(content)
            for call in _get(delta, "tool_calls") or []:
                self._first_token()
                entry = self.tool_calls.setdefault(
                    _get(call, "index", 0) or 0,
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                entry["id"] = _get(call, "id") or entry["id"]
                function = _get(call, "function")
                entry["function"]["name"] += _get(function, "name") or ""
                entry["function"]["arguments"] += _get(function, "arguments") or ""
            if _get(choice, "finish_reason"):
                self.finish_reason = _get(choice, "finish_reason")

    def _anthropic_event(self, event: Any) -> None:
        kind = _get(event, "type")
        if kind == "message_start":
            message = _get(event, "message")
            self.model = _get(message, "model") or self.model
            self.input_tokens = _get(_get(message, "usage"), "input_tokens", 0) or 0
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            if _get(block, "type") == "tool_use":
                self.tool_calls[_get(event, "index", 0)] = {
                    "id": _get(block, "id"),
                    "name": _get(block, "name"),
                    "input": "",
                }
        elif kind == "content_block_delta":
            delta = _get(event, "delta")
            self._first_token()
            if _get(delta, "type") == "text_delta":
                self.text.append(_get(delta, "text") or "")
            elif _get(delta, "type") == "input_json_delta":
                entry = self.tool_calls.get(_get(event, "index", 0))
                if entry is not None:
                    entry["input"] += _get(delta, "partial_json") or ""
        elif kind == "message_delta":
            self.finish_reason = _get(_get(event, "delta"), "stop_reason") or self.finish_reason
            self.output_tokens = _get(_get(event, "usage"), "output_tokens", 0) or self.output_tokens


class _Proxy:
    """A provider stream passed through chunk by chunk; the run is recorded when it ends."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Stream(_Proxy):
    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                self._call.chunk(chunk)
                yield chunk
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._call.finish()
        closer = getattr(self._stream, "close", None)
        if callable(closer):
            closer()


class _AsyncStream(_Proxy):
    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                self._call.chunk(chunk)
                yield chunk
        except BaseException as exc:
            self._call.finish(exc)
            raise
        self._call.finish()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._call.finish()
        closer = getattr(self._stream, "close", None)
        if callable(closer):
            await closer()


def _passed_on(call: _Call, response: Any, stream: type[_Stream] | type[_AsyncStream] | None) -> Any:
    """What the wrapped ``create`` returns: a stream proxy that records at its end, or the recorded answer."""
    if stream is not None:
        return stream(response, call)
    call.answer(response)
    return response


def _wrap(resource: Any, family: str, submit: Submit) -> None:
    original = resource.create
    if getattr(original, "_promptops_wrapped", False):
        return
    # the official async resources (AsyncCompletions, AsyncMessages) wrap create in a plain function
    if inspect.iscoroutinefunction(original) or type(resource).__name__.startswith("Async"):

        @functools.wraps(original)
        async def create_async(*args: Any, **kwargs: Any) -> Any:
            call = _Call(family, kwargs, submit)
            try:
                response = await original(*args, **kwargs)
            except BaseException as exc:
                call.finish(exc)
                raise
            return _passed_on(call, response, _AsyncStream if kwargs.get("stream") else None)

        create_async._promptops_wrapped = True  # type: ignore[attr-defined]
        resource.create = create_async
        return

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        call = _Call(family, kwargs, submit)
        try:
            response = original(*args, **kwargs)
        except BaseException as exc:
            call.finish(exc)
            raise
        return _passed_on(call, response, _Stream if kwargs.get("stream") else None)

    create._promptops_wrapped = True  # type: ignore[attr-defined]
    resource.create = create


def wrap_openai(client: Any, submit: Submit) -> Any:
    _wrap(client.chat.completions, "openai", submit)
    return client


def wrap_anthropic(client: Any, submit: Submit) -> Any:
    _wrap(client.messages, "anthropic", submit)
    return client
