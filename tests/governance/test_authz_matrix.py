"""Authorization matrix: every guarded route x every role x {user session, API key, revoked key, anonymous}.

Routes are discovered by walking the app (see ``route_guard_walk``), so a new route is covered without
editing this file. A route's permission is the one its ``Authorize`` guard declares; the expected answer
comes from ``ROLE_PERMISSIONS``:

* anonymous -> 401; a revoked key -> 401 (``api_key_revoked``);
* a role without the permission -> 403 (``permission_denied``);
* a role with it -> anything but 401/403 (200, 201, 204, 404, 409 and 422 all prove the guard let the
  request through) and never a 5xx.

All principals are set up once per database; one test per database loops over everything and reports every
mismatch at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from promptops.auth.deps import PUBLIC
from promptops.governance.rbac import ROLE_PERMISSIONS, Role
from tests.support.app import Api
from tests.support.route_guard_walk import RouteGuards, walk

EXAMPLE_PROMPT = "sentiment/few-shot"
# Path parameters by name. Ids are of rows that do not exist: a DELETE that gets through answers 404 and
# changes nothing, so later checks see the same data.
PATH_VALUES = {
    "name": EXAMPLE_PROMPT,
    "label": "staging",
    "key_id": "key_00000000000000000000000000",
    "user_id": "usr_00000000000000000000000000",
}
FALLBACK_BY_CONVERTOR = {"int": "999999", "float": "999999", "uuid": "00000000-0000-0000-0000-000000000000"}
BODY_METHODS = {"POST", "PUT", "PATCH"}
PARAM_RE = re.compile(r"{([^}:]+)(?::([^}]+))?}")
MEMBER_PASSWORD = "matrix-password-123"


def concrete_path(template: str) -> str:
    def value(match: re.Match[str]) -> str:
        name, convertor = match.group(1), match.group(2)
        if name == "name" and convertor != "path":
            return "no-such-name"  # a one-segment name (e.g. a provider connection) that does not exist
        if name in PATH_VALUES:
            return PATH_VALUES[name]
        return FALLBACK_BY_CONVERTOR.get(convertor or "", "does-not-exist")

    return PARAM_RE.sub(value, template)


@dataclass(frozen=True)
class Credential:
    kind: str  # session | key | revoked-key | anonymous
    role: Role | None
    headers: dict[str, str]

    @property
    def who(self) -> str:
        return f"{self.kind}:{self.role.value}" if self.role else self.kind


async def set_up_credentials(api: Api) -> list[Credential]:
    """For each role: a member's login session, an API key and a revoked API key; plus anonymous."""
    credentials: list[Credential] = []
    for role in Role:
        email = f"matrix-{role.value.lower()}@example.com"
        r = await api.post(
            "/api/v1/members", json={"email": email, "role": role.value, "password": MEMBER_PASSWORD}
        )
        assert r.status_code == 201, r.text
        r = await api.post("/api/v1/auth/login", None, json={"email": email, "password": MEMBER_PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["role"] == role.value
        credentials.append(Credential("session", role, Api.auth(r.json()["token"])))

        key = await api.make_key(role.value, name=f"matrix-{role.value}")
        credentials.append(Credential("key", role, Api.auth(key["key"])))

        revoked = await api.make_key(role.value, name=f"matrix-revoked-{role.value}")
        r = await api.delete(f"/api/v1/api-keys/{revoked['id']}")
        assert r.status_code == 200 and r.json()["revokedAt"], r.text
        credentials.append(Credential("revoked-key", role, Api.auth(revoked["key"])))
    credentials.append(Credential("anonymous", None, {}))
    # Login set the session cookie on the shared client; it would authenticate "anonymous" requests.
    api.client.cookies.clear()
    return credentials


def expectation(route: RouteGuards, credential: Credential) -> tuple[str, int | None, str | None]:
    """('deny', status, code) or ('allow', None, None)."""
    if credential.kind == "anonymous":
        return "deny", 401, "unauthenticated"
    if credential.kind == "revoked-key":
        return "deny", 401, "api_key_revoked"
    assert credential.role is not None
    if route.guard.permission in ROLE_PERMISSIONS[credential.role]:
        return "allow", None, None
    return "deny", 403, "permission_denied"


def mismatch(route: RouteGuards, method: str, credential: Credential, response: httpx.Response) -> str | None:
    outcome, status, code = expectation(route, credential)
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    got_code = body.get("code") if isinstance(body, dict) else None
    where = f"{method} {route.path} as {credential.who}"
    if outcome == "deny":
        if response.status_code != status or got_code != code:
            return f"{where}: expected {status} {code}, got {response.status_code} {got_code}"
        return None
    if response.status_code in (401, 403) or response.status_code >= 500:
        return (
            f"{where} (has {route.guard.permission.value}): expected to pass the guard, "
            f"got {response.status_code} {got_code}"
        )
    return None


def ordered(routes: list[RouteGuards]) -> list[RouteGuards]:
    """Logout last: an allowed session calling it is revoked, which would turn later checks into 401s."""
    return sorted(routes, key=lambda r: (r.path.endswith("/logout"), r.path))


async def test_authorization_matrix(api: Api) -> None:
    routes, _ = walk(api.app)
    guarded = ordered([r for r in routes if not r.is_public and not r.is_excluded])
    assert len(guarded) >= 25 and all(len(r.guards) == 1 for r in guarded)
    credentials = await set_up_credentials(api)
    assert len(credentials) == 3 * len(Role) + 1

    problems: list[str] = []
    checked = 0
    outcomes = {"allow": 0, "deny": 0}
    for route in guarded:
        path = concrete_path(route.path)
        for method in route.methods:
            # Denied principals first, so that allowed state-changing calls happen after every denial check.
            for credential in sorted(credentials, key=lambda c: expectation(route, c)[0] == "allow"):
                kwargs: dict[str, Any] = {"headers": credential.headers}
                if method in BODY_METHODS:
                    kwargs["json"] = {}
                response = await api.client.request(method, path, **kwargs)
                checked += 1
                outcomes[expectation(route, credential)[0]] += 1
                problem = mismatch(route, method, credential, response)
                if problem:
                    problems.append(problem)
    assert checked == sum(len(r.methods) for r in guarded) * len(credentials)
    assert outcomes["allow"] > 100 and outcomes["deny"] > 100, outcomes
    listing = "\n  ".join(problems)
    assert not problems, f"{len(problems)} of {checked} authorization checks failed:\n  {listing}"


async def test_public_routes_answer_anonymous_callers(api: Api) -> None:
    routes, _ = walk(api.app)
    for route in routes:
        if route.is_public:
            assert route.guard is PUBLIC
            for method in route.methods:
                kwargs: dict[str, Any] = {"json": {}} if method in BODY_METHODS else {}
                r = await api.client.request(method, concrete_path(route.path), **kwargs)
                # login with an empty body is a validation error, not an authentication demand
                assert r.status_code not in (401, 403) and r.status_code < 500, (
                    route.label,
                    r.status_code,
                    r.text,
                )
