"""Identity: login sessions and CSRF, API keys (shown once, hashed, expiry, revocation), members, projects."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from promptops.governance.rbac import ROLE_PERMISSIONS, Role
from tests.support.app import ADMIN_EMAIL, ADMIN_KEY, ADMIN_PASSWORD, Api

API_KEY_RE = re.compile(r"^po_[a-z0-9]{8}_[A-Za-z0-9_-]{32,64}$")
PROMPT = {"name": "identity/p", "template": "Hi {{ who }}", "variables": [{"name": "who"}]}


def engine_of(api: Api) -> AsyncEngine:
    engine: AsyncEngine = api.app.state.runtime.db.engine
    return engine


async def login(
    api: Api, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, **body: Any
) -> httpx.Response:
    r = await api.post("/api/v1/auth/login", None, json={"email": email, "password": password, **body})
    api.client.cookies.clear()  # keep the shared client anonymous unless a test sends a cookie on purpose
    return r


async def session_token(api: Api, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
    r = await login(api, email, password)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def add_member(
    api: Api, email: str, role: str, password: str | None = None, key: str = ADMIN_KEY, **body: Any
) -> httpx.Response:
    body.update(email=email, role=role)
    if password is not None:
        body["password"] = password
    return await api.post("/api/v1/members", key, json=body, headers=body.pop("headers", None))


def problem(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json().get("code")


async def rows_of_every_table(api: Api) -> dict[str, list[str]]:
    """Every row of every table, as text, to search for secrets."""
    async with engine_of(api).connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        return {
            name: [repr(tuple(row)) for row in (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()]
            for name in names
        }


# --- login sessions --------------------------------------------------------------------------------------------


async def test_login_with_right_and_wrong_password(api: Api) -> None:
    r = await login(api)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokenType"] == "bearer" and body["token"].startswith("pos_") and body["csrfToken"]
    assert body["email"] == ADMIN_EMAIL and body["role"] == "PromptOpsAdmin"
    assert datetime.fromisoformat(body["expiresAt"]) > datetime.now(UTC) + timedelta(hours=1)
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("promptops_session="))
    assert body["token"] in session_cookie and "httponly" in session_cookie.lower()
    assert any(c.startswith(f"promptops_csrf={body['csrfToken']}") for c in cookies)
    assert (await login(api, ADMIN_EMAIL.upper(), ADMIN_PASSWORD)).status_code == 200

    wrong_password = await login(api, ADMIN_EMAIL, "not-the-password")
    unknown_user = await login(api, "nobody@example.com", ADMIN_PASSWORD)
    for r in (wrong_password, unknown_user):
        assert problem(r) == (401, "invalid_credentials"), r.text
        assert "set-cookie" not in r.headers
    # the two failures are indistinguishable: nothing hints which part was wrong
    same = ("type", "title", "status", "detail", "code")
    assert {k: wrong_password.json()[k] for k in same} == {k: unknown_user.json()[k] for k in same}
    assert set(wrong_password.json()) == set(unknown_user.json())
    assert problem(await login(api, ADMIN_EMAIL, "")) == (422, "validation_error")


async def test_session_cookie_works_for_get_and_needs_csrf_for_writes(api: Api) -> None:
    r = await login(api)
    token, csrf = r.json()["token"], r.json()["csrfToken"]
    cookie = {"Cookie": f"promptops_session={token}"}

    r = await api.get("/api/v1/auth/me", None, headers=cookie)
    assert r.status_code == 200 and r.json()["kind"] == "user" and r.json()["name"] == ADMIN_EMAIL

    r = await api.post("/api/v1/prompts", None, json=PROMPT, headers=cookie)
    assert problem(r) == (403, "csrf_failed")
    r = await api.post("/api/v1/prompts", None, json=PROMPT, headers={**cookie, "X-CSRF-Token": "wrong"})
    assert problem(r) == (403, "csrf_failed")
    other_csrf = (await login(api)).json()["csrfToken"]  # another session's token does not do either
    r = await api.post("/api/v1/prompts", None, json=PROMPT, headers={**cookie, "X-CSRF-Token": other_csrf})
    assert problem(r) == (403, "csrf_failed")
    r = await api.patch("/api/v1/prompts/sentiment/few-shot", None, json={"description": "x"}, headers=cookie)
    assert problem(r) == (403, "csrf_failed")
    assert (await api.get("/api/v1/prompts/identity/p")).status_code == 404

    r = await api.post("/api/v1/prompts", None, json=PROMPT, headers={**cookie, "X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # a bearer session token is not a browser credential: no CSRF token needed
    r = await api.post("/api/v1/prompts", token, json={**PROMPT, "name": "identity/bearer"})
    assert r.status_code == 201, r.text

    # the cookies set by login work through a client's cookie jar as well
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://testserver"
    ) as browser:
        r = await browser.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert r.status_code == 200
        assert (await browser.get("/api/v1/auth/me")).status_code == 200
        r = await browser.post("/api/v1/prompts", json={**PROMPT, "name": "identity/jar"})
        assert problem(r) == (403, "csrf_failed")
        headers = {"X-CSRF-Token": browser.cookies["promptops_csrf"]}
        r = await browser.post("/api/v1/prompts", json={**PROMPT, "name": "identity/jar"}, headers=headers)
        assert r.status_code == 201, r.text


async def test_logout_revokes_the_session(api: Api) -> None:
    token = await session_token(api)
    other = await session_token(api)
    assert (await api.get("/api/v1/auth/me", token)).status_code == 200
    r = await api.post("/api/v1/auth/logout", token)
    assert r.status_code == 204, r.text
    for method, url in (
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/prompts"),
        ("POST", "/api/v1/auth/logout"),
    ):
        r = await api.request(method, url, token)
        assert problem(r) == (401, "session_invalid"), (url, r.text)
    assert (await api.get("/api/v1/auth/me", other)).status_code == 200  # other sessions stay valid
    # an API key is not a session
    assert problem(await api.post("/api/v1/auth/logout")) == (422, "not_a_session")
    # sign-ins and sign-outs are kept in the organization's chain (not the project's)
    r = await api.get("/api/v1/audit", params={"eventType": "UserLoggedOut", "chain": "org"})
    assert [e["user"] for e in r.json()["events"]] == [ADMIN_EMAIL]
    r = await api.get("/api/prompt/audit", params={"eventType": "UserLoggedOut"})
    assert r.json()["events"] == []


async def test_me_reports_principal_role_and_permissions(api: Api) -> None:
    token = await session_token(api)
    me = (await api.get("/api/v1/auth/me", token)).json()
    assert me["kind"] == "user" and me["name"] == ADMIN_EMAIL and me["id"].startswith("usr_")
    assert me["role"] == "PromptOpsAdmin"
    for role in Role:
        key = await api.make_key(role.value)
        r = await api.get("/api/v1/auth/me", key["key"])
        assert r.status_code == 200, r.text
        assert (
            r.json()["kind"] == "api_key" and r.json()["id"] == key["id"] and r.json()["role"] == role.value
        )
        assert r.json()["permissions"] == sorted(p.value for p in ROLE_PERMISSIONS[role])
        assert r.json()["projectId"] == me["projectId"] and r.json()["orgId"] == me["orgId"]


async def test_bad_credentials_are_401(api: Api) -> None:
    assert problem(await api.get("/api/v1/auth/me", None)) == (401, "unauthenticated")
    r = await api.get("/api/v1/auth/me", None, headers={"Authorization": f"Basic {ADMIN_KEY}"})
    assert problem(r) == (401, "invalid_authorization")
    r = await api.get("/api/v1/auth/me", None, headers={"Authorization": "Bearer "})
    assert problem(r) == (401, "invalid_authorization")
    assert problem(await api.get("/api/v1/auth/me", "po_short")) == (401, "invalid_credentials")
    unknown_key = "po_abcdefgh_" + "x" * 40
    assert problem(await api.get("/api/v1/auth/me", unknown_key)) == (401, "invalid_credentials")
    assert problem(await api.get("/api/v1/auth/me", "pos_" + "x" * 43)) == (401, "session_invalid")
    assert (await api.get("/api/v1/auth/me", None, headers={"X-API-Key": ADMIN_KEY})).status_code == 200


# --- API keys --------------------------------------------------------------------------------------------------


async def test_api_key_is_shown_once_and_stored_as_sha256(api: Api) -> None:
    r = await api.post("/api/v1/api-keys", json={"name": "ci", "role": "Viewer"})
    assert r.status_code == 201, r.text
    created = r.json()
    raw = created["key"]
    assert API_KEY_RE.match(raw) and created["prefix"] == raw[:11] and created["prefix"].startswith("po_")
    assert created["lastUsedAt"] is None and created["revokedAt"] is None and created["role"] == "Viewer"

    r = await api.get("/api/v1/api-keys")
    assert r.status_code == 200
    assert all("key" not in item for item in r.json())
    assert raw not in r.text and raw[11:] not in r.text
    listed = next(item for item in r.json() if item["id"] == created["id"])
    assert listed["prefix"] == created["prefix"] and listed["name"] == "ci"
    assert ADMIN_KEY not in r.text

    async with engine_of(api).connect() as conn:
        rows = (
            await conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]})
        ).mappings()
        row = dict(rows.one())
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert not [column for column, value in row.items() if value is not None and raw[11:] in str(value)]
    tables = await rows_of_every_table(api)
    holding = {name for name, rows in tables.items() if any(raw[11:] in row for row in rows)}
    assert holding == set(), f"the raw key is stored in {holding}"
    for secret in (ADMIN_KEY[11:], ADMIN_PASSWORD):
        assert not {name for name, rows in tables.items() if any(secret in row for row in rows)}


async def test_idempotent_key_creation_does_not_store_the_raw_key(api: Api) -> None:
    r = await api.post(
        "/api/v1/api-keys", json={"name": "retried", "role": "Viewer"}, headers={"Idempotency-Key": "key-1"}
    )
    assert r.status_code == 201, r.text
    raw = r.json()["key"]
    tables = await rows_of_every_table(api)
    holding = {name for name, rows in tables.items() if any(raw[11:] in row for row in rows)}
    assert holding == set(), f"the raw key is stored in {holding}"


async def test_api_key_expiry(api: Api) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    r = await api.post("/api/v1/api-keys", json={"name": "old", "role": "Viewer", "expiresAt": past})
    assert problem(r) == (422, "invalid_expiry")

    expires = datetime.now(UTC) + timedelta(seconds=1)
    r = await api.post(
        "/api/v1/api-keys", json={"name": "short", "role": "Viewer", "expiresAt": expires.isoformat()}
    )
    assert r.status_code == 201, r.text
    short = r.json()["key"]
    assert datetime.fromisoformat(r.json()["expiresAt"]) == expires
    assert (await api.get("/api/v1/auth/me", short)).status_code == 200  # valid now (and cached)
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    assert problem(await api.get("/api/v1/auth/me", short)) == (401, "api_key_expired")

    # expiry set in the database directly
    key = await api.make_key("Viewer", name="db-expired")
    async with engine_of(api).begin() as conn:
        await conn.execute(
            text("UPDATE api_keys SET expires_at = :t WHERE id = :id"),
            {"t": datetime.now(UTC) - timedelta(minutes=1), "id": key["id"]},
        )
    assert problem(await api.get("/api/v1/auth/me", key["key"])) == (401, "api_key_expired")


async def test_last_used_at_is_set_after_use(api: Api) -> None:
    key = await api.make_key("Viewer", name="usage")
    assert key["lastUsedAt"] is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert (await api.get("/api/v1/prompts", key["key"])).status_code == 200
    listed = next(k for k in (await api.get("/api/v1/api-keys")).json() if k["id"] == key["id"])
    assert listed["lastUsedAt"] is not None
    assert before <= datetime.fromisoformat(listed["lastUsedAt"]) <= datetime.now(UTC) + timedelta(seconds=1)


async def test_revoked_key_stops_working_at_once(api: Api) -> None:
    key = await api.make_key("PromptEngineer", name="to-revoke")
    for _ in range(3):  # used, and therefore cached
        assert (await api.get("/api/v1/prompts", key["key"])).status_code == 200
    r = await api.delete(f"/api/v1/api-keys/{key['id']}")
    assert r.status_code == 200 and r.json()["revokedAt"] is not None and "key" not in r.json()
    for method, url in (("GET", "/api/v1/prompts"), ("POST", "/api/v1/prompts")):
        r = await api.request(method, url, key["key"], json=PROMPT if method == "POST" else None)
        assert problem(r) == (401, "api_key_revoked"), r.text
    r = await api.delete(f"/api/v1/api-keys/{key['id']}")  # again: no change, no second event
    assert r.status_code == 200
    r = await api.get("/api/prompt/audit", params={"eventType": "ApiKeyRevoked"})
    assert [e["data"]["apiKeyId"] for e in r.json()["events"]] == [key["id"]]
    assert problem(await api.delete("/api/v1/api-keys/key_nonexistent")) == (404, "api_key_not_found")
    listed = next(k for k in (await api.get("/api/v1/api-keys")).json() if k["id"] == key["id"])
    assert listed["revokedAt"] is not None


# --- members ---------------------------------------------------------------------------------------------------


async def test_members_add_duplicate_and_change_role(api: Api) -> None:
    r = await add_member(api, "New.Member@Example.com", "QAAnalyst", "member-pass-1", name="New")
    assert r.status_code == 201, r.text
    member = r.json()
    assert member["email"] == "new.member@example.com" and member["role"] == "QAAnalyst"
    assert member["userId"].startswith("usr_") and member["name"] == "New"
    r = await login(api, "new.member@example.com", "member-pass-1")
    assert r.status_code == 200 and r.json()["role"] == "QAAnalyst"
    token = r.json()["token"]

    assert problem(await add_member(api, "new.member@example.com", "Viewer")) == (409, "member_exists")
    r = await add_member(api, "NEW.MEMBER@example.com", "Viewer", "other-pass-1")
    assert r.status_code in (409, 422), r.text  # rejected (the password of an existing user is not reset)
    assert (await login(api, "new.member@example.com", "other-pass-1")).status_code == 401
    members = {m["email"]: m["role"] for m in (await api.get("/api/v1/members")).json()}
    assert members["new.member@example.com"] == "QAAnalyst"
    assert problem(await add_member(api, "ghost@example.com", "Viewer")) == (422, "password_required")
    assert problem(await add_member(api, "bad-email", "Viewer", "member-pass-1"))[0] == 422
    assert problem(await add_member(api, "x@example.com", "Superuser", "member-pass-1"))[0] == 422

    r = await api.patch(f"/api/v1/members/{member['userId']}", json={"role": "PromptEngineer"})
    assert r.status_code == 200 and r.json()["role"] == "PromptEngineer", r.text
    # The open session ended with the role change; the next login carries the new role.
    assert problem(await api.get("/api/v1/auth/me", token)) == (401, "session_invalid")
    token = (await login(api, "new.member@example.com", "member-pass-1")).json()["token"]
    me = (await api.get("/api/v1/auth/me", token)).json()
    assert me["role"] == "PromptEngineer"
    assert "label:deploy" in me["permissions"]
    r = await api.patch(f"/api/v1/members/{member['userId']}", json={"role": "PromptEngineer"})
    assert r.status_code == 200
    r = await api.get("/api/prompt/audit", params={"eventType": "MemberRoleChanged"})
    assert len(r.json()["events"]) == 1  # the no-op change is not an event

    members = {m["email"]: m["role"] for m in (await api.get("/api/v1/members")).json()}
    assert members == {ADMIN_EMAIL: "PromptOpsAdmin", "new.member@example.com": "PromptEngineer"}
    r = await api.patch("/api/v1/members/usr_nobody", json={"role": "Viewer"})
    assert problem(r) == (404, "member_not_found")
    assert problem(await api.delete("/api/v1/members/usr_nobody")) == (404, "member_not_found")

    assert (await api.delete(f"/api/v1/members/{member['userId']}")).status_code == 204
    r = await api.get("/api/v1/auth/me", token)
    assert r.status_code in (401, 403), r.text  # no membership left in any project


async def test_weak_password_is_rejected(api: Api) -> None:
    for weak in ("short", "1234567"):
        r = await add_member(api, "weak@example.com", "Viewer", weak)
        assert r.status_code == 422, r.text
        assert "password" in r.text.lower()
    assert "weak@example.com" not in {m["email"] for m in (await api.get("/api/v1/members")).json()}
    assert (await login(api, "weak@example.com", "short")).status_code == 401


async def test_last_admin_cannot_be_removed_or_demoted(api: Api) -> None:
    admin_id = (await api.get("/api/v1/auth/me", await session_token(api))).json()["id"]
    assert problem(await api.delete(f"/api/v1/members/{admin_id}")) == (409, "last_admin")
    r = await api.patch(f"/api/v1/members/{admin_id}", json={"role": "Viewer"})
    assert problem(r) == (409, "last_admin")
    # an API key with the admin role is not a member: it does not count as another admin
    await api.make_key("PromptOpsAdmin", name="another-admin-key")
    assert problem(await api.delete(f"/api/v1/members/{admin_id}")) == (409, "last_admin")
    members = {m["userId"]: m["role"] for m in (await api.get("/api/v1/members")).json()}
    assert members[admin_id] == "PromptOpsAdmin"

    r = await add_member(api, "second-admin@example.com", "PromptOpsAdmin", "second-admin-pass-2")
    second = r.json()["userId"]
    r = await api.patch(f"/api/v1/members/{admin_id}", json={"role": "Viewer"})
    assert r.status_code == 200 and r.json()["role"] == "Viewer"
    assert problem(await api.delete(f"/api/v1/members/{second}")) == (409, "last_admin")
    r = await api.patch(f"/api/v1/members/{second}", json={"role": "Viewer"})
    assert problem(r) == (409, "last_admin")
    r = await api.patch(f"/api/v1/members/{admin_id}", json={"role": "PromptOpsAdmin"})
    assert r.status_code == 200
    assert (await api.delete(f"/api/v1/members/{second}")).status_code == 204


# --- projects --------------------------------------------------------------------------------------------------


async def test_x_project_selects_among_a_users_projects(api: Api) -> None:
    token = await session_token(api)
    default = (await api.get("/api/v1/auth/me", token)).json()
    r = await api.post("/api/v1/projects", token, json={"name": "team-b"})
    assert r.status_code == 201, r.text
    team_b = r.json()
    r = await api.post("/api/v1/projects", token, json={"name": "team-b"})
    assert problem(r) == (409, "project_exists")
    assert problem(await api.post("/api/v1/projects", token, json={"name": "Team B!"}))[0] == 422

    r = await api.get("/api/v1/projects", token)
    assert {(p["name"], p["role"]) for p in r.json()} == {
        ("default", "PromptOpsAdmin"),
        ("team-b", "PromptOpsAdmin"),
    }
    for ref in ("team-b", team_b["id"]):
        me = (await api.get("/api/v1/auth/me", token, headers={"X-Project": ref})).json()
        assert me["projectId"] == team_b["id"] and me["role"] == "PromptOpsAdmin", ref
    assert (await api.get("/api/v1/auth/me", token)).json()["projectId"] == default["projectId"]
    r = await api.get("/api/v1/auth/me", token, headers={"X-Project": "no-such-project"})
    assert problem(r) == (404, "project_not_found")
    r = await login(api, project="team-b")
    assert r.status_code == 200 and r.json()["projectId"] == team_b["id"]
    assert problem(await login(api, project="no-such-project")) == (404, "project_not_found")

    # one user, different roles per project
    assert (await add_member(api, "both@example.com", "QAAnalyst", "both-pass-123")).status_code == 201
    r = await add_member(api, "both@example.com", "Viewer", key=token, headers={"X-Project": "team-b"})
    assert r.status_code == 201, r.text
    assert r.json()["projectId"] == team_b["id"]
    both = await session_token(api, "both@example.com", "both-pass-123")
    assert (await api.get("/api/v1/auth/me", both)).json()["role"] == "QAAnalyst"
    me = (await api.get("/api/v1/auth/me", both, headers={"X-Project": "team-b"})).json()
    assert me["role"] == "Viewer" and me["projectId"] == team_b["id"]

    # a user who is not a member of a project cannot select it (404, as if it did not exist)
    assert (await add_member(api, "only-a@example.com", "PromptOpsAdmin", "only-a-pass-1")).status_code == 201
    only_a = await session_token(api, "only-a@example.com", "only-a-pass-1")
    r = await api.get("/api/v1/auth/me", only_a, headers={"X-Project": "team-b"})
    assert problem(r) == (404, "project_not_found")
