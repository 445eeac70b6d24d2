"""The issue's explicit RBAC and tenancy cases, end to end over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from promptops.governance.rbac import ROLE_PERMISSIONS, Permission, Role
from tests.support.app import ADMIN_KEY, Api
from tests.support.tenancy import B_PROMPT, B_SECRET, login, make_project_b

EXAMPLE = "sentiment/few-shot"
NEW_PROMPT = {"name": "rbac/new", "template": "Hello {{ who }}", "variables": [{"name": "who"}]}


async def key_of(api: Api, role: Role) -> str:
    return str((await api.make_key(role.value, name=f"rbac-{role.value}"))["key"])


async def labels_of(api: Api, name: str) -> dict[str, int]:
    r = await api.get(f"/api/v1/prompts/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json()["prompt"]["labels"])


async def add_version(api: Api, name: str = EXAMPLE) -> int:
    r = await api.post(
        f"/api/v1/prompts/{name}/versions",
        json={"template": "Review: {{ review }}\nLabel:", "variables": [{"name": "review"}]},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["version"]["version"])


def assert_denied(r: Any, permission: Permission) -> None:
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "permission_denied" and body["permission"] == permission.value
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_viewer_key_cannot_create_a_prompt(api: Api) -> None:
    viewer = await key_of(api, Role.VIEWER)
    r = await api.post("/api/v1/prompts", viewer, json=NEW_PROMPT)
    assert_denied(r, Permission.PROMPT_WRITE)
    assert (await api.get("/api/v1/prompts/rbac/new")).status_code == 404
    # ... while the viewer can read
    assert (await api.get(f"/api/v1/prompts/{EXAMPLE}", viewer)).status_code == 200
    assert (await api.post("/api/v1/prompts", json=NEW_PROMPT)).status_code == 201


async def test_qa_analyst_cannot_move_production_but_a_prompt_engineer_can(api: Api) -> None:
    v2 = await add_version(api)
    assert (await labels_of(api, EXAMPLE))["production"] == 1
    qa_key = await key_of(api, Role.QA_ANALYST)
    r = await api.post(
        "/api/v1/members", json={"email": "qa@example.com", "role": "QAAnalyst", "password": "qa-password-1"}
    )
    assert r.status_code == 201, r.text
    qa_session = (await login(api, "qa@example.com", "qa-password-1"))["token"]
    for qa in (qa_key, qa_session):
        r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/production", qa, json={"version": v2})
        assert_denied(r, Permission.LABEL_WRITE)
        r = await api.post(f"/api/v1/prompts/{EXAMPLE}/labels/production/rollback", qa, json={"version": 1})
        assert_denied(r, Permission.LABEL_DEPLOY)
        r = await api.post("/api/prompt/rollback", qa, json={"promptId": EXAMPLE, "toVersion": 1})
        assert_denied(r, Permission.LABEL_DEPLOY)
    assert (await labels_of(api, EXAMPLE))["production"] == 1

    engineer = await key_of(api, Role.PROMPT_ENGINEER)
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/production", engineer, json={"version": v2})
    assert r.status_code == 200, r.text
    assert r.json()["deployed"] is True and r.json()["previousVersion"] == 1 and r.json()["version"] == v2
    assert (await labels_of(api, EXAMPLE))["production"] == v2
    r = await api.post("/api/prompt/rollback", engineer, json={"promptId": EXAMPLE, "reason": "undo"})
    assert r.status_code == 200, r.text
    assert r.json()["currentVersion"] == 1 and r.json()["previousVersion"] == v2
    r = await api.get("/api/prompt/audit", params={"eventType": "PromptDeployed", "promptId": EXAMPLE})
    assert any(e["user"] == "apikey:rbac-PromptEngineer" for e in r.json()["events"])


async def test_deployable_labels_setting_makes_staging_a_deployment(api: Api) -> None:
    v2 = await add_version(api)
    engineer = await key_of(api, Role.PROMPT_ENGINEER)
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/staging", engineer, json={"version": 1})
    assert r.status_code == 200 and r.json()["deployed"] is False, r.text

    r = await api.patch(
        "/api/v1/projects/current", json={"settings": {"deployableLabels": ["production", "staging"]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["deployableLabels"] == ["production", "staging"]
    r = await api.get(f"/api/v1/prompts/{EXAMPLE}/labels")
    assert {lbl["name"]: lbl["deployable"] for lbl in r.json()} == {"production": True, "staging": True}

    for role in (Role.QA_ANALYST, Role.VIEWER):
        key = await key_of(api, role)
        r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/staging", key, json={"version": v2})
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", (role, r.text)
        r = await api.delete(f"/api/v1/prompts/{EXAMPLE}/labels/staging", key)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", (role, r.text)
    assert (await labels_of(api, EXAMPLE))["staging"] == 1

    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/staging", engineer, json={"version": v2})
    assert r.status_code == 200 and r.json()["deployed"] is True, r.text
    r = await api.get("/api/prompt/audit", params={"promptId": EXAMPLE, "limit": 2})
    newest = r.json()["events"][0]
    assert newest["eventType"] == "PromptDeployed" and newest["data"]["label"] == "staging"


async def test_label_write_without_label_deploy_cannot_move_deployable_labels(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service-level check: no default role has label:write without label:deploy, so grant one."""
    monkeypatch.setitem(
        ROLE_PERMISSIONS, Role.QA_ANALYST, ROLE_PERMISSIONS[Role.QA_ANALYST] | {Permission.LABEL_WRITE}
    )
    v2 = await add_version(api)
    qa = await key_of(api, Role.QA_ANALYST)

    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/canary", qa, json={"version": v2})
    assert r.status_code == 200 and r.json()["deployed"] is False, r.text
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/staging", qa, json={"version": v2})
    assert r.status_code == 200 and r.json()["deployed"] is False, r.text
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/production", qa, json={"version": v2})
    assert_denied(r, Permission.LABEL_DEPLOY)
    r = await api.delete(f"/api/v1/prompts/{EXAMPLE}/labels/production", qa)
    assert_denied(r, Permission.LABEL_DEPLOY)
    r = await api.post(
        f"/api/v1/prompts/{EXAMPLE}/versions", qa, json={"template": "x", "labels": ["canary"]}
    )
    assert_denied(r, Permission.PROMPT_WRITE)

    r = await api.patch(
        "/api/v1/projects/current", json={"settings": {"deployableLabels": ["production", "staging"]}}
    )
    assert r.status_code == 200, r.text
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/staging", qa, json={"version": 1})
    assert_denied(r, Permission.LABEL_DEPLOY)
    r = await api.delete(f"/api/v1/prompts/{EXAMPLE}/labels/staging", qa)
    assert_denied(r, Permission.LABEL_DEPLOY)
    r = await api.delete(f"/api/v1/prompts/{EXAMPLE}/labels/canary", qa)
    assert r.status_code == 204, r.text
    assert await labels_of(api, EXAMPLE) == {"production": 1, "staging": v2}


