"""The annotation queue over HTTP on SQLite and PostgreSQL: enqueue, list with what to rate, atomic claims,
claim expiry, rating, skipping, releasing, who may act, and the audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from promptops.db import utcnow
from promptops.feedback.models import AnnotationItem
from tests.support.app import Api
from tests.support.feedback_support import EXAMPLE, audit_events, make_run

Q = "/api/v1/annotations"


async def enqueue(api: Api, key: str | None = None, **body: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {} if key is None else {"key": key}
    r = await api.post(Q, json=body, **kwargs)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def next_item(api: Api, key: str, **body: Any) -> dict[str, Any] | None:
    r = await api.post(f"{Q}/next", key, json=body)
    if r.status_code == 204:
        assert r.content == b""
        return None
    assert r.status_code == 200, r.text
    return dict(r.json())


async def age_claim(api: Api, item_id: str, minutes: int) -> None:
    """Pretend the item was claimed ``minutes`` ago (the clock is the only thing a test cannot wait for)."""
    async with api.app.state.runtime.db.transaction(write=True) as session:
        await session.execute(
            update(AnnotationItem)
            .where(AnnotationItem.id == item_id)
            .values(claimed_at=utcnow() - timedelta(minutes=minutes))
        )


async def test_queue_claim_rate_skip_flow(fapi: Api) -> None:
    runs = [await make_run(fapi, f"review number {i}") for i in range(3)]
    qa1 = (await fapi.make_key("QAAnalyst", name="qa1"))["key"]
    qa2 = (await fapi.make_key("QAAnalyst", name="qa2"))["key"]
    qa2_id = (await fapi.get("/api/v1/auth/me", qa2)).json()["id"]

    queued = await enqueue(fapi, qa1, runIds=[r["runId"] for r in runs[:2]], queue="triage")
    assert queued["queue"] == "triage" and queued["alreadyQueued"] == []
    assert [i["runId"] for i in queued["created"]] == [runs[0]["runId"], runs[1]["runId"]]
    item0 = queued["created"][0]
    assert item0["status"] == "pending" and item0["versionId"] == runs[0]["versionId"]
    assert item0["promptId"] == runs[0]["promptId"] and item0["id"].startswith("ann_")
    # Queuing again only adds what is not already waiting.
    again = await enqueue(fapi, runIds=[runs[1]["runId"], runs[2]["runId"]], queue="triage")
    assert [i["runId"] for i in again["created"]] == [runs[2]["runId"]]
    assert again["alreadyQueued"] == [runs[1]["runId"]]

    # The list shows what to rate: the run's input and output.
    listed = (await fapi.get(Q, params={"queue": "triage", "status": "pending"})).json()["items"]
    assert [i["runId"] for i in listed] == [r["runId"] for r in runs]
    subject = listed[0]["subject"]
    assert subject["kind"] == "run" and subject["output"] == runs[0]["text"]
    assert "review number 0" in str(subject["input"]) and subject["model"] == "gpt-4o-mini"
    assert (await fapi.get(Q, params={"queue": "other"})).json()["items"] == []

    # Claims hand out the oldest item first, each to one analyst.
    mine = await next_item(fapi, qa1, queue="triage")
    theirs = await next_item(fapi, qa2, queue="triage")
    assert mine and theirs and mine["runId"] == runs[0]["runId"] and theirs["runId"] == runs[1]["runId"]
    assert mine["status"] == "claimed" and mine["claimExpiresAt"] and mine["subject"]["output"]
    assert theirs["claimedBy"] == qa2_id

    # Only the claimer (or an admin) may rate, skip or release a claimed item.
    for action, body in (("rate", {"score": 5}), ("skip", {"reason": "mine now"}), ("release", None)):
        r = await fapi.post(f"{Q}/{theirs['id']}/{action}", qa1, json=body)
        assert r.status_code == 403 and r.json()["code"] == "claimed_by_other", (action, r.text)
    r = await fapi.post(f"{Q}/{theirs['id']}/claim", qa1)
    assert r.status_code == 409 and r.json()["code"] == "already_claimed"

    r = await fapi.post(
        f"{Q}/{mine['id']}/rate",
        qa1,
        json={"score": 2, "rubric": {"correctness": 1}, "tags": ["wrong"], "notes": "mislabelled"},
    )
    assert r.status_code == 200, r.text
    rated = r.json()
    assert rated["item"]["status"] == "done" and rated["item"]["feedbackId"] == rated["feedback"]["id"]
    fb = rated["feedback"]
    assert fb["source"] == "annotation" and fb["runId"] == runs[0]["runId"] and fb["score"] == 2.0
    assert fb["versionId"] == runs[0]["versionId"] and fb["user"] == "apikey:qa1"
    r = await fapi.post(f"{Q}/{mine['id']}/rate", qa1, json={"score": 3})
    assert r.status_code == 409 and r.json()["code"] == "annotation_closed"
    listed = (await fapi.get("/api/v1/feedback", params={"source": "annotation"})).json()["items"]
    assert [f["id"] for f in listed] == [fb["id"]]

    r = await fapi.post(f"{Q}/{theirs['id']}/skip", qa2, json={"reason": "output is empty"})
    assert (
        r.status_code == 200
        and r.json()["status"] == "skipped"
        and r.json()["skipReason"] == "output is empty"
    )

    last = await next_item(fapi, qa1, queue="triage")
    assert last and last["runId"] == runs[2]["runId"]
    r = await fapi.post(f"{Q}/{last['id']}/release", qa1)
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["claimedBy"] is None
    r = await fapi.post(f"{Q}/{last['id']}/release", qa1)
    assert r.status_code == 409 and r.json()["code"] == "not_claimed"
    # An admin may act on anyone's claim.
    r = await fapi.post(f"{Q}/{last['id']}/claim", qa2)
    assert r.status_code == 200 and r.json()["claimedBy"] == qa2_id
    r = await fapi.post(f"{Q}/{last['id']}/rate", json={"thumbs": 1})
    assert r.status_code == 200 and r.json()["item"]["status"] == "done"
    assert await next_item(fapi, qa1, queue="triage") is None

    statuses = {
        i["runId"]: i["status"] for i in (await fapi.get(Q, params={"queue": "triage"})).json()["items"]
    }
    assert statuses == {runs[0]["runId"]: "done", runs[1]["runId"]: "skipped", runs[2]["runId"]: "done"}
    assert len((await fapi.get(Q, params={"status": "done"})).json()["items"]) == 2

    queued_events = await audit_events(fapi, "AnnotationsQueued")
    assert [e["data"]["count"] for e in queued_events] == [1, 2]  # newest first
    assert queued_events[-1]["promptId"] == runs[0]["promptId"]
    claims = await audit_events(fapi, "AnnotationClaimed")
    assert len(claims) == 4 and {c["data"]["annotationId"] for c in claims} == {
        mine["id"],
        theirs["id"],
        last["id"],
    }
    skipped = await audit_events(fapi, "AnnotationSkipped")
    assert [e["data"]["reason"] for e in skipped] == ["output is empty"]
    assert len(await audit_events(fapi, "AnnotationReleased")) == 1
    ratings = [e for e in await audit_events(fapi, "FeedbackSubmitted") if "annotationId" in e["data"]]
    assert {e["data"]["annotationId"] for e in ratings} == {mine["id"], last["id"]}


async def test_concurrent_next_calls_never_share_an_item(fapi: Api) -> None:
    runs = [await make_run(fapi, f"concurrent {i}") for i in range(3)]
    await enqueue(fapi, runIds=[r["runId"] for r in runs])
    keys = [(await fapi.make_key("QAAnalyst", name=f"qa{i}"))["key"] for i in range(6)]
    claimed = await asyncio.gather(*(next_item(fapi, k) for k in keys))
    got = [c["id"] for c in claimed if c is not None]
    assert len(got) == 3 and len(set(got)) == 3  # every item once, and three analysts got nothing
    assert claimed.count(None) == 3
    holders = {c["id"]: c["claimedBy"] for c in claimed if c is not None}
    assert len(set(holders.values())) == 3
    items = (await fapi.get(Q, params={"status": "claimed"})).json()["items"]
    assert {i["id"]: i["claimedBy"] for i in items} == holders


async def test_an_abandoned_claim_expires_and_returns_to_the_queue(fapi: Api) -> None:
    run = await make_run(fapi, "abandoned")
    item = (await enqueue(fapi, runIds=[run["runId"]]))["created"][0]
    qa1 = (await fapi.make_key("QAAnalyst", name="qa1"))["key"]
    qa2 = (await fapi.make_key("QAAnalyst", name="qa2"))["key"]
    assert (await next_item(fapi, qa1))["id"] == item["id"]  # type: ignore[index]
    assert await next_item(fapi, qa2) is None

    await age_claim(fapi, item["id"], minutes=29)
    assert await next_item(fapi, qa2) is None  # still within the 30-minute claim
    await age_claim(fapi, item["id"], minutes=31)
    shown = (await fapi.get(f"{Q}/{item['id']}")).json()
    assert shown["status"] == "pending" and shown["claimedBy"] is None and shown["claimExpiresAt"] is None
    assert [i["id"] for i in (await fapi.get(Q, params={"status": "pending"})).json()["items"]] == [
        item["id"]
    ]
    assert (await fapi.get(Q, params={"status": "claimed"})).json()["items"] == []

    taken = await next_item(fapi, qa2)
    assert taken and taken["id"] == item["id"] and taken["status"] == "claimed"
    # The first analyst's claim is gone: the item belongs to the second now.
    r = await fapi.post(f"{Q}/{item['id']}/rate", qa1, json={"score": 4})
    assert r.status_code == 403 and r.json()["code"] == "claimed_by_other"
    r = await fapi.post(f"{Q}/{item['id']}/rate", qa2, json={"score": 4})
    assert r.status_code == 200, r.text
    claims = await audit_events(fapi, "AnnotationClaimed")
    assert claims[0]["data"]["previousClaimer"] is not None  # the re-claim names whose claim expired


async def test_sampling_recent_runs_of_a_prompt(fapi: Api) -> None:
    runs = [await make_run(fapi, f"sample {i}") for i in range(4)]
    first = await enqueue(fapi, sample={"prompt": EXAMPLE, "limit": 2}, queue="weekly")
    assert [i["runId"] for i in first["created"]] == [runs[3]["runId"], runs[2]["runId"]]  # newest first
    second = await enqueue(fapi, sample={"prompt": EXAMPLE, "limit": 5}, queue="weekly")
    assert [i["runId"] for i in second["created"]] == [runs[1]["runId"], runs[0]["runId"]]
    third = await enqueue(fapi, sample={"prompt": EXAMPLE}, queue="weekly")
    assert third["created"] == [] and third["alreadyQueued"] == []
    # a version selector samples that version's runs only; other prompts' runs never come along
    other = await enqueue(fapi, sample={"prompt": f"{EXAMPLE}@production", "source": "playground"}, queue="v")
    assert len(other["created"]) == 4
    none = await enqueue(fapi, sample={"prompt": "support/reply"}, queue="v2")
    assert none["created"] == []
    r = await fapi.post(Q, json={"sample": {"prompt": "no/such"}})
    assert r.status_code == 404 and r.json()["code"] == "prompt_not_found"


async def test_enqueue_validation_and_nothing_half_written(fapi: Api) -> None:
    run = await make_run(fapi, "valid")
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "runIds"),
        ({"runIds": []}, "runIds"),
        ({"runIds": [run["runId"]], "queue": "Bad Queue"}, "queue"),
        ({"runIds": ["r"] * 501}, "runIds"),
        ({"sample": {"prompt": EXAMPLE, "limit": 0}}, "limit"),
    ]
    for body, fragment in bad:
        r = await fapi.post(Q, json=body)
        assert r.status_code == 422 and fragment in r.json()["detail"], (body, r.text)
    r = await fapi.post(Q, json={"runIds": [run["runId"], "run_00000000000000000000000000"]})
    assert r.status_code == 404 and r.json()["code"] == "run_not_found"
    assert r.json()["missing"] == ["run_00000000000000000000000000"]
    r = await fapi.post(Q, json={"evalResultIds": ["evc_00000000000000000000000000"]})
    assert r.status_code == 404 and r.json()["code"] == "eval_result_not_found"
    assert (await fapi.get(Q)).json()["items"] == []
    assert await audit_events(fapi, "AnnotationsQueued") == []
    r = await fapi.get(f"{Q}/ann_nope")
    assert r.status_code == 404 and r.json()["code"] == "annotation_not_found"
    actions: list[tuple[str, dict[str, Any] | None]] = [
        ("claim", None),
        ("rate", {"score": 3}),
        ("skip", {"reason": "x"}),
        ("release", None),
    ]
    for action, action_body in actions:
        r = await fapi.post(f"{Q}/ann_nope/{action}", json=action_body)
        assert r.status_code == 404 and r.json()["code"] == "annotation_not_found", (action, r.text)
    r = await fapi.post(f"{Q}/next", json={"queue": "NOT valid"})
    assert r.status_code == 422
    item = (await enqueue(fapi, runIds=[run["runId"]]))["created"][0]
    r = await fapi.post(f"{Q}/{item['id']}/rate", json={"notes": "no score"})
    assert r.status_code == 422 and "at least one of" in r.json()["detail"]
    assert (await fapi.get(f"{Q}/{item['id']}")).json()["status"] == "pending"


async def test_annotation_permissions_and_tenancy(fapi: Api) -> None:
    run = await make_run(fapi, "perm")
    viewer = (await fapi.make_key("Viewer"))["key"]
    r = await fapi.post(Q, viewer, json={"runIds": [run["runId"]]})
    assert r.status_code == 403 and r.json()["permission"] == "annotation:manage"
    item = (await enqueue(fapi, runIds=[run["runId"]]))["created"][0]
    assert [i["id"] for i in (await fapi.get(Q, viewer)).json()["items"]] == [item["id"]]
    for path in (f"{Q}/next", f"{Q}/{item['id']}/claim", f"{Q}/{item['id']}/rate"):
        r = await fapi.post(path, viewer, json={"score": 3})
        assert r.status_code == 403 and r.json()["permission"] == "feedback:write", path

    # Another project's admin sees nothing of this queue and cannot touch its items.
    login = await fapi.post(
        "/api/v1/auth/login", None, json={"email": "admin@localhost", "password": "admin-password-123"}
    )
    session = login.json()["token"]
    fapi.client.cookies.clear()
    assert (await fapi.post("/api/v1/projects", session, json={"name": "project-b"})).status_code == 201
    r = await fapi.post(
        "/api/v1/api-keys",
        session,
        json={"name": "b", "role": "PromptOpsAdmin"},
        headers={"X-Project": "project-b"},
    )
    b_key = r.json()["key"]
    assert (await fapi.get(Q, b_key)).json()["items"] == []
    assert await next_item(fapi, b_key) is None
    for action, body in (("claim", None), ("rate", {"score": 1}), ("skip", {}), ("release", None)):
        r = await fapi.post(f"{Q}/{item['id']}/{action}", b_key, json=body)
        assert r.status_code == 404, (action, r.text)
    assert (await fapi.get(f"{Q}/{item['id']}", b_key)).status_code == 404
    assert (await fapi.get(f"{Q}/{item['id']}")).json()["status"] == "pending"


async def test_evaluation_results_can_be_rated_and_queued(fapi: Api) -> None:
    probe = await fapi.get("/api/v1/evals")
    if probe.status_code == 404 and "No route" in probe.json()["detail"]:
        pytest.skip("the evaluations API (/api/v1/evals) is not mounted in app.py")
    cases = [
        {"id": "c1", "input": {"review": "broke in a week"}, "expected": "negative"},
        {"id": "c2", "input": {"review": "works great"}, "expected": "positive"},
    ]
    r = await fapi.post("/api/v1/datasets", json={"name": "fb/reviews", "cases": cases})
    assert r.status_code == 201, r.text
    r = await fapi.post(
        "/api/v1/evals",
        json={
            "prompts": [EXAMPLE],
            "dataset": "fb/reviews",
            "models": [{"provider": "fake", "model": "gpt-4o-mini"}],
            "scorers": [{"type": "contains"}],
        },
    )
    assert r.status_code == 201, r.text
    eval_id = r.json()["id"]
    deadline = asyncio.get_running_loop().time() + 60
    while (await fapi.get(f"/api/v1/evals/{eval_id}")).json()["status"] not in ("completed", "failed"):
        assert asyncio.get_running_loop().time() < deadline, "the evaluation did not finish"
        await asyncio.sleep(0.1)
    results = (await fapi.get(f"/api/v1/evals/{eval_id}/results")).json()["items"]
    assert len(results) == 2
    by_key = {res["caseKey"]: res for res in results}

    r = await fapi.post(
        "/api/v1/feedback", json={"evalResultId": by_key["c1"]["id"], "score": 2, "notes": "missed it"}
    )
    assert r.status_code == 201, r.text
    fb = r.json()
    assert fb["evalResultId"] == by_key["c1"]["id"] and fb["versionId"] == by_key["c1"]["versionId"]
    assert fb["promptId"].startswith("prm_") and fb["runId"] == by_key["c1"]["runId"]

    queued = await enqueue(fapi, evalResultIds=[by_key["c2"]["id"]], queue="evals")
    item = queued["created"][0]
    assert item["evalResultId"] == by_key["c2"]["id"] and item["promptId"] == fb["promptId"]
    shown = await next_item(fapi, (await fapi.make_key("QAAnalyst"))["key"], queue="evals")
    assert shown is not None and shown["id"] == item["id"]
    subject = shown["subject"]
    assert subject["kind"] == "eval_result" and subject["caseKey"] == "c2"
    assert subject["input"] == {"review": "works great"} and subject["expected"] == "positive"
    assert subject["output"] == by_key["c2"]["output"] and subject["model"] == "gpt-4o-mini"
