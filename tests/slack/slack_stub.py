"""A local server standing in for Slack: the Web API (``/api/<method>``), response URLs (``/hooks/...``) and the
Socket Mode WebSocket (``/link/?ticket=...``).

It records every call and checks each message against Slack's Block Kit rules (at most 50 blocks, section
texts of at most 3000 characters, header texts of at most 150), so tests can assert no payload broke them.

Socket Mode as Slack speaks it: ``apps.connections.open`` with the app-level token answers a ``ws://`` URL
carrying a single-use ticket; the server greets each connection with ``hello``, then sends the envelopes a
test queues (:meth:`SlackStub.send_envelope`) and records every acknowledgement (:meth:`SlackStub.ack_for`),
with the problems Slack would have with it (unknown envelope, late, a payload breaking Block Kit rules).
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.support.fake_llm_server import FakeLLMServer

BOT_TOKEN = "xoxb-test-" + "0" * 24
APP_TOKEN = "xapp-1-A0001-" + "0" * 24
ACK_WITHIN_SECONDS = 3.0  # Slack's deadline for acknowledging an envelope


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


@dataclass
class Ack:
    """One message the Socket Mode client sent back over the WebSocket."""

    body: dict[str, Any]
    seconds: float  # after the envelope was sent
    problems: list[str] = field(default_factory=list)


class SlackStub(FakeLLMServer):
    """Runs on 127.0.0.1 (a free port) in a background thread, like the fake model provider it extends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.acks: list[Ack] = []
        self.hellos = 0  # Socket Mode connections greeted
        self._tickets: set[str] = set()
        self._outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._sent: dict[str, tuple[str, float]] = {}  # envelope id -> (type, when it was sent)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._web_api, methods=["POST"]),
                Route("/hooks/{rest:path}", self._hook, methods=["POST"]),
                WebSocketRoute("/link/", self._socket),
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
        if request.path_params["method"] == "apps.connections.open":
            return self._connections_open(request)
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

    # --- Socket Mode ------------------------------------------------------------------------------------------

    def _connections_open(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        call = Call(request.url.path, dict(request.headers), {})
        with self._lock:
            self.calls.append(call)
        if auth == f"Bearer {BOT_TOKEN}":  # Slack wants the app-level token here, not the bot token
            return JSONResponse({"ok": False, "error": "not_allowed_token_type"})
        if auth != f"Bearer {APP_TOKEN}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        ticket = secrets.token_hex(8)
        with self._lock:
            self._tickets.add(ticket)
        return JSONResponse({"ok": True, "url": f"ws{self.url[4:]}/link/?ticket={ticket}&app_id=A0001"})

    def send_envelope(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = False, **extra: Any
    ) -> str:
        """Queue an envelope for the connected client; returns its envelope id."""
        envelope_id = secrets.token_hex(6)
        self._outbox.put(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": accepts_response_payload,
                **extra,
            }
        )
        return envelope_id

    def send_raw(self, message: dict[str, Any]) -> None:
        """Queue a message that is not an envelope (``disconnect``)."""
        self._outbox.put(message)

    def ack_for(self, envelope_id: str) -> Ack | None:
        with self._lock:
            return next((a for a in self.acks if a.body.get("envelope_id") == envelope_id), None)

    async def _socket(self, ws: WebSocket) -> None:
        ticket = ws.query_params.get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)  # single use, as Slack's
        if not valid:
            await ws.close(code=1008)
            return
        await ws.accept()
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "applink-stub", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0001"},
            }
        )
        with self._lock:
            self.hellos += 1
        sender = asyncio.create_task(self._send_queued(ws))
        try:
            while True:
                self._record_ack(await ws.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()

    async def _send_queued(self, ws: WebSocket) -> None:
        while True:
            try:
                message = self._outbox.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.01)
                continue
            if "envelope_id" in message:
                with self._lock:
                    self._sent[message["envelope_id"]] = (message["type"], time.monotonic())
            await ws.send_text(json.dumps(message))
            if message.get("type") == "disconnect":
                return

    def _record_ack(self, text: str) -> None:
        problems: list[str] = []
        try:
            body = json.loads(text)
        except ValueError:
            body, problems = {}, ["not JSON"]
        with self._lock:
            sent = self._sent.get(str(body.get("envelope_id")))
        seconds = time.monotonic() - sent[1] if sent else -1.0
        if sent is None:
            problems.append(f"acknowledges unknown envelope {body.get('envelope_id')!r}")
        elif seconds > ACK_WITHIN_SECONDS:
            problems.append(f"acknowledged after {seconds:.1f} s (Slack waits {ACK_WITHIN_SECONDS:.0f} s)")
        if "payload" in body:
            if sent is not None and sent[0] != "slash_commands":
                problems.append(f"a payload in the acknowledgement of a {sent[0]} envelope")
            problems.extend(block_kit_problems(body["payload"]))
        with self._lock:
            self.acks.append(Ack(body, seconds, problems))

    def __enter__(self) -> SlackStub:
        super().__enter__()  # the fake provider's loopback uvicorn thread, serving this app
        return self