# --- tenancy ---------------------------------------------------------------------------------------------------


def assert_not_found(r: Any, what: str, b: dict[str, Any]) -> None:
    """404, and nothing of B in the answer beyond what the request itself named (details echo the reference)."""
    assert r.status_code == 404, f"{what}: {r.status_code} {r.text}"
    for secret in (B_SECRET, B_PROMPT["description"], b["project_id"]):
        assert secret not in r.text, (what, secret)


async def test_project_a_key_sees_nothing_of_project_b(api: Api) -> None:
    b = await make_project_b(api)
    name, pid = b["name"], b["prompt_id"]
    for ref in (name, pid):
        checks = [
            ("GET", f"/api/v1/prompts/{ref}", None, None),
            ("GET", f"/api/v1/prompts/{ref}", None, {"label": "production"}),
            ("GET", f"/api/v1/prompts/{ref}/versions", None, None),
            ("GET", f"/api/v1/prompts/{ref}/labels", None, None),
            ("GET", f"/api/v1/prompts/{ref}/history", None, None),
            ("GET", f"/api/v1/prompts/{ref}/diff", None, {"from": "1", "to": "1"}),
            ("POST", f"/api/v1/prompts/{ref}/render", {"variables": {"x": "1"}}, None),
            ("POST", f"/api/v1/prompts/{ref}/versions", {"template": "hijack"}, None),
            ("PATCH", f"/api/v1/prompts/{ref}", {"description": "hijack"}, None),
            ("PUT", f"/api/v1/prompts/{ref}/labels/production", {"version": 1}, None),
            ("DELETE", f"/api/v1/prompts/{ref}/labels/production", None, None),
            ("POST", f"/api/v1/prompts/{ref}/labels/production/rollback", {"version": 1}, None),
            ("POST", f"/api/v1/prompts/{ref}/fork", {"newName": "stolen/copy"}, None),
            ("POST", "/api/prompt/rollback", {"promptId": ref, "toVersion": 1}, None),
        ]
        for method, url, body, params in checks:
            r = await api.request(method, url, ADMIN_KEY, json=body, params=params)
            assert_not_found(r, f"{method} {url} {params or ''}", b)
    assert_not_found(await api.get(f"/api/v1/prompts/{name}@production"), "name@label", b)

    # project B's versions cannot be reached through project A's prompts either
    diff = await api.get(f"/api/v1/prompts/{EXAMPLE}/diff", params={"from": "1", "to": f"{name}@1"})
    assert_not_found(diff, "diff against B by name", b)
    diff = await api.get(f"/api/v1/prompts/{EXAMPLE}/diff", params={"from": "1", "to": b["version_id"]})
    assert_not_found(diff, "diff against B by version id", b)
    r = await api.put(f"/api/v1/prompts/{EXAMPLE}/labels/production", json={"versionId": b["version_id"]})
    assert_not_found(r, "label -> B's version", b)
    r = await api.post("/api/prompt/rollback", json={"promptId": EXAMPLE, "toVersionId": b["version_id"]})
    assert_not_found(r, "rollback -> B's version", b)

    # the audit trail of A holds nothing of B, filtered by B's prompt or not
    for ref in (pid, name):
        r = await api.get("/api/prompt/audit", params={"promptId": ref})
        assert r.status_code == 200 and r.json()["events"] == [], r.text
    r = await api.get("/api/v1/audit", params={"limit": 200})
    assert r.status_code == 200
    assert B_SECRET not in r.text and pid not in r.text and b["version_id"] not in r.text
    assert {e["projectId"] for e in r.json()["events"]} == {
        (await api.get("/api/v1/auth/me")).json()["projectId"]
    }
    r = await api.get("/api/v1/prompts", params={"q": "secret", "limit": 200})
    assert r.json()["items"] == []

    # an include naming B's prompt does not reach into B
    r = await api.post(
        "/api/v1/prompts", json={"name": "a/includer", "template": '{% include "secret/b-prompt" %}'}
    )
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/prompts/a/includer/render", json={"variables": {"x": "1"}})
    assert 400 <= r.status_code < 500 and B_SECRET not in r.text, r.text

    # nothing of B changed, and B's key sees its own prompt but none of A's
    r = await api.get(f"/api/v1/prompts/{name}", b["key"])
    assert r.status_code == 200 and r.json()["version"]["version"] == 1
    assert (
        r.json()["prompt"]["labels"] == {"production": 1}
        and r.json()["prompt"]["description"] == "only for project b"
    )
    assert (await api.get(f"/api/v1/prompts/{EXAMPLE}", b["key"])).status_code == 404
    r = await api.get("/api/prompt/audit", b["key"], params={"promptId": pid})
    assert {e["eventType"] for e in r.json()["events"]} == {
        "PromptCreated",
        "PromptVersionCreated",
        "PromptDeployed",
    }


