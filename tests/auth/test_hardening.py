"""Identity hardening through the REST API, on SQLite and PostgreSQL: the password policy, failed-login lockout
(per email and per client address), the TOTP second factor, API keys narrower than their role, the key-expiry
policy, sessions ended by a role change, and the security headers (CSP) on pages, docs and API answers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api, open_api
from tests.support.tenancy import login

LOGIN = "/api/v1/auth/login"
STRONG = "violet-harbour-lantern-42"


@pytest.fixture
async def strict(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """An app with a small lockout threshold and a key-expiry policy."""
    api, client, lifespan = await open_api(
        db_url, tmp_path, login_max_failures=3, login_ip_max_failures=8, api_key_max_days=30
    )
    try:
        yield api
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def _member(
    api: Api, email: str, role: str = "PromptEngineer", password: str = STRONG
) -> dict[str, Any]:
    r = await api.post("/api/v1/members", json={"email": email, "role": role, "password": password})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _login(api: Api, email: str, password: str, **body: Any) -> Any:
    r = await api.post(LOGIN, None, json={"email": email, "password": password, **body})
    api.client.cookies.clear()
    return r


# --- password policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1", "too easy to guess"),
        ("qwertyuiop", "too easy to guess"),
    ],
)
async def test_weak_passwords_are_refused_with_the_reason(api: Api, password: str, why: str) -> None:
    r = await api.post(
        "/api/v1/members", json={"email": "w@example.com", "role": "Viewer", "password": password}
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "weak_password" and why in r.json()["detail"]
    assert (await api.get("/api/v1/members")).json() and all(
        m["email"] != "w@example.com" for m in (await api.get("/api/v1/members")).json()
    )


async def test_a_password_made_of_the_users_own_name_is_weak(api: Api) -> None:
    body = {"email": "margaret.hamilton@example.com", "role": "Viewer", "password": "margarethamilton"}
    r = await api.post("/api/v1/members", json=body)
    assert r.status_code == 422 and r.json()["code"] == "weak_password"
    await _member(api, "margaret.hamilton@example.com", "Viewer", STRONG)


# --- lockout --------------------------------------------------------------------------------------------------


async def test_repeated_failures_lock_the_account_and_a_success_clears_the_count(strict: Api) -> None:
    await _member(strict, "lock@example.com")
    for _ in range(2):
        assert (await _login(strict, "lock@example.com", "wrong-password")).status_code == 401
    assert (await _login(strict, "lock@example.com", STRONG)).status_code == 200  # clears the count
    for _ in range(2):
        assert (await _login(strict, "lock@example.com", "wrong-password")).status_code == 401
    assert (await _login(strict, "lock@example.com", STRONG)).status_code == 200
    for _ in range(3):
        assert (await _login(strict, "lock@example.com", "wrong-password")).status_code == 401
    locked = await _login(strict, "lock@example.com", STRONG)  # even the right password now
    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "login_locked" and "this account" in locked.json()["detail"]
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    # Other accounts are not affected.
    assert (await _login(strict, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200


async def test_an_unknown_email_locks_exactly_like_a_known_one(strict: Api) -> None:
    for _ in range(3):
        r = await _login(strict, "nobody@example.com", "wrong-password")
        assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await _login(strict, "nobody@example.com", "wrong-password")
    assert r.status_code == 429 and r.json()["code"] == "login_locked"


async def test_password_spraying_from_one_address_locks_the_address(strict: Api) -> None:
    for i in range(8):  # 8 different emails, 1 failure each: no account reaches its limit
        assert (await _login(strict, f"spray{i}@example.com", "Winter2026!")).status_code == 401
    r = await _login(strict, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert r.status_code == 429 and "this address" in r.json()["detail"]


# --- TOTP -----------------------------------------------------------------------------------------------------


async def test_two_factor_enrolment_login_replay_and_removal(api: Api) -> None:
    await _member(api, "totp@example.com")
    token = (await login(api, "totp@example.com", STRONG))["token"]
    state = await api.get("/api/v1/auth/totp", token)
    assert state.json() == {"enabled": False, "pending": False, "confirmedAt": None}

    setup = await api.post("/api/v1/auth/totp", token)
    assert setup.status_code == 201, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["otpauthUri"].startswith(
        "otpauth://totp/PromptOps:totp%40example.com?secret=" + secret
    )
    totp = pyotp.TOTP(secret)
    assert (await api.get("/api/v1/auth/totp", token)).json()["pending"] is True
    bad = await api.post("/api/v1/auth/totp/confirm", token, json={"code": "000000"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_totp"
    ok = await api.post("/api/v1/auth/totp/confirm", token, json={"code": totp.now()})
    assert ok.status_code == 200 and ok.json()["enabled"] is True, ok.text
    again = await api.post("/api/v1/auth/totp", token)
    assert again.status_code == 409 and again.json()["code"] == "totp_enabled"

    # A password login now needs a code; a wrong one fails; a code works once.
    r = await _login(api, "totp@example.com", STRONG)
    assert r.status_code == 401 and r.json()["code"] == "totp_required"
    r = await _login(api, "totp@example.com", STRONG, totpCode="123456")
    assert r.status_code == 401 and r.json()["code"] == "invalid_totp"
    code = totp.at(time.time() + 30)  # the next step (the current one was used to confirm)
    r = await _login(api, "totp@example.com", STRONG, totpCode=code)
    assert r.status_code == 200, r.text
    session = r.json()["token"]
    replay = await _login(api, "totp@example.com", STRONG, totpCode=code)
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_totp"

    off = await api.post("/api/v1/auth/totp/disable", session, json={"code": totp.at(time.time() - 30)})
    assert off.status_code == 422  # an older step than the last used one is refused too
    await _wait_for_next_step(totp)
    off = await api.post("/api/v1/auth/totp/disable", session, json={"code": totp.now()})
    assert off.status_code == 200 and off.json()["enabled"] is False, off.text
    assert (await _login(api, "totp@example.com", STRONG)).status_code == 200

    audit = (await api.get("/api/v1/audit?limit=50")).json()
    kinds = [e["eventType"] for e in audit["events"]]
    assert "TwoFactorEnabled" in kinds and "TwoFactorDisabled" in kinds


async def _wait_for_next_step(totp: pyotp.TOTP) -> None:
    """The last accepted code is for the step after the current one: wait until that step is the past."""
    import asyncio

    step = int(time.time()) // totp.interval
    while int(time.time()) // totp.interval <= step + 1:
        await asyncio.sleep(0.5)


async def test_two_factor_belongs_to_users_not_api_keys(api: Api) -> None:
    r = await api.post("/api/v1/auth/totp")
    assert r.status_code == 422 and r.json()["code"] == "not_a_session"


# --- API key scopes and expiry policy -------------------------------------------------------------------------


async def test_a_read_only_key_reads_but_cannot_write(api: Api) -> None:
    r = await api.post(
        "/api/v1/api-keys", json={"name": "ro", "role": "PromptEngineer", "permissions": ["read"]}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["permissions"] and all(p.endswith(":read") for p in created["permissions"])
    key = created["key"]
    assert (await api.get("/api/v1/prompts", key)).status_code == 200
    me = (await api.get("/api/v1/auth/me", key)).json()
    assert sorted(me["permissions"]) == created["permissions"]
    w = await api.post("/api/v1/prompts", key, json={"name": "ro/x", "template": "hi"})
    assert w.status_code == 403 and w.json()["code"] == "permission_denied"
    assert w.json()["permission"] == "prompt:write"
    listed = {k["id"]: k for k in (await api.get("/api/v1/api-keys")).json()}
    assert listed[created["id"]]["permissions"] == created["permissions"]


async def test_key_permissions_must_narrow_the_role(api: Api) -> None:
    cases = [
        ({"role": "Viewer", "permissions": ["prompt:write"]}, "does not grant prompt:write"),
        ({"role": "Viewer", "permissions": ["prompt:fly"]}, "unknown permission"),
        ({"role": "Viewer", "permissions": []}, "at least one"),
    ]
    for body, why in cases:
        r = await api.post("/api/v1/api-keys", json={"name": "k", **body})
        assert (
            r.status_code == 422 and r.json()["code"] == "invalid_permissions" and why in r.json()["detail"]
        ), r.text


async def test_a_limited_key_cannot_mint_a_broader_key(api: Api) -> None:
    r = await api.post(
        "/api/v1/api-keys",
        json={"name": "keys-only", "role": "PromptOpsAdmin", "permissions": ["apikey:manage", "prompt:read"]},
    )
    limited = r.json()["key"]
    broader = await api.post("/api/v1/api-keys", limited, json={"name": "full", "role": "PromptOpsAdmin"})
    assert broader.status_code == 403 and "rights it lacks" in broader.json()["detail"]
    narrower = await api.post(
        "/api/v1/api-keys", limited, json={"name": "reader", "role": "Viewer", "permissions": ["prompt:read"]}
    )
    assert narrower.status_code == 201, narrower.text


async def test_the_expiry_policy_requires_keys_to_expire(strict: Api) -> None:
    r = await strict.post("/api/v1/api-keys", json={"name": "forever", "role": "Viewer"})
    assert r.status_code == 422 and r.json()["code"] == "expiry_required"
    far = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    r = await strict.post("/api/v1/api-keys", json={"name": "far", "role": "Viewer", "expiresAt": far})
    assert r.status_code == 422 and r.json()["code"] == "invalid_expiry"
    soon = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    assert (
        await strict.post("/api/v1/api-keys", json={"name": "ok", "role": "Viewer", "expiresAt": soon})
    ).status_code == 201


# --- sessions end when rights change --------------------------------------------------------------------------


async def test_a_role_change_or_removal_ends_the_users_sessions(api: Api) -> None:
    member = await _member(api, "demoted@example.com", "PromptOpsAdmin")
    token = (await login(api, "demoted@example.com", STRONG))["token"]
    assert (await api.get("/api/v1/api-keys", token)).status_code == 200
    r = await api.patch(f"/api/v1/members/{member['userId']}", json={"role": "Viewer"})
    assert r.status_code == 200, r.text
    stale = await api.get("/api/v1/auth/me", token)
    assert stale.status_code == 401 and stale.json()["code"] == "session_invalid"
    fresh = (await login(api, "demoted@example.com", STRONG))["token"]
    assert (await api.get("/api/v1/auth/me", fresh)).json()["role"] == "Viewer"
    assert (await api.delete(f"/api/v1/members/{member['userId']}")).status_code == 204
    assert (await api.get("/api/v1/auth/me", fresh)).status_code == 401
    events = (await api.get("/api/v1/audit?limit=20")).json()["events"]
    changed = next(e for e in events if e["eventType"] == "MemberRoleChanged")
    assert changed["data"]["sessionsRevoked"] == 1


# --- security headers -----------------------------------------------------------------------------------------


async def test_security_headers_on_api_docs_and_pages(db_url: str, tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>PromptOps</title><div id=root></div>")
    api, client, lifespan = await open_api(db_url, tmp_path, web_dir=web, cookie_secure=True)
    try:
        health = await api.get("/healthz", None)
        assert health.headers["content-security-policy"].startswith("default-src 'none'")
        assert health.headers["x-content-type-options"] == "nosniff"
        assert health.headers["x-frame-options"] == "DENY"
        assert health.headers["referrer-policy"] == "no-referrer"
        assert health.headers["strict-transport-security"].startswith("max-age=")
        page = await api.get("/prompts/support/triage", None)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert (
            "script-src 'self';" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        docs = await api.get("/docs", None)
        assert "script-src 'self' 'unsafe-inline'" in docs.headers["content-security-policy"]
        problem = await api.get("/api/v1/prompts", None)
        assert problem.status_code == 401 and problem.headers["x-content-type-options"] == "nosniff"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
