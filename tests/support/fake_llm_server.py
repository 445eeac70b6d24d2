"""A real HTTP server that speaks the OpenAI, Azure OpenAI, Anthropic and TGI wire formats, for adapter tests.

The adapters are exercised through the official SDKs and a real socket, so retries, timeouts, SSE parsing and
dropped connections behave as they do in production. Answers are deterministic: the reply echoes the last
user input (``reply_for``) unless a script says otherwise, and token counts are whitespace word counts
(input: every text the model would read; output: the reply, or the tool call arguments).

Usage::

    with FakeLLMServer() as server:
        server.script("openai", status=429, headers={"Retry-After": "0.1"}, times=1)
        ...  # call an adapter with base_url=server.url + "/v1" and api_key=server.api_key
        assert len(server.requests) == 2

Families: ``openai`` (``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings`` with vectors from
:func:`embedding_for`, and Azure's ``/openai/deployments/{name}/...``), ``anthropic`` (``/v1/messages``) and ``tgi`` (``/generate``,
``/generate_stream``). Script fields (see :class:`Behaviour`): ``status`` / ``error`` (``auth``,
``rate_limit``, ``context``, ``bad_request``, ``not_found``, ``server``, ``unavailable``, ``overloaded``) for
failures in each provider's error format, ``headers``, ``delay`` (seconds before answering), ``text`` and
``tool_calls`` for the answer, ``usage=False`` to report no token usage, ``break_after=N`` to drop the
connection after N stream events, ``error_after=N`` / ``garbage_after=N`` for an error event or an
undecodable event mid-stream, ``serverless=True`` for the Hugging Face list-shaped answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_KEY = "sk-Zq8vR3xK9mW2pL7tY4nB6cD1hJ5gF0sA"
FAMILIES = ("openai", "anthropic", "tgi")
TGI_MODEL = "fake-org/fake-tgi-model"
CREATED = 1_700_000_000
EMBEDDING_DIM = 64


def words(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def reply_for(text: str) -> str:
    """The default answer: an echo of (the first twelve words of) the last user input."""
    return "You said: " + " ".join(text.split()[:12])


def embedding_for(text: str) -> list[float]:
    """The fake embedding: a unit-length hashed bag of lower-cased words in ``EMBEDDING_DIM`` dimensions.

    Texts sharing words point the same way (cosine = word overlap), texts with none are orthogonal (mostly).
    """
    vector = [0.0] * EMBEDDING_DIM
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % EMBEDDING_DIM] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def pieces(text: str) -> list[str]:
    """Stream chunks: one word each, with its trailing whitespace, so they concatenate back to ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def masked(key: str) -> str:
    """The key the way OpenAI echoes it in a 401: first six and last four characters."""
    if len(key) <= 10:
        return "*" * len(key)
    return key[:6] + "*" * (len(key) - 10) + key[-4:]


@dataclass
class Behaviour:
    """How the server answers the next request(s) of one family."""

    status: int | None = None
    error: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": {...}}]
    finish_reason: str | None = None
    usage: bool = True
    break_after: int | None = None
    error_after: int | None = None
    garbage_after: int | None = None
    serverless: bool = False
    times: int = 1


@dataclass
class Received:
    """One request the server received."""

    family: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    """What the model "generated" for a request, before it is put in a wire format."""

    model: str
    text: str
    tool_calls: list[dict[str, Any]]
    finish: str  # stop | stop_sequence | length | tool_calls
    input_tokens: int
    output_tokens: int


