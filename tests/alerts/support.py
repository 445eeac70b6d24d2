"""Real receivers for alert notifications (an HTTP server and an SMTP server on 127.0.0.1) and helpers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.app import ADMIN_KEY, Api
from tests.support.cli_support import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """An HTTP server that records every POST; ``fail`` answers 500 to the next N requests."""

    url: str
    requests: list[Received] = field(default_factory=list)
    fail: int = 0


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    lock = threading.Lock()
    state: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver = state["r"]
            with lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                failing = receiver.fail > 0
                if failing:
                    receiver.fail -= 1
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = HttpReceiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(content)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpReceiver:
    host: str
    port: int
    handler: _Collect

    @property
    def messages(self) -> list[tuple[Envelope, Message]]:
        return self.handler.messages


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpReceiver("127.0.0.1", port, handler)
    finally:
        controller.stop()


def verify(secret: str, received: Received) -> bool:
    """Check a webhook's signature the way a receiver would."""
    timestamp = received.headers["x-promptops-timestamp"]
    given = received.headers["x-promptops-signature"]
    expected = (
        "v1="
        + hmac.new(secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(given, expected)


async def create_channel(api: Api, body: dict[str, Any], key: str = ADMIN_KEY) -> dict[str, Any]:
    r = await api.post("/api/v1/alert-channels", key, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def wait_deliveries(
    api: Api, channel: str, count: int = 1, timeout: float = 30
) -> list[dict[str, Any]]:
    """The channel's delivery log once ``count`` deliveries are no longer pending."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await api.get(f"/api/v1/alert-channels/{channel}/deliveries")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        settled = [d for d in items if d["status"] != "pending"]
        if len(settled) >= count:
            return items
        assert asyncio.get_running_loop().time() < deadline, items
        await asyncio.sleep(0.05)


async def audit_events(api: Api, event_type: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/audit", params={"eventType": event_type, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["events"]
