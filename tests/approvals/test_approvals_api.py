"""Approvals on gated labels through the REST face, on SQLite and PostgreSQL: settings, requests instead of
moves, the four-eyes rule, supersede, reject, cancel, override, the rollback fast path, and their audit."""

from __future__ import annotations

from tests.approvals.support import (
    PROMPT,
    People,
    add_version,
    events,
    gated_prompt,
    label_version,
    people,
    problem,
    request_move,
    set_rules,
)
from tests.support.app import Api


async def test_settings_are_validated_and_audited(api: Api) -> None:
    bad = [
        ({"labels": {"production": {"required": 0}}}, "required"),
        ({"labels": {"production": {"required": 11}}}, "required"),
        ({"labels": {"production": {"roles": ["Viewer"]}}}, "Viewer"),
        ({"labels": {"production": {"roles": []}}}, "roles"),
        ({"labels": {"latest": {}}}, "latest"),
        ({"labels": {"Bad Label": {}}}, "Invalid label"),
        ({"labels": {"production": {"required": "2"}}}, "required"),
        ({"rollback": "whenever"}, "rollback"),
        ({"labels": {f"l{i}": {} for i in range(21)}}, "labels"),
    ]
    for approvals, needle in bad:
        r = await api.patch("/api/v1/projects/current", json={"settings": {"approvals": approvals}})
        assert r.status_code == 422, (approvals, r.text)
        assert needle in r.text, (approvals, r.text)
    project = await set_rules(
        api, {"production": {"required": 2, "roles": ["PromptOpsAdmin", "QAAnalyst"]}}, "admins"
    )
    assert project["settings"]["approvals"] == {
        "labels": {"production": {"required": 2, "roles": ["PromptOpsAdmin", "QAAnalyst"]}},
        "rollback": "admins",
    }
    updated = await events(api, "ProjectUpdated")
    assert updated[0]["data"]["changes"]["settings"]["to"]["approvals"]["rollback"] == "admins"
    # only a project admin may change them
    p = await people(api)
    r = await api.patch(
        "/api/v1/projects/current", p.author, json={"settings": {"approvals": {"labels": {}}}}
    )
    problem(r, 403, "permission_denied")


async def test_a_move_becomes_a_request_and_happens_when_the_rule_is_met(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)
    created = await request_move(api, p.author, 2)
    assert created["status"] == "open" and created["label"] == "production"
    assert created["version"] == 2 and created["baseVersion"] == 1
    assert created["required"] == 2 and created["approvals"] == 0
    assert created["roles"] == ["PromptEngineer", "PromptOpsAdmin"]
    assert await label_version(api) == 1  # nothing moved
    rid = created["id"]

    # the review: diff against the label's version, lint findings, the evaluation state
    r = await api.get(f"/api/v1/approvals/{rid}", p.reviewer)
    assert r.status_code == 200, r.text
    review = r.json()
    assert review["currentVersion"] == 1 and review["canDecide"] is True
    assert review["diff"]["from"] == f"{PROMPT}@1" and review["diff"]["to"] == f"{PROMPT}@2"
    assert "+Route this ticket to a team" in review["diff"]["template"]
    assert isinstance(review["lint"]["findings"], list) and review["lint"]["blocking"] == 0
    assert review["evaluation"]["candidate"] is None
    assert "No completed evaluation" in review["evaluation"]["note"]
    r = await api.get(f"/api/v1/approvals/{rid}", p.author)
    assert r.json()["canDecide"] is False and "four-eyes" in r.json()["whyNot"]

    # four eyes: the requester (who also wrote v2) cannot approve; other roles do not count; viewers cannot
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.author, json={}), 403, "approval_own_request"
    )
    problem(await api.post(f"/api/v1/approvals/{rid}/approve", p.viewer, json={}), 403, "permission_denied")
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.qa, json={}), 403, "approval_role_not_allowed"
    )
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer, json={"comment": "reads well"})
    assert r.status_code == 200, r.text
    assert r.json()["approvals"] == 1 and r.json()["status"] == "open" and r.json()["move"] is None
    assert await label_version(api) == 1
    # a reviewer approves once
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer, json={}),
        409,
        "approval_already_decided",
    )
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer2, json={"comment": "ship it"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "applied" and done["approvals"] == 2
    assert done["move"]["version"] == 2 and done["move"]["previousVersion"] == 1 and done["move"]["deployed"]
    assert [d["comment"] for d in done["decisions"]] == ["reads well", "ship it"]
    assert await label_version(api) == 2
    problem(await api.post(f"/api/v1/approvals/{rid}/approve", p.admin, json={}), 409, "approval_not_open")

    # audited: requested, two approvals, applied, and the deployment through the normal label path
    assert [e["data"]["requestId"] for e in await events(api, "ApprovalRequested")] == [rid]
    granted = await events(api, "ApprovalGranted")
    assert sorted(e["data"]["comment"] for e in granted) == ["reads well", "ship it"]
    applied = await events(api, "ApprovalApplied")
    assert applied[0]["data"]["approvers"] == ["apikey:reviewer", "apikey:reviewer2"]
    deployed = (await events(api, "PromptDeployed"))[0]
    assert deployed["data"]["approvalRequestId"] == rid and deployed["data"]["version"] == 2
    assert (
        deployed["data"]["promptId"] == deployed["promptId"]
        and deployed["data"]["user"] == "apikey:reviewer2"
    )
    assert deployed["data"]["deployRef"] == f"{PROMPT}@production"

    # listing and filters
    r = await api.get("/api/v1/approvals", p.viewer, params={"status": "applied", "prompt": PROMPT})
    assert [i["id"] for i in r.json()["items"]] == [rid]
    r = await api.get("/api/v1/approvals", p.viewer, params={"status": "open"})
    assert r.json()["items"] == []
    problem(await api.get("/api/v1/approvals", params={"status": "nope"}), 422, "invalid_status")
    problem(await api.get("/api/v1/approvals/apr_nothing"), 404, "approval_not_found")


async def test_the_version_author_cannot_approve_a_request_someone_else_made(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p, labels={"production": {"required": 1}})
    created = await request_move(api, p.reviewer, 2)  # v2 was written by the author
    rid = created["id"]
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.author, json={}), 403, "approval_own_version"
    )
    problem(
        await api.post(f"/api/v1/approvals/{rid}/reject", p.author, json={"comment": "no"}),
        403,
        "approval_own_version",
    )
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer, json={}), 403, "approval_own_request"
    )
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer2, json={})
    assert r.json()["status"] == "applied" and await label_version(api) == 2


