"""A second project for isolation tests: project B with a prompt and an admin key of its own."""

from __future__ import annotations

from typing import Any

from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api

B_SECRET = "project-b-confidential-template"
B_PROMPT = {
    "name": "secret/b-prompt",
    "description": "only for project b",
    "template": B_SECRET + " {{ x }}",
    "variables": [{"name": "x"}],
    "labels": ["production"],
}


async def login(api: Api, email: str, password: str, **body: Any) -> dict[str, Any]:
    r = await api.post("/api/v1/auth/login", None, json={"email": email, "password": password, **body})
    assert r.status_code == 200, r.text
    api.client.cookies.clear()  # act through the bearer token only
    return dict(r.json())


async def make_project_b(api: Api) -> dict[str, Any]:
    """Project B created by the admin user, with one prompt and an admin key of its own."""
    session = (await login(api, ADMIN_EMAIL, ADMIN_PASSWORD))["token"]
    r = await api.post("/api/v1/projects", session, json={"name": "project-b", "description": "B"})
    assert r.status_code == 201, r.text
    project_b = r.json()
    assert project_b["role"] == "PromptOpsAdmin"
    in_b = {"X-Project": "project-b"}
    r = await api.post("/api/v1/prompts", session, json=B_PROMPT, headers=in_b)
    assert r.status_code == 201, r.text
    prompt = r.json()
    assert prompt["prompt"]["id"] and prompt["version"]["version"] == 1
    # logging in with a project selects it for the login answer
    answer = await login(api, ADMIN_EMAIL, ADMIN_PASSWORD, project="project-b")
    assert answer["projectId"] == project_b["id"]
    r = await api.post(
        "/api/v1/api-keys", session, json={"name": "b-admin", "role": "PromptOpsAdmin"}, headers=in_b
    )
    assert r.status_code == 201, r.text
    assert r.json()["projectId"] == project_b["id"]
    return {
        "project_id": project_b["id"],
        "prompt_id": prompt["prompt"]["id"],
        "version_id": prompt["version"]["id"],
        "name": B_PROMPT["name"],
        "key": r.json()["key"],
        "session": session,
    }
