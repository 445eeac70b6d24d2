"""Feedback through the REST API on SQLite and PostgreSQL: the seed 004 contract, rich feedback on runs,
listing, summaries, permissions, tenancy and audit events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.support.feedback_support import EXAMPLE, audit_events, make_run

CONTRACT = "/api/prompt/feedback"


async def prompt_info(api: Api, name: str = EXAMPLE) -> dict[str, Any]:
    r = await api.get(f"/api/v1/prompts/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def version_id(api: Api, name: str, number: int) -> str:
    r = await api.get(f"/api/v1/prompts/{name}", params={"version": number})
    assert r.status_code == 200, r.text
    return str(r.json()["version"]["id"])


async def add_version(api: Api, name: str = EXAMPLE) -> dict[str, Any]:
    r = await api.post(
        f"/api/v1/prompts/{name}/versions",
        json={"template": "Review: {{ review }}\nSentiment:", "variables": [{"name": "review"}]},
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["version"])


# --- the seed 004 contract ---------------------------------------------------------------------------------------


async def test_contract_feedback_stores_the_seed_payload(api: Api) -> None:
    info = await prompt_info(api)
    prompt_id = info["prompt"]["id"]
    production = await version_id(api, EXAMPLE, info["prompt"]["labels"]["production"])
    v2 = await add_version(api)  # latest is now v2; production still points at v1

    payload = {"promptId": prompt_id, "user": "qa.lead@example.com", "score": 4, "notes": "Clear and correct"}
    r = await api.post(CONTRACT, json=payload)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("fbk_")
    assert {k: body[k] for k in ("promptId", "versionId", "user", "score", "notes")} == {
        "promptId": prompt_id,
        "versionId": production,  # a prompt id rates what users see: the production version
        "user": "qa.lead@example.com",
        "score": 4.0,
        "notes": "Clear and correct",
    }
    assert body["createdAt"] and body["eventType"] == "FeedbackSubmitted" and body["source"] == "human"
    assert body["runId"] is None and body["thumbs"] is None and body["rubric"] == {} and body["tags"] == []

    # The other forms of promptId: a bare name (production), name@label, name@N, a version id.
    for ref, expected in (
        (EXAMPLE, production),
        (f"{EXAMPLE}@latest", v2["id"]),
        (f"{EXAMPLE}@2", v2["id"]),
        (f"{EXAMPLE}@production", production),
        (v2["id"], v2["id"]),
    ):
        r = await api.post(CONTRACT, json={"promptId": ref, "user": "u", "score": 3.5, "notes": ""})
        assert r.status_code == 201, (ref, r.text)
        assert (r.json()["promptId"], r.json()["versionId"], r.json()["score"]) == (prompt_id, expected, 3.5)

    # Without a production label, a bare name rates the latest version.
    r = await api.post(
        "/api/v1/prompts", json={"name": "nolabel/p", "template": "a {{ x }}", "variables": [{"name": "x"}]}
    )
    assert r.status_code == 201, r.text
    latest = await add_version(api, "nolabel/p")
    r = await api.post(CONTRACT, json={"promptId": "nolabel/p", "user": "u", "score": 2, "notes": ""})
    assert r.status_code == 201 and r.json()["versionId"] == latest["id"], r.text

    # The audit event carries the seed's key fields.
    events = await audit_events(api, "FeedbackSubmitted", promptId=prompt_id)
    first = events[-1]
    assert first["promptId"] == prompt_id and first["user"].startswith("apikey:")
    # ... with personal data pseudonymized: the data subject's id as user, a keyed digest of the notes.
    assert {k: first["data"][k] for k in ("promptId", "score")} == {"promptId": prompt_id, "score": 4.0}
    assert first["data"]["user"].startswith("eus_") and first["data"]["notes"].startswith("hmac-sha256:")
    assert first["data"]["feedbackId"] == body["id"] and first["data"]["versionId"] == production


async def test_contract_feedback_rejects_bad_payloads(api: Api) -> None:
    good = {"promptId": EXAMPLE, "user": "u", "score": 4, "notes": "n"}
    for change, where in (
        ({"score": 0}, "score"),
        ({"score": 5.01}, "score"),
        ({"score": -3}, "score"),
        ({"score": "4"}, "score"),
        ({"score": True}, "score"),
        ({"score": None}, "score"),
        ({"promptId": ""}, "promptId"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"user": "u" * 201}, "user"),
        ({"extra": 1}, "extra"),
    ):
        r = await api.post(CONTRACT, json={**good, **change})
        assert r.status_code == 422, (change, r.text)
        assert r.json()["code"] == "validation_error" and where in r.json()["detail"], (change, r.json())
    r = await api.post(CONTRACT, json={**good, "score": 9})
    assert "between 1 and 5" in r.json()["detail"]
    for missing in ("promptId", "score"):
        r = await api.post(CONTRACT, json={k: v for k, v in good.items() if k != missing})
        assert r.status_code == 422 and missing in r.json()["detail"], r.text
    for ref, code in (
        ("no/such-prompt", "prompt_not_found"),
        (f"{EXAMPLE}@nolabel", "label_not_found"),
        (f"{EXAMPLE}@99", "version_not_found"),
        ("ver_00000000000000000000000000", "version_not_found"),
        ("prm_00000000000000000000000000", "prompt_not_found"),
    ):
        r = await api.post(CONTRACT, json={**good, "promptId": ref})
        assert r.status_code == 404 and r.json()["code"] == code, (ref, r.text)
    # Nothing was stored by any rejected request.
    assert (await api.get("/api/v1/feedback")).json()["items"] == []
    assert await audit_events(api, "FeedbackSubmitted") == []


async def test_contract_feedback_honours_idempotency_keys(api: Api) -> None:
    payload = {"promptId": EXAMPLE, "user": "u", "score": 5, "notes": "great"}
    headers = {"Idempotency-Key": "fb-1"}
    first = await api.post(CONTRACT, json=payload, headers=headers)
    again = await api.post(CONTRACT, json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers.get("idempotent-replayed") == "true"
    assert len((await api.get("/api/v1/feedback")).json()["items"]) == 1


# --- rich feedback on runs ---------------------------------------------------------------------------------------


async def test_rich_feedback_on_runs_and_listing(fapi: Api) -> None:
    run1 = await make_run(fapi, "Broke after a week")
    run2 = await make_run(fapi, "Love it")
    qa = (await fapi.make_key("QAAnalyst", name="qa"))["key"]

    r = await fapi.post(
        "/api/v1/feedback",
        qa,
        json={
            "runId": run1["runId"],
            "thumbs": -1,
            "rubric": {"correctness": 2, "clarity": 4.5},
            "tags": ["wrong-label", "tone"],
            "notes": "Should be negative",
        },
    )
    assert r.status_code == 201, r.text
    down = r.json()
    assert (down["runId"], down["promptId"], down["versionId"]) == (
        run1["runId"],
        run1["promptId"],
        run1["versionId"],
    )
    assert down["thumbs"] == -1 and down["score"] is None and down["user"] == "apikey:qa"
    assert down["rubric"] == {"correctness": 2.0, "clarity": 4.5} and down["tags"] == ["wrong-label", "tone"]
    r = await fapi.post(
        "/api/v1/feedback",
        json={"runId": run2["runId"], "score": 5, "thumbs": 1, "tags": ["tone"], "user": "alice"},
    )
    assert r.status_code == 201, r.text
    up = r.json()
    r = await fapi.post(
        "/api/v1/feedback", json={"prompt": EXAMPLE, "score": 3, "source": "automated", "user": "judge"}
    )
    assert r.status_code == 201 and r.json()["runId"] is None and r.json()["source"] == "automated"
    auto = r.json()

    async def ids(**params: Any) -> list[str]:
        r = await fapi.get("/api/v1/feedback", params=params)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["items"]]

    assert await ids() == [auto["id"], up["id"], down["id"]]  # newest first
    assert await ids(runId=run1["runId"]) == [down["id"]]
    assert await ids(tag="tone") == [up["id"], down["id"]]
    assert await ids(tag="wrong-label") == [down["id"]]
    assert await ids(tag="wrong") == []
    assert await ids(minScore=4) == [up["id"]]
    assert await ids(maxScore=3) == [auto["id"]]
    assert await ids(user="alice") == [up["id"]]
    assert await ids(source="automated") == [auto["id"]]
    assert await ids(prompt=EXAMPLE) == [auto["id"], up["id"], down["id"]]
    assert await ids(promptId=run1["promptId"], versionId=run1["versionId"]) == [
        auto["id"],
        up["id"],
        down["id"],
    ]
    assert await ids(prompt="support/reply") == []
    # cursor pagination
    page = (await fapi.get("/api/v1/feedback", params={"limit": 2})).json()
    assert [f["id"] for f in page["items"]] == [auto["id"], up["id"]] and page["nextCursor"]
    rest = (await fapi.get("/api/v1/feedback", params={"limit": 2, "cursor": page["nextCursor"]})).json()
    assert [f["id"] for f in rest["items"]] == [down["id"]] and rest["nextCursor"] is None
    r = await fapi.get("/api/v1/feedback", params={"cursor": "bogus"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    assert (await fapi.get(f"/api/v1/feedback/{down['id']}")).json() == down
    assert (await fapi.get("/api/v1/feedback/fbk_nope")).status_code == 404

    events = await audit_events(fapi, "FeedbackSubmitted")
    by_id = {e["data"]["feedbackId"]: e for e in events}
    assert by_id[down["id"]]["data"]["runId"] == run1["runId"]
    assert by_id[down["id"]]["data"]["thumbs"] == -1
    assert by_id[down["id"]]["data"]["rubric"] == {"correctness": 2.0, "clarity": 4.5}
    assert by_id[down["id"]]["promptId"] == run1["promptId"]


async def test_rich_feedback_validation(fapi: Api) -> None:
    run = await make_run(fapi, "ok")
    base = {"runId": run["runId"]}
    for body, fragment in (
        (base, "at least one of"),
        ({**base, "notes": "only a note"}, "at least one of"),
        ({"score": 3}, "exactly one of"),
        ({**base, "prompt": EXAMPLE, "score": 3}, "exactly one of"),
        ({**base, "thumbs": 2}, "thumbs"),
        ({**base, "thumbs": 0}, "thumbs"),
        ({**base, "score": 0.5}, "between 1 and 5"),
        ({**base, "rubric": {"correctness": 6}}, "between 1 and 5"),
        ({**base, "rubric": {"vibes": 3}}, "rubric"),
        ({**base, "score": 3, "tags": ["has space"]}, "invalid tag"),
        ({**base, "score": 3, "tags": ["t"] * 21}, "tags"),
        ({**base, "score": 3, "source": "annotation"}, "source"),
    ):
        r = await fapi.post("/api/v1/feedback", json=body)
        assert r.status_code == 422, (body, r.text)
        assert fragment in r.json()["detail"], (body, r.json()["detail"])
    for body, code in (
        ({"runId": "run_00000000000000000000000000", "score": 3}, "run_not_found"),
        ({"evalResultId": "evc_00000000000000000000000000", "score": 3}, "eval_result_not_found"),
        ({"prompt": "no/such", "score": 3}, "prompt_not_found"),
    ):
        r = await fapi.post("/api/v1/feedback", json=body)
        assert r.status_code == 404 and r.json()["code"] == code, r.text
    assert (await fapi.get("/api/v1/feedback")).json()["items"] == []


# --- aggregates ---------------------------------------------------------------------------------------------------


async def test_summary_per_version(api: Api) -> None:
    info = await prompt_info(api)
    v1 = await version_id(api, EXAMPLE, 1)
    v2 = (await add_version(api))["id"]
    ratings: list[tuple[str, dict[str, Any]]] = [
        (v1, {"score": 5, "thumbs": 1, "rubric": {"correctness": 5, "clarity": 4}, "tags": ["good"]}),
        (v1, {"score": 3, "rubric": {"correctness": 3}, "tags": ["good", "slow"]}),
        (v1, {"thumbs": -1, "tags": ["slow"]}),
        (v2, {"score": 2, "thumbs": -1, "rubric": {"safety": 1}}),
        (v2, {"score": 1.5, "thumbs": -1}),
    ]
    for vid, fields in ratings:
        r = await api.post("/api/v1/feedback", json={"prompt": vid, **fields})
        assert r.status_code == 201, r.text

    r = await api.get("/api/v1/feedback/summary", params={"prompt": EXAMPLE})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["promptId"] == info["prompt"]["id"] and out["name"] == EXAMPLE
    assert [(v["version"], v["versionId"]) for v in out["versions"]] == [(1, v1), (2, v2)]
    first, second = out["versions"]
    assert first["count"] == 3 and first["scored"] == 2 and first["meanScore"] == pytest.approx(4.0)
    assert (first["minScore"], first["maxScore"]) == (3.0, 5.0)
    assert (first["thumbsUp"], first["thumbsDown"]) == (1, 1)
    assert first["rubric"] == {
        "correctness": {"count": 2, "mean": pytest.approx(4.0)},
        "clarity": {"count": 1, "mean": pytest.approx(4.0)},
    }
    assert first["tags"] == {"good": 2, "slow": 2}
    assert first["scoreHistogram"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert second["count"] == 2 and second["meanScore"] == pytest.approx(1.75)
    assert (second["thumbsUp"], second["thumbsDown"]) == (0, 2) and second["tags"] == {}
    assert second["rubric"] == {"safety": {"count": 1, "mean": pytest.approx(1.0)}}
    overall = out["overall"]
    assert overall["count"] == 5 and overall["scored"] == 4
    assert overall["meanScore"] == pytest.approx((5 + 3 + 2 + 1.5) / 4)
    assert (overall["thumbsUp"], overall["thumbsDown"]) == (1, 3)

    only_v2 = (await api.get("/api/v1/feedback/summary", params={"prompt": f"{EXAMPLE}@2"})).json()
    assert [v["versionId"] for v in only_v2["versions"]] == [v2] and only_v2["overall"]["count"] == 2
    both = (await api.get("/api/v1/feedback/summary", params=[("versionId", v1), ("versionId", v2)])).json()
    assert [v["count"] for v in both["versions"]] == [3, 2] and both["promptId"] is None
    r = await api.get("/api/v1/feedback/summary")
    assert r.status_code == 422 and r.json()["code"] == "summary_scope_required"
    r = await api.get("/api/v1/feedback/summary", params={"prompt": "no/such"})
    assert r.status_code == 404
    empty = (await api.get("/api/v1/feedback/summary", params={"prompt": "support/reply"})).json()
    assert (
        empty["versions"] == [] and empty["overall"]["count"] == 0 and empty["overall"]["meanScore"] is None
    )


# --- permissions and tenancy ------------------------------------------------------------------------------------------


async def test_viewer_cannot_give_feedback_but_a_qa_analyst_can(api: Api) -> None:
    payload = {"promptId": EXAMPLE, "user": "u", "score": 4, "notes": ""}
    for role in ("Viewer", "ComplianceOfficer"):
        key = (await api.make_key(role))["key"]
        for path, body in ((CONTRACT, payload), ("/api/v1/feedback", {"prompt": EXAMPLE, "score": 4})):
            r = await api.post(path, key, json=body)
            assert r.status_code == 403, r.text
            assert r.json()["code"] == "permission_denied" and r.json()["permission"] == "feedback:write"
        assert (await api.get("/api/v1/feedback", key)).status_code == 200
        r = await api.post("/api/v1/annotations", key, json={"runIds": ["run_x"]})
        assert r.status_code == 403 and r.json()["permission"] == "annotation:manage"
    for role in ("QAAnalyst", "PromptEngineer"):
        key = (await api.make_key(role))["key"]
        r = await api.post(CONTRACT, key, json=payload)
        assert r.status_code == 201, r.text
    assert len((await api.get("/api/v1/feedback")).json()["items"]) == 2


async def test_feedback_is_tenant_scoped(fapi: Api) -> None:
    run = await make_run(fapi, "mine")
    mine = (await fapi.post("/api/v1/feedback", json={"runId": run["runId"], "score": 4})).json()
    session = (
        await fapi.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    ).json()["token"]
    fapi.client.cookies.clear()
    r = await fapi.post("/api/v1/projects", session, json={"name": "project-b"})
    assert r.status_code == 201, r.text
    r = await fapi.post(
        "/api/v1/api-keys",
        session,
        json={"name": "b", "role": "PromptOpsAdmin"},
        headers={"X-Project": "project-b"},
    )
    assert r.status_code == 201, r.text
    b_key = r.json()["key"]
    a_prompt, a_version = run["promptId"], run["versionId"]

    for body in (
        {"runId": run["runId"], "score": 1},
        {"prompt": a_prompt, "score": 1},
        {"prompt": a_version, "score": 1},
        {"prompt": EXAMPLE, "score": 1},  # project B has no examples: the name is unknown there
    ):
        r = await fapi.post("/api/v1/feedback", b_key, json=body)
        assert r.status_code == 404, (body, r.text)
    r = await fapi.post(CONTRACT, b_key, json={"promptId": a_prompt, "user": "x", "score": 1, "notes": ""})
    assert r.status_code == 404
    assert (await fapi.get(f"/api/v1/feedback/{mine['id']}", b_key)).status_code == 404
    assert (await fapi.get("/api/v1/feedback", b_key)).json()["items"] == []
    r = await fapi.get("/api/v1/feedback/summary", b_key, params=[("versionId", a_version)])
    assert r.json()["versions"][0]["count"] == 0 and r.json()["overall"]["count"] == 0
    r = await fapi.post("/api/v1/annotations", b_key, json={"runIds": [run["runId"]]})
    assert r.status_code == 404 and r.json()["code"] == "run_not_found"
    # project A still sees exactly its own record
    assert [f["id"] for f in (await fapi.get("/api/v1/feedback")).json()["items"]] == [mine["id"]]
