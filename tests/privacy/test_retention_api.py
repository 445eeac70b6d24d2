"""Retention policies: validated and audited; the periodic task deletes exactly the rows older than the policy
allows, per project, and audits each execution with its counts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from promptops.jobs import periodic
from promptops.privacy.retention import TASK
from tests.support.app import Api
from tests.support.tenancy import make_project_b

EXAMPLE = "support/reply"


async def backdate_feedback(api: Api, feedback_id: str, days: int) -> None:
    """Move one feedback record ``days`` into the past (the API stamps records with the current time)."""
    url: str = api.app.state.runtime.settings.database_url
    when = datetime.now(UTC) - timedelta(days=days)
    if url.startswith("sqlite"):
        with sqlite3.connect(Path(url.split(":///", 1)[1])) as conn:
            stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")
            assert (
                conn.execute("UPDATE feedback SET created_at = ? WHERE id = ?", (stamp, feedback_id)).rowcount
                == 1
            )
        return
    conn = await asyncpg.connect(url)
    try:
        assert (
            await conn.execute("UPDATE feedback SET created_at = $1 WHERE id = $2", when, feedback_id)
            == "UPDATE 1"
        )
    finally:
        await conn.close()


async def add_runs(api: Api, ages_days: list[float], key: str | None = None) -> list[str]:
    now = datetime.now(UTC)
    runs = [
        {
            "model": "m",
            "input": {"prompt": f"p{i}"},
            "output": "o",
            "createdAt": (now - timedelta(days=d)).isoformat(),
        }
        for i, d in enumerate(ages_days)
    ]
    kwargs = {} if key is None else {"key": key}
    r = await api.post("/api/v1/runs/batch", json={"runs": runs}, **kwargs)
    assert r.status_code in (200, 201), r.text
    return list(r.json()["runIds"])


async def add_feedback(api: Api, notes: str, key: str | None = None, prompt: str = EXAMPLE) -> str:
    kwargs = {} if key is None else {"key": key}
    body = {"promptId": prompt, "user": "u", "score": 3, "notes": notes}
    r = await api.post("/api/prompt/feedback", json=body, **kwargs)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_policy_validation_and_audit(api: Api) -> None:
    r = await api.get("/api/v1/privacy/retention")
    assert r.status_code == 200 and r.json()["runsDays"] is None and r.json()["feedbackDays"] is None
    for body in (
        {"runsDays": 0},
        {"runsDays": 36_501},
        {"feedbackDays": -1},
        {"runsDays": "x"},
        {"other": 1},
    ):
        r = await api.put("/api/v1/privacy/retention", json=body)
        assert r.status_code == 422 and r.json()["code"] == "validation_error", (body, r.text)
    r = await api.post("/api/v1/privacy/retention/apply")
    assert r.status_code == 422 and r.json()["code"] == "no_retention_policy"
    r = await api.put("/api/v1/privacy/retention", json={"runsDays": 30, "feedbackDays": 90})
    assert r.status_code == 200, r.text
    assert (r.json()["runsDays"], r.json()["feedbackDays"]) == (30, 90) and r.json()["updatedBy"]
    assert (await api.get("/api/v1/privacy/retention")).json()["runsDays"] == 30
    events = (await api.get("/api/v1/audit", params={"eventType": "RetentionPolicyChanged"})).json()["events"]
    assert events[0]["data"] == {
        "runsDays": 30,
        "feedbackDays": 90,
        "from": {"runsDays": None, "feedbackDays": None},
    }
    compliance = (await api.make_key("ComplianceOfficer"))["key"]
    r = await api.put("/api/v1/privacy/retention", compliance, json={"runsDays": 7})
    assert r.status_code == 200 and r.json()["feedbackDays"] is None
    assert (await api.get("/api/v1/privacy/retention", compliance)).status_code == 200


async def test_scheduled_retention_deletes_exactly_the_old_rows_and_audits(api: Api) -> None:
    old_run, new_run, edge_run = await add_runs(api, [10, 0, 4])
    old_fb, new_fb = await add_feedback(api, "old note"), await add_feedback(api, "new note")
    await backdate_feedback(api, old_fb, 40)
    # Another project with old data but no policy: untouched.
    project_b = await make_project_b(api)
    other = project_b["key"]
    other_run = (await add_runs(api, [20], key=other))[0]
    other_fb = await add_feedback(api, "other", key=other, prompt=project_b["name"])
    await backdate_feedback(api, other_fb, 400)

    r = await api.put("/api/v1/privacy/retention", json={"runsDays": 5, "feedbackDays": 30})
    assert r.status_code == 200
    runtime = api.app.state.runtime
    await periodic.run_now(runtime, TASK)

    runs = {x["id"] for x in (await api.get("/api/v1/runs", params={"limit": 200})).json()["items"]}
    assert new_run in runs and edge_run in runs and old_run not in runs
    feedback = {f["id"] for f in (await api.get("/api/v1/feedback")).json()["items"]}
    assert feedback == {new_fb}
    assert other_run in {x["id"] for x in (await api.get("/api/v1/runs", other)).json()["items"]}
    assert other_fb in {f["id"] for f in (await api.get("/api/v1/feedback", other)).json()["items"]}
    events = (await api.get("/api/v1/audit", params={"eventType": "RetentionApplied"})).json()["events"]
    assert len(events) == 1 and events[0]["user"] == "system"
    assert {
        k: events[0]["data"][k] for k in ("runsDeleted", "feedbackDeleted", "runsDays", "feedbackDays")
    } == {
        "runsDeleted": 1,
        "feedbackDeleted": 1,
        "runsDays": 5,
        "feedbackDays": 30,
    }
    assert (await api.get("/api/v1/privacy/retention")).json()["lastAppliedAt"]
    assert (await api.get("/api/v1/audit", other, params={"eventType": "RetentionApplied"})).json()[
        "events"
    ] == []

    # Every execution is audited, also when nothing is old enough; the REST trigger does the same.
    await periodic.run_now(runtime, TASK)
    r = await api.post("/api/v1/privacy/retention/apply")
    assert r.status_code == 200 and (r.json()["runsDeleted"], r.json()["feedbackDeleted"]) == (0, 0)
    events = (await api.get("/api/v1/audit", params={"eventType": "RetentionApplied"})).json()["events"]
    assert [(e["data"]["runsDeleted"], e["data"]["feedbackDeleted"]) for e in events] == [
        (0, 0),
        (0, 0),
        (1, 1),
    ]
    assert (await api.get("/api/v1/audit/verify")).json()["ok"] is True
    viewer = (await api.make_key("Viewer"))["key"]
    assert (await api.post("/api/v1/privacy/retention/apply", viewer)).status_code == 403
