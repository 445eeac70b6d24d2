"""Route guards: every route depends on exactly one :class:`Authorize` (one permission) or on :data:`PUBLIC`.

A test walks the app's routes and fails on any route without exactly one guard.
"""

from __future__ import annotations

from fastapi import Request

from promptops.auth import service
from promptops.auth.principal import Principal
from promptops.auth.tokens import digest
from promptops.db import utcnow
from promptops.errors import Forbidden, Unauthenticated
from promptops.governance.rbac import Permission
from promptops.runtime import runtime_of

SESSION_COOKIE = "promptops_session"
CSRF_COOKIE = "promptops_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def forget_api_keys(request: Request) -> None:
    """Drop cached keys after a revocation: the revoked key must stop working at once; refilling is cheap."""
    runtime_of(request).api_key_cache.invalidate()


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "Authorization header must be 'Bearer <token>'", code="invalid_authorization"
            )
        return token.strip()
    return request.headers.get("x-api-key")


async def authenticate(request: Request) -> Principal:
    """The principal behind the request's API key, bearer session token or session cookie."""
    runtime = runtime_of(request)
    token = _bearer(request)
    from_cookie = False
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        from_cookie = token is not None
    if not token:
        raise Unauthenticated("Send an API key or session token as 'Authorization: Bearer <token>'")
    if token.startswith("po_"):

        async def load() -> service.KeyAuth:
            auth = await runtime.db.read(lambda session: service.authenticate_api_key(session, token))
            if auth.needs_touch:
                async with runtime.db.transaction(write=True) as session:
                    await service.touch_api_key(session, auth.key_id)
            return auth

        auth = await runtime.api_key_cache.get_or_load(digest(token), load)
        if auth.expires_at is not None and auth.expires_at <= utcnow():
            raise Unauthenticated("This API key has expired", code="api_key_expired")
        return auth.principal
    async with runtime.db.transaction() as session:
        principal, user_session = await service.authenticate_session(
            session, token, request.headers.get("x-project")
        )
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not sent or sent != user_session.csrf_token:
            raise Forbidden("Missing or wrong X-CSRF-Token header for a cookie session", code="csrf_failed")
    return principal


class Authorize:
    """Dependency: authenticate, then require one permission. Returns the principal."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        principal = await authenticate(request)
        principal.require(self.permission)
        request.state.principal = principal
        return principal

    def __repr__(self) -> str:
        return f"Authorize({self.permission.value})"


class Public:
    """Dependency marking a route as deliberately open to anonymous callers."""

    async def __call__(self) -> None:
        return None


PUBLIC = Public()


def require(permission: Permission) -> Authorize:
    return Authorize(permission)