class EventStream(Response):
    """An SSE response that can stop half-way and drop the connection, like a crashed upstream."""

    def __init__(self, events: list[bytes], *, cut_after: int | None, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self.events = events
        self.cut_after = cut_after
        # No content-length: the body goes out chunked, so closing early is visible to the client.
        raw = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", **headers}
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in raw.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for index, event in enumerate(self.events):
            if self.cut_after is not None and index >= self.cut_after:
                # Returning without the final body message makes uvicorn close the socket mid-response.
                return
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FakeLLMServer:
    """Context manager running the fake provider on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, api_key: str | None = DEFAULT_KEY) -> None:
        self.api_key = api_key
        self.url = ""
        self.requests: list[Received] = []
        self._scripts: dict[str, deque[Behaviour]] = {family: deque() for family in FAMILIES}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai_chat, methods=["POST"]),
                Route("/v1/completions", self._openai_legacy, methods=["POST"]),
                Route("/v1/embeddings", self._openai_embeddings, methods=["POST"]),
                Route(
                    "/openai/deployments/{deployment}/embeddings", self._openai_embeddings, methods=["POST"]
                ),
                Route(
                    "/openai/deployments/{deployment}/chat/completions", self._openai_chat, methods=["POST"]
                ),
                Route("/openai/deployments/{deployment}/completions", self._openai_legacy, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/generate", self._tgi_generate, methods=["POST"]),
                Route("/generate_stream", self._tgi_stream, methods=["POST"]),
            ]
        )

    # --- lifecycle and scripting -------------------------------------------------------------------------------

    def __enter__(self) -> FakeLLMServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="critical", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def script(self, family: str, *, times: int = 1, **fields: Any) -> None:
        """Queue a behaviour for the next ``times`` requests of ``family``; unscripted requests succeed."""
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}")
        with self._lock:
            self._scripts[family].append(Behaviour(times=times, **fields))

    def reset(self) -> None:
        """Forget received requests and pending scripts (to share one server between tests)."""
        with self._lock:
            self.requests.clear()
            for queue in self._scripts.values():
                queue.clear()

    def requests_to(self, path_suffix: str) -> list[Received]:
        """The received requests whose path ends with ``path_suffix``."""
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    def _next(self, family: str) -> Behaviour:
        with self._lock:
            queue = self._scripts[family]
            if not queue:
                return Behaviour()
            behaviour = queue[0]
            behaviour.times -= 1
            if behaviour.times <= 0:
                queue.popleft()
            return behaviour

    # --- shared request handling -------------------------------------------------------------------------------

    async def _receive(self, request: Request, family: str) -> tuple[Any, Behaviour, Response | None]:
        """Record the request, check its credentials and apply the scripted delay and failure."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(
            Received(
                family,
                request.method,
                request.url.path,
                dict(request.query_params),
                dict(request.headers),
                body,
            )
        )
        refused = self._check_auth(request, family, body)
        if refused is not None:
            return body, Behaviour(), refused
        behaviour = self._next(family)
        if behaviour.delay:
            await self._pause(request, behaviour.delay)
        if behaviour.status not in (None, 200) or behaviour.error is not None:
            return body, behaviour, self._error(family, behaviour, body)
        return body, behaviour, None

    @staticmethod
    async def _pause(request: Request, seconds: float) -> None:
        # Sleep in slices and give up once the client hung up, so shutdown is not held by a dead request.
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if await request.is_disconnected():
                return
            await asyncio.sleep(min(0.05, left))

    def _check_auth(self, request: Request, family: str, body: Any) -> Response | None:
        if family == "openai" and request.url.path.startswith("/openai/"):
            if "api-version" not in request.query_params:
                return JSONResponse(
                    {"error": {"code": "404", "message": "Resource not found"}}, status_code=404
                )
            presented = request.headers.get("api-key", "")
        elif family == "anthropic":
            if not request.headers.get("anthropic-version"):
                return self._error(
                    family,
                    Behaviour(error="bad_request", message="anthropic-version: header is required"),
                    body,
                )
            # The SDK in use sends "Authorization: Bearer"; the classic x-api-key header is accepted too.
            bearer = request.headers.get("authorization", "")
            presented = request.headers.get("x-api-key") or bearer.removeprefix("Bearer ")
        else:
            header = request.headers.get("authorization", "")
            presented = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        if self.api_key is None or presented == self.api_key:
            return None
        return self._error(family, Behaviour(error="auth", message=masked(presented)), body)

    def _error(self, family: str, behaviour: Behaviour, body: Any) -> Response:
        kind = behaviour.error or _KIND_BY_STATUS.get(behaviour.status or 500, "server")
        status = behaviour.status or _STATUS_BY_KIND[family].get(kind, 500)
        model = body.get("model", "") if isinstance(body, dict) else ""
        payload = _ERROR_BODIES[family](kind, behaviour.message, model)
        headers = dict(behaviour.headers)
        if family == "anthropic":
            headers.setdefault("request-id", "req_fake")
        return JSONResponse(payload, status_code=status, headers=headers)

    # --- answers ---------------------------------------------------------------------------------------------

    @staticmethod
    def _answer(
        model: str, read: str, last: str, behaviour: Behaviour, limit: int | None, stop: Any
    ) -> Answer:
        text = behaviour.text if behaviour.text is not None else reply_for(last)
        calls = [dict(call) for call in behaviour.tool_calls or []]
        finish = "tool_calls" if calls else "stop"
        for sequence in [stop] if isinstance(stop, str) else stop or []:
            if sequence and sequence in text:
                text = text[: text.index(sequence)]
                finish = "stop_sequence"
        if limit is not None and words(text) > limit:
            text = " ".join(text.split()[:limit])
            finish = "length"
        output = words(text) + sum(words(json.dumps(call.get("arguments", {}))) for call in calls)
        return Answer(model, text, calls, finish, words(read), output)

    # --- OpenAI / Azure OpenAI ---------------------------------------------------------------------------------

    async def _openai_chat(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "openai")
        if failure is not None:
            return failure
        messages = body.get("messages") or []
        read = " ".join(_text(m.get("content")) for m in messages)
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        model = body.get("model") or request.path_params.get("deployment", "")
        answer = self._answer(
            model, read, users[-1] if users else "", behaviour, body.get("max_tokens"), body.get("stop")
        )
        answer.finish = behaviour.finish_reason or _OPENAI_FINISH.get(answer.finish, answer.finish)
        calls = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
            }
            for i, c in enumerate(answer.tool_calls)
        ]
        usage = {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }
        base = {
            "id": "chatcmpl-fake",
            "created": CREATED,
            "model": answer.model,
            "system_fingerprint": "fp_fake",
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer.text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            payload = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": message, "finish_reason": answer.finish, "logprobs": None}
                ],
            }
            if behaviour.usage:
                payload["usage"] = usage
            return JSONResponse(payload, headers=behaviour.headers)
        chunk = {**base, "object": "chat.completion.chunk"}

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **chunk,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }

        events = [choice({"role": "assistant", "content": ""})]
        events += [choice({"content": piece}) for piece in pieces(answer.text)]
        for i, call in enumerate(calls):
            head = {**call, "index": i, "function": {"name": call["function"]["name"], "arguments": ""}}
            events.append(choice({"tool_calls": [head]}))
            arguments = call["function"]["arguments"]
            for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                events.append(choice({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
        events.append(choice({}, answer.finish))
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage and behaviour.usage:
            events.append({**chunk, "choices": [], "usage": usage})
        return self._openai_stream(events, behaviour)

    async def _openai_legacy(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "openai")
        if failure is not None:
            return failure
        prompt = body.get("prompt") or ""
        prompt = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
        model = body.get("model") or request.path_params.get("deployment", "")
        answer = self._answer(model, prompt, prompt, behaviour, body.get("max_tokens"), body.get("stop"))
        answer.finish = behaviour.finish_reason or _OPENAI_FINISH.get(answer.finish, answer.finish)
        usage = {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }
        base = {"id": "cmpl-fake", "object": "text_completion", "created": CREATED, "model": answer.model}

        def choice(text: str, finish: str | None) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            }

        if not body.get("stream"):
            payload = choice(answer.text, answer.finish)
            if behaviour.usage:
                payload["usage"] = usage
            return JSONResponse(payload, headers=behaviour.headers)
        events = [choice(piece, None) for piece in pieces(answer.text)]
        events.append(choice("", answer.finish))
        if (body.get("stream_options") or {}).get("include_usage") and behaviour.usage:
            events.append({**base, "choices": [], "usage": usage})
        return self._openai_stream(events, behaviour)

    async def _openai_embeddings(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "openai")
        if failure is not None:
            return failure
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        model = body.get("model") or request.path_params.get("deployment", "")
        data = []
        for index, text in enumerate(texts):
            vector = embedding_for(str(text))
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if behaviour.usage:
            tokens = sum(words(str(text)) for text in texts)
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse(payload, headers=behaviour.headers)

    @staticmethod
    def _openai_stream(events: list[dict[str, Any]], behaviour: Behaviour) -> Response:
        raw = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        if behaviour.error_after is not None:
            error = {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                }
            }
            raw = [*raw[: behaviour.error_after], f"data: {json.dumps(error)}\n\n".encode()]
        if behaviour.garbage_after is not None:
            raw = [*raw[: behaviour.garbage_after], b'data: {"choices": [{"delta": \n\n']
        raw.append(b"data: [DONE]\n\n")
        return EventStream(raw, cut_after=behaviour.break_after, headers=behaviour.headers)

    # --- Anthropic -------------------------------------------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "anthropic")
        if failure is not None:
            return failure
        if not isinstance(body.get("max_tokens"), int):
            return self._error(
                "anthropic", Behaviour(error="bad_request", message="max_tokens: Field required"), body
            )
        system = body.get("system") or ""
        system = system if isinstance(system, str) else _text(system)
        messages = body.get("messages") or []
        read = " ".join([system, *(_text(m.get("content")) for m in messages)])
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        answer = self._answer(
            body.get("model", ""),
            read,
            users[-1] if users else "",
            behaviour,
            body["max_tokens"],
            body.get("stop_sequences"),
        )
        stop_reason = behaviour.finish_reason or _ANTHROPIC_FINISH.get(answer.finish, answer.finish)
        blocks: list[dict[str, Any]] = []
        if answer.text:
            blocks.append({"type": "text", "text": answer.text})
        for i, call in enumerate(answer.tool_calls):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{i}",
                    "name": call["name"],
                    "input": call.get("arguments", {}),
                }
            )
        usage = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        headers = {"request-id": "req_fake", **behaviour.headers}
        if not body.get("stream"):
            payload = {**message, "usage": usage} if behaviour.usage else message
            return JSONResponse(payload, headers=headers)
        start_message = {**message, "content": [], "stop_reason": None}
        if behaviour.usage:
            start_message["usage"] = {"input_tokens": answer.input_tokens, "output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"message": start_message}),
            ("ping", {}),
        ]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(
                    ("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                )
                for piece in pieces(block["text"]):
                    events.append(
                        (
                            "content_block_delta",
                            {"index": index, "delta": {"type": "text_delta", "text": piece}},
                        )
                    )
            else:
                start = {**block, "input": {}}
                events.append(("content_block_start", {"index": index, "content_block": start}))
                arguments = json.dumps(block["input"])
                for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                    events.append(
                        (
                            "content_block_delta",
                            {"index": index, "delta": {"type": "input_json_delta", "partial_json": part}},
                        )
                    )
            events.append(("content_block_stop", {"index": index}))
        delta: dict[str, Any] = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        if behaviour.usage:
            delta["usage"] = {"output_tokens": answer.output_tokens}
        events += [("message_delta", delta), ("message_stop", {})]
        raw = [
            f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode() for name, data in events
        ]
        if behaviour.error_after is not None:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            raw = [*raw[: behaviour.error_after], f"event: error\ndata: {json.dumps(error)}\n\n".encode()]
        if behaviour.garbage_after is not None:
            raw = [*raw[: behaviour.garbage_after], b"event: content_block_delta\ndata: {not json\n\n"]
        return EventStream(raw, cut_after=behaviour.break_after, headers=headers)

    # --- TGI / Hugging Face ----------------------------------------------------------------------------------

    def _tgi_answer(self, body: Any, behaviour: Behaviour) -> Answer:
        inputs = str(body.get("inputs") or "")
        parameters = body.get("parameters") or {}
        # A rendered chat prompt ends with "assistant:"; echo the last user line, as a chat model would.
        user_lines = [line[len("user:") :] for line in inputs.splitlines() if line.startswith("user:")]
        answer = self._answer(
            TGI_MODEL,
            inputs,
            user_lines[-1] if user_lines else inputs,
            behaviour,
            parameters.get("max_new_tokens"),
            parameters.get("stop"),
        )
        answer.finish = behaviour.finish_reason or _TGI_FINISH.get(answer.finish, answer.finish)
        return answer

    async def _tgi_generate(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "tgi")
        if failure is not None:
            return failure
        answer = self._tgi_answer(body, behaviour)
        headers = dict(behaviour.headers)
        if behaviour.serverless:
            return JSONResponse([{"generated_text": answer.text}], headers=headers)
        if behaviour.usage:
            # TGI reports both counts in headers; usage=False plays a proxy that strips them.
            headers["x-prompt-tokens"] = str(answer.input_tokens)
            headers["x-generated-tokens"] = str(answer.output_tokens)
        details: dict[str, Any] = {
            "finish_reason": answer.finish,
            "generated_tokens": answer.output_tokens,
            "seed": (body.get("parameters") or {}).get("seed"),
            "prefill": [],
            "tokens": [
                {"id": i, "text": piece, "logprob": -0.1, "special": False}
                for i, piece in enumerate(pieces(answer.text))
            ],
        }
        if behaviour.usage and (body.get("parameters") or {}).get("decoder_input_details"):
            details["prefill"] = [
                {"id": i, "text": word, "logprob": None}
                for i, word in enumerate(str(body.get("inputs")).split())
            ]
        return JSONResponse({"generated_text": answer.text, "details": details}, headers=headers)

    async def _tgi_stream(self, request: Request) -> Response:
        body, behaviour, failure = await self._receive(request, "tgi")
        if failure is not None:
            return failure
        answer = self._tgi_answer(body, behaviour)
        tokens = [
            {"id": i, "text": piece, "logprob": -0.1, "special": False}
            for i, piece in enumerate(pieces(answer.text))
        ]
        if answer.finish == "eos_token":
            tokens.append({"id": 2, "text": "</s>", "logprob": -0.01, "special": True})
        events: list[dict[str, Any]] = [
            {"index": i + 1, "token": token, "top_tokens": None, "generated_text": None, "details": None}
            for i, token in enumerate(tokens)
        ]
        details: dict[str, Any] = {
            "finish_reason": answer.finish,
            "generated_tokens": answer.output_tokens,
            "seed": (body.get("parameters") or {}).get("seed"),
        }
        if behaviour.usage:
            details["input_length"] = answer.input_tokens
        if events:
            events[-1] = {**events[-1], "generated_text": answer.text, "details": details}
        raw = [f"data:{json.dumps(event)}\n\n".encode() for event in events]
        if behaviour.error_after is not None:
            error = {
                "error": "Request failed during generation: Server error: CUDA out of memory",
                "error_type": "generation",
            }
            raw = [*raw[: behaviour.error_after], f"data:{json.dumps(error)}\n\n".encode()]
        if behaviour.garbage_after is not None:
            raw = [*raw[: behaviour.garbage_after], b'data:{"token": \n\n']
        return EventStream(raw, cut_after=behaviour.break_after, headers=behaviour.headers)


_OPENAI_FINISH = {"stop_sequence": "stop"}
_ANTHROPIC_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_TGI_FINISH = {"stop": "eos_token"}

# --- error formats ----------------------------------------------------------------------------------------------

_KIND_BY_STATUS = {
    400: "bad_request",
    401: "auth",
    403: "auth",
    404: "not_found",
    422: "bad_request",
    429: "rate_limit",
    500: "server",
    502: "server",
    503: "unavailable",
    529: "overloaded",
}

_STATUS_BY_KIND = {
    "openai": {
        "auth": 401,
        "rate_limit": 429,
        "context": 400,
        "bad_request": 400,
        "not_found": 404,
        "server": 500,
        "unavailable": 503,
        "overloaded": 503,
    },
    "anthropic": {
        "auth": 401,
        "rate_limit": 429,
        "context": 400,
        "bad_request": 400,
        "not_found": 404,
        "server": 500,
        "unavailable": 503,
        "overloaded": 529,
    },
    "tgi": {
        "auth": 401,
        "rate_limit": 429,
        "context": 422,
        "bad_request": 422,
        "not_found": 404,
        "server": 500,
        "unavailable": 503,
        "overloaded": 429,
    },
}


def _openai_error(kind: str, message: str | None, model: str) -> dict[str, Any]:
    catalogue: dict[str, tuple[str, str, str | None, str | None]] = {
        "auth": (
            f"Incorrect API key provided: {message}. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            "invalid_api_key",
        ),
        "rate_limit": (
            message or "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "requests",
            None,
            "rate_limit_exceeded",
        ),
        "context": (
            message
            or "This model's maximum context length is 8192 tokens. However, your messages resulted in "
            "9000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "messages",
            "context_length_exceeded",
        ),
        "bad_request": (
            message or "Invalid value for 'temperature'.",
            "invalid_request_error",
            "temperature",
            None,
        ),
        "not_found": (
            message or f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            None,
            "model_not_found",
        ),
        "server": (
            message or "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        "unavailable": (
            message or "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
            None,
        ),
        "overloaded": (
            message or "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
            None,
        ),
    }
    text, type_, param, code = catalogue[kind]
    return {"error": {"message": text, "type": type_, "param": param, "code": code}}


def _anthropic_error(kind: str, message: str | None, model: str) -> dict[str, Any]:
    catalogue = {
        "auth": ("authentication_error", f"invalid x-api-key: {message}"),
        "rate_limit": (
            "rate_limit_error",
            message or "Number of request tokens has exceeded your per-minute rate limit",
        ),
        "context": ("invalid_request_error", message or "prompt is too long: 210000 tokens > 200000 maximum"),
        "bad_request": ("invalid_request_error", message or "messages: at least one message is required"),
        "not_found": ("not_found_error", message or f"model: {model}"),
        "server": ("api_error", message or "Internal server error"),
        "unavailable": ("api_error", message or "Service unavailable"),
        "overloaded": ("overloaded_error", message or "Overloaded"),
    }
    type_, text = catalogue[kind]
    return {"type": "error", "error": {"type": type_, "message": text}, "request_id": "req_fake"}


def _tgi_error(kind: str, message: str | None, model: str) -> dict[str, Any]:
    catalogue = {
        "auth": (f"Invalid credentials in Authorization header (token {message})", None),
        "rate_limit": (message or "Model is overloaded", "overloaded"),
        "context": (
            message
            or "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
            "Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
            "validation",
        ),
        "bad_request": (
            message or "Input validation error: `temperature` must be strictly positive",
            "validation",
        ),
        "not_found": (message or "Not Found", None),
        "server": (
            message or "Request failed during generation: Server error: CUDA out of memory",
            "generation",
        ),
        "unavailable": (message or f"Model {TGI_MODEL} is currently loading", None),
        "overloaded": (message or "Model is overloaded", "overloaded"),
    }
    text, type_ = catalogue[kind]
    body: dict[str, Any] = {"error": text}
    if type_:
        body["error_type"] = type_
    if kind == "unavailable":
        body["estimated_time"] = 20.0
    return body


_ERROR_BODIES = {"openai": _openai_error, "anthropic": _anthropic_error, "tgi": _tgi_error}


def _text(content: Any) -> str:
    """The text of a message content: a string or a list of parts/blocks (text, tool results)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                value = part.get("text", part.get("content", ""))
                parts.append(_text(value) if not isinstance(value, str) else value)
            else:
                parts.append(str(part))
        return " ".join(parts)
    return str(content)