async def test_a_newer_request_supersedes_the_open_one(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)
    first = await request_move(api, p.author, 2)
    again = await request_move(api, p.author, 2)  # the same move asked twice is the same request
    assert again["id"] == first["id"]
    await add_version(api, p.author, "Route the ticket to the right team: {{ ticket }}\n")
    second = await request_move(api, p.author, 3)
    r = await api.get(f"/api/v1/approvals/{first['id']}")
    assert r.json()["request"]["status"] == "superseded"
    assert r.json()["request"]["supersededBy"] == second["id"]
    problem(
        await api.post(f"/api/v1/approvals/{first['id']}/approve", p.reviewer, json={}),
        409,
        "approval_not_open",
    )
    superseded = await events(api, "ApprovalSuperseded")
    assert superseded[0]["data"]["requestId"] == first["id"]
    assert superseded[0]["data"]["supersededBy"] == second["id"]
    r = await api.get("/api/v1/approvals", params={"status": "open"})
    assert [i["id"] for i in r.json()["items"]] == [second["id"]]


async def test_reject_needs_a_comment_and_closes_the_request(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)
    rid = (await request_move(api, p.author, 2))["id"]
    problem(await api.post(f"/api/v1/approvals/{rid}/reject", p.reviewer, json={}), 422, "comment_required")
    r = await api.post(f"/api/v1/approvals/{rid}/reject", p.reviewer, json={"comment": "tone is off"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["resolutionNote"] == "tone is off"
    problem(
        await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer2, json={}), 409, "approval_not_open"
    )
    assert await label_version(api) == 1
    rejected = await events(api, "ApprovalRejected")
    assert (
        rejected[0]["data"]["comment"] == "tone is off"
        and rejected[0]["data"]["approver"] == "apikey:reviewer"
    )


async def test_cancel_by_the_requester_or_an_admin(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)
    rid = (await request_move(api, p.author, 2))["id"]
    problem(await api.post(f"/api/v1/approvals/{rid}/cancel", p.reviewer, json={}), 403, "approval_not_yours")
    problem(await api.post(f"/api/v1/approvals/{rid}/cancel", p.qa, json={}), 403, "permission_denied")
    r = await api.post(f"/api/v1/approvals/{rid}/cancel", p.author, json={"note": "not yet"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await events(api, "ApprovalCancelled"))[0]["data"]["note"] == "not yet"
    rid = (await request_move(api, p.author, 2))["id"]
    r = await api.post(f"/api/v1/approvals/{rid}/cancel", json={})
    assert r.json()["status"] == "cancelled" and await label_version(api) == 1


async def test_admin_override_needs_a_note_and_is_audited(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)
    rid = (await request_move(api, p.author, 2))["id"]
    problem(
        await api.post(f"/api/v1/approvals/{rid}/override", p.reviewer, json={"note": "x"}),
        403,
        "permission_denied",
    )
    r = await api.post(f"/api/v1/approvals/{rid}/override", json={})
    assert r.status_code == 422, r.text
    problem(await api.post(f"/api/v1/approvals/{rid}/override", json={"note": "   "}), 422, "note_required")
    assert await label_version(api) == 1
    r = await api.post(f"/api/v1/approvals/{rid}/override", json={"note": "hotfix for incident 42"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "overridden" and r.json()["move"]["version"] == 2
    assert await label_version(api) == 2
    overridden = await events(api, "ApprovalOverridden")
    assert len(overridden) == 1
    data = overridden[0]["data"]
    assert {k: data[k] for k in ("promptId", "approver", "note")} == {
        "promptId": overridden[0]["promptId"],
        "approver": "apikey:bootstrap-admin",
        "note": "hotfix for incident 42",
    }
    assert data["requestId"] == rid and data["approvals"] == 0
    deployed = (await events(api, "PromptDeployed"))[0]
    assert deployed["data"]["approval"] == "overridden" and deployed["data"]["approvalRequestId"] == rid
    r = await api.get("/api/v1/audit/verify")
    assert r.json()["ok"] is True


async def test_saving_with_a_gated_label_opens_a_request(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p, labels={"production": {"required": 1}, "staging": {"required": 1}})
    saved = await add_version(api, p.author, "v3 {{ ticket }}", labels=["production", "canary"])
    assert [(a["label"], a["version"], a["status"]) for a in saved["pendingApprovals"]] == [
        ("production", 3, "open")
    ]
    assert await label_version(api) == 1 and await label_version(api, "canary") == 3
    # a gated label cannot be removed either
    await set_rules(api, {"canary": {"required": 1}})
    problem(await api.delete(f"/api/v1/prompts/{PROMPT}/labels/canary", p.author), 409, "label_gated")
    problem(await api.delete(f"/api/v1/prompts/{PROMPT}/labels/canary"), 409, "label_gated")
    assert await label_version(api, "canary") == 3


async def _ship(api: Api, p: People, version: int) -> None:
    rid = (await request_move(api, p.author, version))["id"]
    r = await api.post(f"/api/v1/approvals/{rid}/override", json={"note": "setup"})
    assert r.status_code == 200, r.text


async def test_rollback_fast_path_modes(api: Api) -> None:
    p = await people(api)
    await gated_prompt(api, p)  # rollback mode: previousVersion (the default)
    await add_version(api, p.author, "v3 {{ ticket }}")
    await _ship(api, p, 2)
    await _ship(api, p, 3)
    assert await label_version(api) == 3
    url = f"/api/v1/prompts/{PROMPT}/labels/production/rollback"
    # previousVersion: back to v2 (it held the label) at once, audited as the fast path
    r = await api.post(url, p.author, json={"reason": "errors up"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and await label_version(api) == 2
    rolled = (await events(api, "RollbackTriggered"))[0]
    assert rolled["data"]["approval"] == "rollbackFastPath:previousVersion"
    # ... but a "rollback" to a version that never held the label is a forward move: a request
    await add_version(api, p.author, "v4 {{ ticket }}")
    r = await api.post(url, p.author, json={"version": 4})
    assert r.status_code == 202 and r.json()["action"] == "rollback"
    assert await label_version(api) == 2

    # sameAsForward: every rollback needs the approvals
    await set_rules(api, rollback="sameAsForward")
    r = await api.post(url, p.author, json={"version": 3})
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer, json={})
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer2, json={})
    assert r.json()["status"] == "applied" and await label_version(api) == 3
    rolled = (await events(api, "RollbackTriggered"))[0]
    assert rolled["data"]["approver"] == "apikey:reviewer, apikey:reviewer2"

    # admins: an admin rolls back at once, anyone else asks
    await set_rules(api, rollback="admins")
    r = await api.post(url, p.author, json={"version": 2})
    assert r.status_code == 202, r.text
    r = await api.post(url, json={"version": 2})
    assert r.status_code == 200 and await label_version(api) == 2
    # the contract route follows the same rules
    r = await api.post("/api/prompt/rollback", p.author, json={"promptId": PROMPT, "toVersion": 3})
    assert r.status_code == 202 and r.json()["status"] == "open"
    assert await label_version(api) == 2


async def test_ungated_labels_and_projects_without_rules_move_as_before(api: Api) -> None:
    p = await people(api)
    r = await api.post(
        "/api/v1/prompts", json={"name": PROMPT, "template": "x {{ t }}", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    await add_version(api, p.author, "y {{ ticket }}")
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", p.author, json={"version": 2})
    assert r.status_code == 200 and r.json()["deployed"] is True
    await set_rules(api, {"staging": {"required": 1}})
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", p.author, json={"version": 1})
    assert r.status_code == 200
    # pointing a gated label at the version it already has changes nothing and needs nobody
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/staging", json={"version": 1})
    assert r.status_code == 202
    rid = r.json()["id"]
    r = await api.post(f"/api/v1/approvals/{rid}/approve", p.reviewer, json={})
    assert r.json()["status"] == "applied"
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/staging", p.author, json={"version": 1})
    assert r.status_code == 200
