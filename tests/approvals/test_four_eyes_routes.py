"""The four-eyes rule cannot be bypassed: every route that can move (or remove) a label, tried with the author's
key on a label that needs an approval, leaves the label where it was. SQLite and PostgreSQL.

The routes are found by walking the app and a reference graph of the source (``label_paths``): a new route whose
handler can reach the registry's label writers fails ``test_every_label_moving_entry_point_is_probed`` until a
probe for it is added to :data:`PROBES`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.approvals import label_paths
from tests.approvals.support import PROMPT, People, add_version, events, label_version, people, set_rules
from tests.slack.test_slack import SECRET, TEAM, link, member, signed
from tests.support.app import Api, make_settings
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401

Probe = Callable[[Api, People], Awaitable[None]]
V2 = "Route this ticket to a team: {{ ticket }}\n"


def moved_nothing(r: Any, *allowed: int) -> None:
    """A label route answered without moving: a request (202), a refusal (4xx) or a save without moves."""
    assert r.status_code in allowed, r.text


async def probe_set_label(api: Api, p: People) -> None:
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", p.author, json={"version": 2})
    moved_nothing(r, 202)


async def probe_delete_label(api: Api, p: People) -> None:
    r = await api.delete(f"/api/v1/prompts/{PROMPT}/labels/production", p.author)
    moved_nothing(r, 409)


async def probe_rollback(api: Api, p: People) -> None:
    r = await api.post(f"/api/v1/prompts/{PROMPT}/labels/production/rollback", p.author, json={"version": 2})
    moved_nothing(r, 202)


async def probe_contract_rollback(api: Api, p: People) -> None:
    r = await api.post("/api/prompt/rollback", p.author, json={"promptId": PROMPT, "toVersion": 2})
    moved_nothing(r, 202)


async def probe_create_version(api: Api, p: People) -> None:
    saved = await add_version(api, p.author, "Another {{ ticket }}", labels=["production"])
    assert [a["label"] for a in saved["pendingApprovals"]] == ["production"]


async def probe_create_prompt(api: Api, p: People) -> None:
    # a new prompt asking for the gated label: created, the label becomes a request
    r = await api.post(
        "/api/v1/prompts", p.author, json={"name": "other/new", "template": "x", "labels": ["production"]}
    )
    moved_nothing(r, 201)
    assert [a["label"] for a in r.json()["pendingApprovals"]] == ["production"]
    labels = await api.get("/api/v1/prompts/other/new/labels")
    assert labels.json() == []


async def probe_push(api: Api, p: People) -> None:
    r = await api.put(
        f"/api/v1/prompts/{PROMPT}",
        p.author,
        json={"template": "Pushed {{ ticket }}", "variables": [{"name": "ticket"}], "labels": ["production"]},
    )
    moved_nothing(r, 200)
    assert [a["label"] for a in r.json()["pendingApprovals"]] == ["production"]


async def _open_request(api: Api, p: People) -> str:
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", p.author, json={"version": 2})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def probe_approve(api: Api, p: People) -> None:
    rid = await _open_request(api, p)
    moved_nothing(await api.post(f"/api/v1/approvals/{rid}/approve", p.author, json={}), 403)


async def probe_override(api: Api, p: People) -> None:
    rid = await _open_request(api, p)
    r = await api.post(f"/api/v1/approvals/{rid}/override", p.author, json={"note": "me, myself"})
    moved_nothing(r, 403)


async def probe_ship(api: Api, p: People) -> None:
    r = await api.post(
        "/api/v1/experiments",
        p.author,
        json={
            "name": "ship probe",
            "prompt": PROMPT,
            "label": "production",
            "arms": [{"version": 1}, {"version": 2}],
        },
    )
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    assert (await api.post(f"/api/v1/experiments/{eid}/start", p.author, json={})).status_code == 200
    r = await api.post(f"/api/v1/experiments/{eid}/ship", p.author, json={"arm": "b"})
    moved_nothing(r, 202)
    assert r.json()["pendingApproval"] and r.json()["status"] == "running"
    assert (await api.post(f"/api/v1/experiments/{eid}/stop", p.author, json={})).status_code == 200


async def probe_generate(api: Api, p: People) -> None:
    # PromptOpt saves candidates as draft versions: never on a label
    r = await api.post(
        "/api/prompt/generate",
        p.author,
        json={
            "task": "Route tickets",
            "templateId": f"{PROMPT}@production",
            "count": 2,
            "strategies": ["structural"],
        },
    )
    moved_nothing(r, 201)


async def probe_refine(api: Api, p: People) -> None:
    r = await api.post(
        "/api/prompt/refine",
        p.author,
        json={"prompt": f"{PROMPT}@2", "feedback": "shorter", "accept": {"template": "Route: {{ ticket }}"}},
    )
    moved_nothing(r, 201)


async def probe_promptfoo_import(api: Api, p: People) -> None:
    config = {
        "prompts": ["Route {{ ticket }}"],
        "providers": ["echo"],
        "tests": [{"vars": {"ticket": "a"}}],
    }
    r = await api.post(
        "/api/v1/evals/import/promptfoo",
        p.author,
        json={"config": yaml.safe_dump(config), "prefix": "support"},
    )
    moved_nothing(r, 200, 201)


async def probe_pack_import(api: Api, p: People) -> None:
    """A template pack saves versions (never labels): importing one leaves the gated label alone."""
    r = await api.post(
        "/api/v1/packs/export",
        json={"name": "probe", "version": "1.0.0", "prompts": [{"prompt": PROMPT, "version": 2}]},
    )
    assert r.status_code == 200, r.text
    r = await api.post("/api/v1/packs/import", p.author, json=r.json(), params={"onConflict": "new-version"})
    moved_nothing(r, 200)


async def probe_slack_button(api: Api, p: People) -> None:
    """An engineer linked in Slack writes a version, asks for it, and presses Approve on their own request."""
    token = await member(api, "slack-author@example.test", "PromptEngineer")
    assert (await link(api, "U0SELF", token)).status_code == 201
    mine = await add_version(api, token, "Slack author's {{ ticket }}")
    number = mine["version"]["version"]
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", token, json={"version": number})
    assert r.status_code == 202 and r.json()["version"] == number, r.text
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U0SELF", "team_id": TEAM},
        "actions": [{"action_id": "approval_approve", "value": r.json()["id"]}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
    r = await api.client.post("/slack/interactions", content=body, headers=headers)
    moved_nothing(r, 200)


async def probe_optimization(api: Api, p: People) -> None:
    """``POST /api/v1/optimizations`` with ``promoteLabel``: the optimize job's promotion becomes a request."""
    cases = [{"input": {"ticket": t}, "expected": t.split()[0]} for t in ("billing issue", "login fails")]
    r = await api.post("/api/v1/datasets", json={"name": "probe/tickets", "cases": cases})
    assert r.status_code == 201, r.text
    r = await api.post(
        "/api/v1/optimizations",
        p.author,
        json={
            "prompt": f"{PROMPT}@2",
            "dataset": "probe/tickets",
            "scorers": [{"type": "icontains"}],
            "budget": 20,
            "promoteLabel": "production",
            "model": {"provider": "fake", "model": "gpt-fake"},
        },
    )
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    for _ in range(1200):
        found = (await api.get(f"/api/v1/optimizations/{oid}")).json()
        if found["status"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    assert found["status"] == "completed", found
    promotion = found["report"].get("promotion")
    assert promotion is None or promotion["promoted"] is False, promotion


PROBES: dict[str, Probe] = {
    "PUT /api/v1/prompts/{name:prompt}/labels/{label}": probe_set_label,
    "DELETE /api/v1/prompts/{name:prompt}/labels/{label}": probe_delete_label,
    "POST /api/v1/prompts/{name:prompt}/labels/{label}/rollback": probe_rollback,
    "POST /api/prompt/rollback": probe_contract_rollback,
    "POST /api/v1/prompts/{name:prompt}/versions": probe_create_version,
    "POST /api/v1/prompts": probe_create_prompt,
    "PUT /api/v1/prompts/{name:prompt}": probe_push,
    "POST /api/v1/approvals/{request_id}/approve": probe_approve,
    "POST /api/v1/approvals/{request_id}/override": probe_override,
    "POST /api/v1/experiments/{experiment_id}/ship": probe_ship,
    "POST /api/prompt/generate": probe_generate,
    "POST /api/prompt/refine": probe_refine,
    "POST /api/v1/evals/import/promptfoo": probe_promptfoo_import,
    "POST /api/v1/packs/import": probe_pack_import,
    "POST /slack/interactions": probe_slack_button,
}
# Background work that moves labels, and the route probe that drives it.
BACKGROUND = {"job optimize": probe_optimization}


def test_every_label_moving_entry_point_is_probed(tmp_path: Path) -> None:
    from promptops.app import create_app

    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/walk.db", tmp_path), migrate=False)
    routes = label_paths.label_moving_routes(app)
    assert routes - set(PROBES) == set(), "label-moving routes without a four-eyes probe"
    assert set(PROBES) - routes == set(), "probes for routes that no longer move labels"
    assert label_paths.label_moving_background_work() == set(BACKGROUND)
    # the walk only follows module-level functions: nothing else may write the label table
    assert label_paths.label_table_writers() == set(label_paths.LABEL_WRITERS)


@pytest.fixture
async def gated(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[tuple[Api, People]]:
    """Production of PROMPT at v1, gated (1 approval, no rollback fast path); v2 written by the author."""
    async with provider_app(db_url, tmp_path, fake, slack_signing_secret=SECRET) as api:
        p = await people(api)
        r = await api.post(
            "/api/v1/prompts",
            json={
                "name": PROMPT,
                "template": "Route this ticket: {{ ticket }}\n",
                "variables": [{"name": "ticket"}],
                "modelConfig": {"provider": "fake", "model": "gpt-fake"},
                "labels": ["production"],
            },
        )
        assert r.status_code == 201, r.text
        await set_rules(api, {"production": {"required": 1}}, "sameAsForward")
        await add_version(api, p.author, V2, modelConfig={"provider": "fake", "model": "gpt-fake"})
        yield api, p


async def _moves(api: Api) -> int:
    kinds = ("PromptDeployed", "LabelMoved", "RollbackTriggered", "LabelRemoved", "ApprovalOverridden")
    return sum([len(await events(api, kind)) for kind in kinds])


async def test_the_author_cannot_move_a_gated_label_through_any_route(
    gated: tuple[Api, People], fake: FakeLLMServer
) -> None:
    api, p = gated
    before = await _moves(api)
    for name, probe in [*PROBES.items(), *BACKGROUND.items()]:
        await probe(api, p)
        assert await label_version(api) == 1, f"{name} moved production"
        assert await _moves(api) == before, f"{name} recorded a label move"
    # every request is still waiting for someone else
    r = await api.get("/api/v1/approvals", params={"status": "applied"})
    assert r.json()["items"] == []
    r = await api.get("/api/v1/audit/verify")
    assert r.json()["ok"] is True
