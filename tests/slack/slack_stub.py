"""A local HTTP server standing in for Slack: the Web API (``/api/<method>``) and response URLs (``/hooks/...``).

It records every call and checks each message against Slack's Block Kit rules (at most 50 blocks, section
texts of at most 3000 characters, header texts of at most 150), so tests can assert no payload broke them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.fake_llm_server import FakeLLMServer

BOT_TOKEN = "xoxb-test-" + "0" * 24


def block_kit_problems(payload: dict[str, Any]) -> list[str]:
    """Where ``payload`` breaks Slack's message limits (empty when it is within them)."""
    problems: list[str] = []
    blocks = payload.get("blocks") or []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks (max 50)")
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("no fallback text")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        if kind == "section" and not 1 <= len(text) <= 3000:
            problems.append(f"block {i}: section text of {len(text)} chars (1..3000)")
        if kind == "header" and (block["text"].get("type") != "plain_text" or len(text) > 150):
            problems.append(f"block {i}: header must be plain_text of at most 150 chars")
        if kind == "context" and not 1 <= len(block.get("elements", [])) <= 10:
            problems.append(f"block {i}: context needs 1..10 elements")
        if kind == "actions" and not 1 <= len(block.get("elements", [])) <= 25:
            problems.append(f"block {i}: actions needs 1..25 elements")
        if kind not in {"section", "header", "context", "actions", "divider"}:
            problems.append(f"block {i}: unexpected type {kind!r}")
    return problems


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    problems: list[str] = field(default_factory=list)


class SlackStub(FakeLLMServer):
    """Runs on 127.0.0.1 (a free port) in a background thread, like the fake model provider it extends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._web_api, methods=["POST"]),
                Route("/hooks/{rest:path}", self._hook, methods=["POST"]),
            ]
        )

    def calls_to(self, path_prefix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.startswith(path_prefix)]

    async def _record(self, request: Request) -> Call:
        body = await request.json()
        call = Call(request.url.path, dict(request.headers), body, block_kit_problems(body))
        with self._lock:
            self.calls.append(call)
        return call

    async def _web_api(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        call = await self._record(request)
        if request.path_params["method"] != "chat.postMessage":
            return JSONResponse({"ok": False, "error": "unknown_method"})
        if call.body.get("channel") == "#archived":
            return JSONResponse({"ok": False, "error": "is_archived"})
        return JSONResponse({"ok": True, "channel": call.body.get("channel"), "ts": "1700000000.000100"})

    async def _hook(self, request: Request) -> Response:
        await self._record(request)
        return PlainTextResponse("ok")

    def __enter__(self) -> SlackStub:
        super().__enter__()  # the fake provider's loopback uvicorn thread, serving this app
        return self
