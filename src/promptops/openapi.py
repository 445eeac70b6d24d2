"""The OpenAPI document tells the truth about errors: every operation declares the problem responses it can give.

FastAPI documents only the success response and a 422 in its own ``HTTPValidationError`` shape. The server
actually answers every error as ``application/problem+json`` (:mod:`promptops.errors`, the handlers in
:mod:`promptops.app`, the body limit in :mod:`promptops.middleware`). :func:`install_openapi` post-processes the
generated document once: it adds a ``Problem`` schema and, per operation, the statuses that operation can
return, derived from its guard (public or authenticated), its path parameters, its body and method, and a short
table of the exceptions (conflicts, model calls, readiness). The stable codes are in docs/api.md section 1.5.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.routing import APIRoute

from promptops.auth.deps import PUBLIC

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document. Program against `code` (docs/api.md section 1.5); some codes add "
    "fields (`permission`, `missing`, `limit`, `runId`, `retryAfter`, `findings`, ...).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "`https://promptops.dev/problems/<code>`"},
        "title": {"type": "string", "description": "Short summary of the problem class"},
        "status": {"type": "integer", "description": "The HTTP status"},
        "detail": {"type": "string", "description": "Explanation of this occurrence"},
        "code": {"type": "string", "description": "Stable machine-readable code"},
        "instance": {"type": "string", "description": "The request path"},
        "requestId": {"type": "string", "description": "Also sent as the X-Request-ID header"},
        "errors": {
            "type": "array",
            "description": "`validation_error`: `{loc, msg, type}` per field error; "
            "`invalid_variable_type`: `{name, expected, got}`",
            "items": {"type": "object", "additionalProperties": True},
        },
    },
    "additionalProperties": True,
}

# What each problem status means here, with its most common codes (the full table: docs/api.md section 1.5).
DESCRIPTIONS = {
    400: "A bad single sign-on callback: `sso_state_invalid`, `sso_state_expired`, `sso_browser_mismatch`",
    401: "Not authenticated: `unauthenticated`, `invalid_authorization`, `invalid_credentials`, "
    "`api_key_revoked`, `api_key_expired`, `session_invalid`, `user_disabled`, `sso_required`, `sso_*`",
    403: "Not allowed: `permission_denied`, `csrf_failed`, `no_membership`, `user_required`",
    404: "A named resource does not exist in the project (`prompt_not_found`, `version_not_found`, "
    "`label_not_found`, `project_not_found`, ... `not_found`)",
    409: "Conflicts with the current state (`prompt_exists`, `prompt_archived`, `rollback_noop`, "
    "`lint_blocked`, `member_exists`, `last_admin`, `connection_exists`, ...)",
    413: "`payload_too_large`: the body exceeds the configured limit",
    422: "`validation_error` (schema validation, with `errors[]`) or a business rule "
    "(`invalid_prompt_name`, `invalid_cursor`, `ambiguous_selector`, template errors, ...)",
    429: "`provider_rate_limited`: the model provider asked to slow down (`retryAfter`); `login_locked`: too many "
    "failed logins (`Retry-After`)",
    500: "`internal_error`: an unexpected server error (quote `requestId`)",
    502: "The model provider failed: `provider_auth_failed`, `provider_unavailable`, `provider_error`; or the "
    "identity provider could not be reached: `sso_idp_unavailable`",
    503: "`not_ready`: the database is not reachable",
    504: "`provider_timeout`: the model provider did not answer in time",
}

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

# Authenticated writes that never answer 409 (everything else that writes may meet a conflict).
NO_CONFLICT = frozenset(
    {
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/api-keys"),
        ("delete", "/api/v1/api-keys/{key_id}"),
        ("post", "/api/v1/lint"),
        ("post", "/api/v1/prompts/{name}/render"),
        ("post", "/api/v1/feedback"),
        ("post", "/api/prompt/feedback"),
        ("put", "/api/v1/models/prices"),
        ("post", "/api/v1/playground/run"),
        ("post", "/api/prompt/evaluate"),
    }
)

MODEL_CALL_STATUSES = (422, 429, 502, 504)
# Statuses that the rules below cannot see from an operation's shape.
EXTRA_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("get", "/readyz"): (503,),
    ("post", "/api/v1/auth/login"): (401, 429),  # invalid_credentials, totp_*; login_locked
    ("get", "/api/v1/auth/totp"): (422,),  # not_a_session: two-factor settings belong to a user session
    ("post", "/api/v1/auth/totp"): (422,),  # not_a_session
    ("post", "/api/v1/privacy/retention/apply"): (422,),
    ("post", "/api/v1/auth/logout"): (422,),  # not_a_session: logout with an API key
    ("get", "/api/v1/auth/sso/{provider}/login"): (502,),  # sso_idp_unavailable
    # sso_state_*, the ID token and claim checks, sso_account_exists, sso_idp_unavailable
    ("get", "/api/v1/auth/sso/{provider}/callback"): (400, 401, 409, 502),
    ("post", "/api/v1/sso/providers"): (502,),  # sso_idp_unavailable: the issuer's discovery failed
    ("post", "/api/v1/playground/run"): MODEL_CALL_STATUSES,
    ("post", "/api/prompt/evaluate"): MODEL_CALL_STATUSES,
    ("post", "/api/prompt/generate"): MODEL_CALL_STATUSES,
    ("post", "/api/prompt/refine"): MODEL_CALL_STATUSES,
}

_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def _route_contexts(app: FastAPI) -> Iterator[Any]:
    """Every effective route (prefix and router dependencies applied), flattening included routers."""
    iterate = getattr(routing, "iter_route_contexts", None)
    if iterate is None:  # pragma: no cover - FastAPI before 0.163 copied routes flat into app.routes
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in iterate(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _is_public(dependant: Any) -> bool:
    return any(dep.call is PUBLIC or _is_public(dep) for dep in dependant.dependencies)


def public_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route guarded by ``PUBLIC`` instead of an ``Authorize``."""
    found: set[tuple[str, str]] = set()
    for route in _route_contexts(app):
        if _is_public(route.dependant):
            path = _CONVERTER.sub(r"{\1}", route.path)
            found.update((method.lower(), path) for method in route.methods or ())
    return found


def problem_statuses(method: str, path: str, operation: dict[str, Any], public: bool) -> set[int]:
    """The problem statuses one operation can answer with."""
    has_body = "requestBody" in operation
    names_resource = "{" in path
    statuses = {500, *EXTRA_STATUSES.get((method, path), ())}
    if not public:
        # Any authenticated request may name a project it cannot see (X-Project): 404 project_not_found.
        statuses |= {401, 403, 404}
        if method in WRITE_METHODS and (method, path) not in NO_CONFLICT:
            statuses.add(409)
    if names_resource or has_body:
        statuses.add(404)
    if has_body:
        statuses.add(413)
    if has_body or operation.get("parameters") or "422" in operation.get("responses", {}):
        statuses.add(422)
    return statuses


def document_problems(schema: dict[str, Any], public: set[tuple[str, str]]) -> dict[str, Any]:
    """Add the ``Problem`` schema and every operation's problem responses to a generated document (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(problem_statuses(method, path, operation, (method, path) in public)):
                responses[str(status)] = {
                    "description": DESCRIPTIONS[status],
                    "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
                }
    # FastAPI's own validation error shapes are never sent (the 422 handler answers a Problem).
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with the problem responses (built once, then cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate(), public_operations(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
