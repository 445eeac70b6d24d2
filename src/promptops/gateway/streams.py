"""Reading answers of the two wire formats for the run record: whole JSON bodies, and SSE streams read
incrementally while their bytes are passed through untouched."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from promptops.providers.base import Usage, content_text


@dataclass
class Reading:
    """What a call produced, as a run records it."""

    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    ttft_ms: float | None = None
    done: bool = False
    error: str | None = None

    @property
    def output(self) -> str:
        return "".join(self.text)

    def calls(self) -> list[dict[str, Any]] | None:
        return [self.tool_calls[i] for i in sorted(self.tool_calls)] or None


def _openai_usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def read_openai(data: dict[str, Any]) -> Reading:
    """A chat.completion, text_completion or embedding list."""
    reading = Reading(usage=_openai_usage(data.get("usage")), done=True)
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, dict):
            reading.text.append(content_text(message.get("content")))
            for index, tool_call in enumerate(message.get("tool_calls") or []):
                reading.tool_calls[index] = tool_call
        elif isinstance(choice.get("text"), str):
            reading.text.append(choice["text"])
        reading.finish_reason = choice.get("finish_reason")
    return reading


def read_anthropic(data: dict[str, Any]) -> Reading:
    usage = data.get("usage")
    reading = Reading(done=True, finish_reason=data.get("stop_reason"))
    if isinstance(usage, dict):
        reading.usage = Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            reading.text.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            reading.tool_calls[len(reading.tool_calls)] = _tool_call(
                block.get("id", ""), block.get("name", ""), orjson.dumps(block.get("input", {})).decode()
            )
    return reading


def _tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class SseReader:
    """Feeds on the raw bytes of an SSE stream and updates a :class:`Reading` per ``data:`` event."""

    def __init__(self, wire: str, started: float) -> None:
        self.reading = Reading()
        self.started = started
        self._buffer = b""
        self._on_event: Callable[[dict[str, Any]], None] = (
            self._anthropic if wire == "anthropic" else self._openai
        )
        self._json_parts: dict[int, list[str]] = {}

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        if b"\n" not in chunk:
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.reading.done = True
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                self._on_event(event)

    def _first_token(self) -> None:
        if self.reading.ttft_ms is None:
            self.reading.ttft_ms = (time.perf_counter() - self.started) * 1000

    def _openai(self, event: dict[str, Any]) -> None:
        reading = self.reading
        if isinstance(event.get("error"), dict):
            reading.error = str(event["error"].get("message", "stream error"))
            return
        usage = _openai_usage(event.get("usage"))
        if usage is not None:
            reading.usage = usage
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("content"):
                    self._first_token()
                    reading.text.append(content_text(delta["content"]))
                for part in delta.get("tool_calls") or []:
                    self._first_token()
                    index = int(part.get("index", 0))
                    call = reading.tool_calls.setdefault(index, _tool_call("", "", ""))
                    function = part.get("function") or {}
                    call["id"] = part.get("id") or call["id"]
                    call["function"]["name"] += function.get("name") or ""
                    call["function"]["arguments"] += function.get("arguments") or ""
            elif isinstance(choice.get("text"), str) and choice["text"]:
                self._first_token()
                reading.text.append(choice["text"])
            if choice.get("finish_reason"):
                reading.finish_reason = choice["finish_reason"]

    def _anthropic(self, event: dict[str, Any]) -> None:
        reading = self.reading
        kind = event.get("type")
        if kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            reading.usage = Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = int(event.get("index", 0))
                reading.tool_calls[index] = _tool_call(block.get("id", ""), block.get("name", ""), "")
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            self._first_token()
            if delta.get("type") == "text_delta":
                reading.text.append(str(delta.get("text", "")))
            elif delta.get("type") == "input_json_delta":
                index = int(event.get("index", 0))
                call = reading.tool_calls.setdefault(index, _tool_call("", "", ""))
                call["function"]["arguments"] += str(delta.get("partial_json", ""))
        elif kind == "message_delta":
            reading.finish_reason = (event.get("delta") or {}).get("stop_reason") or reading.finish_reason
            usage = event.get("usage") or {}
            if "output_tokens" in usage:
                before = reading.usage or Usage()
                reading.usage = Usage(
                    int(usage.get("input_tokens") or before.input_tokens), int(usage["output_tokens"])
                )
        elif kind == "message_stop":
            reading.done = True
        elif kind == "error":
            reading.error = str((event.get("error") or {}).get("message", "stream error"))


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_NULL_USAGE = (
    re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])'),
    re.compile(rb'"usage"\s*:\s*null\s*,\s*'),
)


class UsageFilter:
    """Takes out of an OpenAI SSE stream what ``stream_options.include_usage`` added when the gateway asked
    for it on the client's behalf: the usage-only chunk (``"choices": []`` with ``usage``) and the
    ``"usage": null`` the other chunks then carry. Every other byte goes through as it came; an event is held
    only until its blank line arrives."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out: list[bytes] = []
        start = 0
        for end in _EVENT_END.finditer(self._buffer):
            out.append(self._event(self._buffer[start : end.start()], end.group()))
            start = end.end()
        self._buffer = self._buffer[start:]
        return b"".join(out)

    def flush(self) -> bytes:
        """What is left when the stream ends (an event without its blank line), as it came."""
        rest, self._buffer = self._buffer, b""
        return rest

    @staticmethod
    def _event(event: bytes, end: bytes) -> bytes:
        if b'"usage"' not in event:
            return event + end
        lines = event.splitlines()
        data = [line for line in lines if line.startswith(b"data:")]
        if len(data) != 1:
            return event + end
        try:
            parsed = orjson.loads(data[0][5:])
        except orjson.JSONDecodeError:
            return event + end
        if not isinstance(parsed, dict) or "usage" not in parsed:
            return event + end
        if parsed.get("choices") == [] and isinstance(parsed["usage"], dict):
            return b""  # the usage-only chunk: the client did not ask for it
        if parsed["usage"] is not None:
            return event + end
        expected = {k: v for k, v in parsed.items() if k != "usage"}
        for pattern in _NULL_USAGE:
            edited, found = pattern.subn(b"", data[0], count=1)
            if not found:
                continue
            try:
                if orjson.loads(edited[5:]) == expected:
                    return event.replace(data[0], edited, 1) + end
            except orjson.JSONDecodeError:
                pass
        return event + end
