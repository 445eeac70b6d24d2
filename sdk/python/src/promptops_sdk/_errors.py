"""Errors the SDK raises: API problems (with the server's stable ``code``), template problems, unavailability."""

from __future__ import annotations

from typing import Any


class PromptOpsError(Exception):
    """Base class of every SDK error."""


class ApiError(PromptOpsError):
    """The server answered with a problem (``application/problem+json``): ``status``, ``code`` and the body."""

    def __init__(self, status: int, code: str, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem or {}


class UnavailableError(PromptOpsError):
    """The server could not be reached or answered 5xx, and no cached copy or fallback was available."""


class TemplateError(PromptOpsError):
    """A template could not be rendered; ``code`` and ``extra`` match the server's problem for the same case
    (``missing_variables`` with ``missing``, ``invalid_variable_type`` with ``errors``, ...)."""

    def __init__(self, detail: str, code: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.extra = extra

    @property
    def missing(self) -> list[str]:
        return list(self.extra.get("missing", []))


def api_error(status: int, body: Any) -> ApiError:
    """An :class:`ApiError` from a response's status and decoded JSON body (a problem or anything else)."""
    problem = body if isinstance(body, dict) else {}
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    return ApiError(status, code, detail, problem)
