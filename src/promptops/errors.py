"""RFC 9457 problem details with stable machine-readable codes.

Every failure a client can cause is raised as a :class:`ProblemError` (or a subclass) by the service
layer; the REST face turns it into ``application/problem+json`` and the CLI prints its title and detail.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_BASE = "https://promptops.dev/problems/"


class ProblemError(Exception):
    """A client-visible error: HTTP status, stable code, human title and detail, optional extras."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationProblem(ProblemError):
    status = 422
    code = "validation_error"
    title = "Request validation failed"


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Permission denied"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class TemplateProblem(ProblemError):
    """A template that cannot be parsed or rendered (syntax, missing or mistyped variables, includes)."""

    status = 422
    code = "template_error"
    title = "Template error"
