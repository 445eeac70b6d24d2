"""Errors in the providers' own wire shapes.

An OpenAI client reads ``{"error": {"message", "type", "param", "code"}}``; an Anthropic client reads
``{"type": "error", "error": {"type", "message"}}``. Both bodies also carry PromptOps' stable ``code`` at the
top level (clients ignore unknown keys), so the same codes as the rest of the API can be matched on.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response

from promptops.context import current_request_id
from promptops.errors import ProblemError

Wire = Literal["openai", "anthropic"]

OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def wire_of(request: Request) -> Wire:
    """Which protocol a request speaks: the Messages API, or an Anthropic client (its version header)."""
    if request.url.path.endswith("/messages") or request.headers.get("anthropic-version"):
        return "anthropic"
    return "openai"


class GatewayError(Exception):
    """A failure answered in the caller's wire format (rendered by :func:`error_response`)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        wire: Wire = "openai",
        param: str | None = None,
        retry_after: float | None = None,
        kind: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.wire = status, message, code, wire
        self.param, self.retry_after, self.kind = param, retry_after, kind
        self.extra = extra or {}  # more top-level fields of the body (e.g. which limit was reached)

    @classmethod
    def from_problem(cls, problem: ProblemError, wire: Wire) -> GatewayError:
        retry = problem.extra.get("retryAfter") if isinstance(problem.extra, dict) else None
        return cls(problem.status, problem.detail, problem.code, wire=wire, retry_after=retry)

    def body(self) -> dict[str, Any]:
        if self.wire == "anthropic":
            kind = self.kind or ANTHROPIC_TYPES.get(self.status, "api_error")
            return {
                "type": "error",
                "error": {"type": kind, "message": self.message},
                "request_id": current_request_id(),
                "code": self.code,
                **self.extra,
            }
        kind = self.kind or OPENAI_TYPES.get(
            self.status, "server_error" if self.status >= 500 else "api_error"
        )
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code},
            "code": self.code,
            **self.extra,
        }

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


def error_response(error: GatewayError) -> Response:
    return Response(
        orjson.dumps(error.body()),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers(),
    )
