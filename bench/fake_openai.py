"""A 0 ms OpenAI-compatible upstream for benchmarks: answers every chat completion at once."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "positive"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 42, "completion_tokens": 1, "total_tokens": 43},
}


async def chat(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(ANSWER)


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
