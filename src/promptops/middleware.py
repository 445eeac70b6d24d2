"""ASGI middleware: request ids, body size limit, access log and Prometheus metrics in one pass."""

from __future__ import annotations

import itertools
import re
import secrets
import time

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promptops.context import request_id_var
from promptops.errors import PayloadTooLarge, ProblemError
from promptops.logging import log
from promptops.validation import target_problem

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# Request ids: 64 random bits per process, then a counter (32 hex digits in all). Unique across processes and
# replicas like a UUID, without a call to the OS random source on every request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "promptops_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "promptops_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


# Dataset uploads and promptfoo imports (a config with its test files) carry files.
UPLOAD_PATH_RE = re.compile(
    r"^/api/v1/(?:datasets(?:/.+/(?:import|versions))?|evals/import/promptfoo|packs/import)$"
)


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics, max_upload_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Dataset uploads (create, import, new version) carry files; every other body keeps the small limit.
        self.max_upload_bytes = max(max_upload_bytes or max_body_bytes, max_body_bytes)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and REQUEST_ID_RE.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        limit = self.max_upload_bytes if UPLOAD_PATH_RE.match(scope.get("path", "")) else self.max_body_bytes
        too_large = PayloadTooLarge(f"Request body exceeds {limit} bytes", limit=limit)
        state = {"status": 500, "started": False, "too_large": False}
        declared = _header(scope, b"content-length")
        early: ProblemError | None = (
            too_large if declared and declared.isdigit() and int(declared) > limit else None
        )
        early = early or target_problem(scope["path"], scope.get("query_string", b""))
        if early:
            await _send_problem(send, early, scope, request_id)
            self._finish(scope, early.status, started)
            request_id_var.reset(token)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The framework turns errors raised while reading into its own 400; remember the real cause.
                    state["too_large"] = True
                    raise too_large
            return message

        async def send_with_id(message: Message) -> None:
            if state["too_large"]:
                if message["type"] == "http.response.start":
                    state["status"], state["started"] = 413, True
                    await _send_problem(send, too_large, scope, request_id)
                return
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except Exception as exc:
            # Answer here, inside the request context, so the 500 carries the request id (header and body).
            log.exception("unhandled_error", path=scope["path"], error_type=type(exc).__name__)
            if not state["started"]:
                state["status"] = 500
                await _send_problem(send, InternalError(), scope, request_id)
        finally:
            self._finish(scope, int(state["status"]), started)
            request_id_var.reset(token)

    def _finish(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.latency.labels(method, template).observe(elapsed)
        log.info(
            "request",
            method=method,
            path=scope["path"],
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


class InternalError(ProblemError):
    status = 500
    code = "internal_error"
    title = "Internal server error"

    def __init__(self) -> None:
        super().__init__("An unexpected error occurred; quote the request id when reporting it.")


async def _send_problem(send: Send, error: ProblemError, scope: Scope, request_id: str) -> None:
    body = orjson.dumps({**error.to_problem(scope["path"]), "requestId": request_id})
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
