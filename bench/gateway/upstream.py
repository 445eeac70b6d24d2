"""A 0 ms OpenAI-compatible upstream for the gateway benchmark: a bare ASGI app (no framework, so it costs as
little CPU per request as uvicorn allows) that answers every ``POST .../chat/completions`` with the same
completion, and ``GET /`` with 200 for readiness. bench/gateway.py runs it in its own process:

    python -m uvicorn --app-dir bench/gateway upstream:app --port PORT --loop uvloop --http httptools
"""

from __future__ import annotations

import json
from typing import Any

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "positive"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 1, "total_tokens": 43},
    },
    separators=(",", ":"),
).encode()
JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
EMPTY_HEADERS = [(b"content-length", b"0")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # read (and drop) the whole request body
        more = (await receive()).get("more_body", False)
    if scope["method"] == "POST" and scope["path"].endswith("/chat/completions"):
        await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})
    else:
        status = 200 if scope["method"] == "GET" else 404
        await send({"type": "http.response.start", "status": status, "headers": EMPTY_HEADERS})
        await send({"type": "http.response.body", "body": b""})
