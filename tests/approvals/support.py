"""A project whose ``production`` label needs approvals, and the people around a request: the author (an
engineer's key), two engineer reviewers, a QA analyst, a viewer and the admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.app import ADMIN_KEY, Api

PROMPT = "support/route"
BODY = {
    "name": PROMPT,
    "template": "Route this ticket: {{ ticket }}\n",
    "variables": [{"name": "ticket", "type": "string"}],
    "modelConfig": {"provider": "local", "model": "gemma-3-270m"},
    "commitMessage": "v1",
}


@dataclass(frozen=True)
class People:
    author: str
    reviewer: str
    reviewer2: str
    qa: str
    viewer: str
    compliance: str
    admin: str = ADMIN_KEY


async def people(api: Api) -> People:
    keys = {}
    for who, role in [
        ("author", "PromptEngineer"),
        ("reviewer", "PromptEngineer"),
        ("reviewer2", "PromptEngineer"),
        ("qa", "QAAnalyst"),
        ("viewer", "Viewer"),
        ("compliance", "ComplianceOfficer"),
    ]:
        keys[who] = (await api.make_key(role, name=who))["key"]
    return People(**keys)


async def set_rules(
    api: Api,
    labels: dict[str, Any] | None = None,
    rollback: str | None = None,
) -> dict[str, Any]:
    approvals: dict[str, Any] = {"labels": labels if labels is not None else {"production": {"required": 2}}}
    if rollback is not None:
        approvals["rollback"] = rollback
    r = await api.patch("/api/v1/projects/current", json={"settings": {"approvals": approvals}})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def gated_prompt(api: Api, p: People, **rules: Any) -> None:
    """The prompt with v1 on production (set by the admin before the label was gated), v2 by the author."""
    r = await api.post("/api/v1/prompts", json={**BODY, "labels": ["production"]})
    assert r.status_code == 201, r.text
    await set_rules(api, **rules)
    await add_version(api, p.author, "Route this ticket to a team: {{ ticket }}\n")


async def add_version(api: Api, key: str, template: str, **extra: Any) -> dict[str, Any]:
    body = {"template": template, "variables": BODY["variables"], "modelConfig": BODY["modelConfig"], **extra}
    r = await api.post(f"/api/v1/prompts/{PROMPT}/versions", key, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def label_version(api: Api, label: str = "production") -> int | None:
    r = await api.get(f"/api/v1/prompts/{PROMPT}/labels")
    assert r.status_code == 200, r.text
    return next((item["version"] for item in r.json() if item["name"] == label), None)


async def request_move(api: Api, key: str, version: int, label: str = "production") -> dict[str, Any]:
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/{label}", key, json={"version": version})
    assert r.status_code == 202, r.text
    return dict(r.json())


async def events(api: Api, event_type: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/audit", params={"eventType": event_type, "limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.text