async def test_project_header_does_not_move_an_api_key_but_selects_a_users_project(api: Api) -> None:
    b = await make_project_b(api)
    in_b = {"X-Project": "project-b"}
    me = (await api.get("/api/v1/auth/me", headers=in_b)).json()
    assert me["kind"] == "api_key" and me["projectId"] != b["project_id"]
    assert (await api.get(f"/api/v1/prompts/{b['name']}", headers=in_b)).status_code == 404

    session = b["session"]
    assert (await api.get(f"/api/v1/prompts/{b['name']}", session)).status_code == 404  # default project
    r = await api.get(f"/api/v1/prompts/{b['name']}", session, headers=in_b)
    assert r.status_code == 200 and B_SECRET in r.json()["version"]["template"]
    r = await api.get(f"/api/v1/prompts/{b['name']}", session, headers={"X-Project": b["project_id"]})
    assert r.status_code == 200

    # a member of A only cannot select B: 404 as for any project it cannot see
    r = await api.post(
        "/api/v1/members",
        json={"email": "a-only@example.com", "role": "PromptOpsAdmin", "password": "a-only-pass-1"},
    )
    assert r.status_code == 201, r.text
    a_only = (await login(api, "a-only@example.com", "a-only-pass-1"))["token"]
    r = await api.get(f"/api/v1/prompts/{b['name']}", a_only, headers=in_b)
    assert r.status_code == 404 and r.json()["code"] == "project_not_found" and B_SECRET not in r.text
    r = await api.get("/api/v1/projects", a_only)
    assert [p["name"] for p in r.json()] == ["default"]
