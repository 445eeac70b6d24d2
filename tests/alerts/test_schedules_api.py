"""Scheduled regression evaluations: cron validation, firing at a fixed time through the periodic task, real
evaluation runs (the built-in echo model), comparison with the last good run, and a regression alert rule that
fires, notifies a signed webhook and an SMTP server on 127.0.0.1, queues the broken cases for QA review and
resolves by itself once the label is fixed. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from promptops.evals.schedules import service as schedules
from promptops.jobs import periodic
from tests.alerts.support import audit_events, create_channel, http_receiver, smtp_receiver, verify
from tests.support.app import Api, open_api

REVIEWS = [
    "great battery and a bright screen",
    "arrived broken and support never answered",
    "the soup was cold and bland",
    "lovely staff and quick service",
    "would buy again without thinking",
    "stopped working after two days",
    "comfortable shoes that fit well",
    "the plot made no sense at all",
    "crisp sound and deep bass",
    "too loud and it smells of plastic",
]
PROMPT = "reg/echo"


@pytest.fixture
async def sapi(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    api_, client, lifespan = await open_api(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"])
    try:
        # v1 repeats the review (passes "contains"), v2 does not
        r = await api_.post(
            "/api/v1/prompts",
            json={
                "name": PROMPT,
                "template": "{{ review }}",
                "variables": [{"name": "review"}],
                "labels": ["production"],
            },
        )
        assert r.status_code == 201, r.text
        r = await api_.post(
            f"/api/v1/prompts/{PROMPT}/versions", json={"template": "Say nothing about {{ review | length }}"}
        )
        assert r.status_code == 201, r.text
        cases = [{"id": f"c{i:02d}", "input": {"review": t}, "expected": t} for i, t in enumerate(REVIEWS)]
        r = await api_.post("/api/v1/datasets", json={"name": "reg/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api_
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def schedule_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "nightly echo",
        "prompt": PROMPT,
        "label": "production",
        "cron": "0 3 * * *",
        "timezone": "UTC",
        "dataset": "reg/reviews",
        "scorers": [{"type": "contains"}],
        "models": [{"provider": "echo", "model": "echo"}],
    }
    body.update(overrides)
    return body


async def create_schedule(api: Api, **overrides: Any) -> dict[str, Any]:
    r = await api.post("/api/v1/eval-schedules", json=schedule_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


async def move_label(api: Api, version: int) -> None:
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", json={"version": version})
    assert r.status_code == 200, r.text


async def history(api: Api, schedule_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/api/v1/eval-schedules/{schedule_id}/runs")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def fire_and_conclude(api: Api, schedule_id: str) -> dict[str, Any]:
    """Make the schedule due, let the periodic task fire it, wait for its evaluation, let the task conclude."""
    r = await api.post(f"/api/v1/eval-schedules/{schedule_id}/run")
    assert r.status_code == 200, r.text
    runtime = api.app.state.runtime
    assert await periodic.run_now(runtime, schedules.TASK)
    newest = (await history(api, schedule_id))[0]
    assert newest["status"] == "running" and newest["evalRunId"], newest
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        run = (await api.get(f"/api/v1/evals/{newest['evalRunId']}")).json()
        if run["status"] in ("completed", "failed", "cancelled"):
            break
        assert asyncio.get_running_loop().time() < deadline, run
        await asyncio.sleep(0.05)
    assert await periodic.run_now(runtime, schedules.TASK)
    concluded = (await history(api, schedule_id))[0]
    assert concluded["id"] == newest["id"] and concluded["status"] != "running", concluded
    return concluded


async def test_schedule_validation_and_cron_times(sapi: Api) -> None:
    made = await create_schedule(sapi, cron="0 3 * * *", timezone="Europe/Riga")
    assert made["dataset"]["name"] == "reg/reviews" and made["dataset"]["version"] == 1
    assert made["scorers"] == [{"type": "contains", "weight": 1.0, "negate": False, "options": {}}]
    assert made["enabled"] is True and made["lastStatus"] is None and made["baselineEvalRunId"] is None
    assert made["description"]
    next_run = datetime.fromisoformat(made["nextRunAt"])
    # 03:00 in Riga is 01:00 UTC in winter (EET) and 00:00 UTC in summer (EEST)
    assert next_run.minute == 0 and next_run.hour in (0, 1) and next_run > datetime.now(UTC)

    for overrides, status, code in (
        ({"cron": "61 * * * *"}, 422, "invalid_cron"),
        ({"cron": "0 3 * * * *"}, 422, "invalid_cron"),
        ({"cron": "* * * * *"}, 422, "cron_too_frequent"),
        ({"timezone": "Mars/Olympus"}, 422, "invalid_timezone"),
        ({"dataset": "nope"}, 404, "dataset_not_found"),
        ({"prompt": "nope"}, 404, "prompt_not_found"),
        ({"label": "staging"}, 404, "label_not_found"),
        ({"scorers": [{"type": "no-such-scorer"}]}, 422, "invalid_scorer"),
        ({"models": [{"provider": "nope", "model": "x"}]}, 404, "connection_not_found"),
        ({"name": "nightly echo"}, 409, "schedule_exists"),
    ):
        r = await sapi.post("/api/v1/eval-schedules", json=schedule_body(**overrides))
        assert r.status_code == status and r.json()["code"] == code, (overrides, r.text)
    r = await sapi.post("/api/v1/eval-schedules", json=schedule_body(cron="x" * 121, name="long"))
    assert r.status_code == 422

    # disabling clears the next run; enabling with a new expression sets it again
    r = await sapi.patch(f"/api/v1/eval-schedules/{made['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["nextRunAt"] is None
    r = await sapi.patch(
        f"/api/v1/eval-schedules/{made['id']}",
        json={"enabled": True, "cron": "30 4 * * 1", "timezone": "UTC"},
    )
    body = r.json()
    assert r.status_code == 200 and body["cron"] == "30 4 * * 1"
    following = datetime.fromisoformat(body["nextRunAt"])
    assert following.weekday() == 0 and (following.hour, following.minute) == (4, 30)
    r = await sapi.patch(f"/api/v1/eval-schedules/{made['id']}", json={"cron": "*/2 * * * *"})
    assert r.status_code == 422 and r.json()["code"] == "cron_too_frequent"
    updated, disabled = await audit_events(sapi, "EvalScheduleUpdated")
    assert disabled["data"]["changes"] == {"enabled": {"from": True, "to": False}}
    assert updated["data"]["changes"]["cron"] == {"from": "0 3 * * *", "to": "30 4 * * 1"}
    (created,) = await audit_events(sapi, "EvalScheduleCreated")
    assert created["data"]["scheduleId"] == made["id"] and created["data"]["currentVersion"] == 1

    listed = (await sapi.get("/api/v1/eval-schedules", params={"prompt": PROMPT})).json()["items"]
    assert [s["id"] for s in listed] == [made["id"]]
    r = await sapi.delete(f"/api/v1/eval-schedules/{made['id']}")
    assert r.status_code == 204
    assert (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()["code"] == "schedule_not_found"
    assert (await audit_events(sapi, "EvalScheduleDeleted"))[0]["data"]["name"] == "nightly echo"


async def test_due_schedules_fire_once_at_their_cron_time(sapi: Api) -> None:
    runtime = sapi.app.state.runtime
    made = await create_schedule(sapi, cron="0 3 * * *", timezone="UTC")
    due = datetime.fromisoformat(made["nextRunAt"])
    assert (due.hour, due.minute) == (3, 0)
    # a minute before it is due nothing fires
    assert await schedules.fire_due(runtime, due - timedelta(minutes=1)) == []
    fired = await schedules.fire_due(runtime, due + timedelta(seconds=5))
    assert len(fired) == 1 and fired[0].status == "running" and fired[0].scheduled_for == due
    # claimed: the same moment fires nothing again, and the next run is the next day's 03:00
    assert await schedules.fire_due(runtime, due + timedelta(seconds=5)) == []
    shown = (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()
    assert datetime.fromisoformat(shown["nextRunAt"]) == due + timedelta(days=1)
    assert shown["lastStatus"] == "running"
    # a schedule that missed several days fires once and moves to the next time after now
    late = due + timedelta(days=3, hours=5)
    assert len(await schedules.fire_due(runtime, late)) == 1
    shown = (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()
    assert datetime.fromisoformat(shown["nextRunAt"]) == due + timedelta(days=4)
    fired_events = await audit_events(sapi, "EvalScheduleFired")
    assert len(fired_events) == 2 and all(e["actorType"] == "system" for e in fired_events)
    queued = await audit_events(sapi, "EvaluationQueued")
    assert {e["data"]["evalRunId"] for e in queued} == {e["data"]["evalRunId"] for e in fired_events}


async def test_regression_is_detected_alerted_reviewed_and_resolved(sapi: Api) -> None:
    runtime = sapi.app.state.runtime
    made = await create_schedule(sapi)
    with http_receiver() as receiver, smtp_receiver() as smtp:
        hook = await create_channel(
            sapi, {"name": "hook", "type": "webhook", "url": f"{receiver.url}/alerts"}
        )
        await create_channel(
            sapi,
            {
                "name": "mail",
                "type": "email",
                "email": {
                    "host": smtp.host,
                    "port": smtp.port,
                    "from": "po@example.com",
                    "to": ["qa@example.com"],
                    "starttls": False,
                },
            },
        )
        r = await sapi.post(
            "/api/v1/alert-rules",
            json={
                "name": "echo regressions",
                "kind": "regression",
                "prompt": PROMPT,
                "severity": "critical",
                "channels": ["hook", "mail"],
            },
        )
        assert r.status_code == 201, r.text
        rule = r.json()
        assert rule["label"] is None and [c["name"] for c in rule["channels"]] == ["hook", "mail"]

        # 1. the first run is the baseline
        first = await fire_and_conclude(sapi, made["id"])
        assert first["status"] == "baseline" and first["version"] == 1 and first["passRate"] == 1.0
        assert first["comparison"] is None
        shown = (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()
        assert shown["baselineEvalRunId"] == first["evalRunId"] and shown["lastStatus"] == "baseline"
        assert await periodic.run_now(runtime, "alerts.evaluate")
        assert (await sapi.get("/api/v1/alerts")).json()["items"] == []

        # 2. production moves to a version that breaks every case: regressed, compared with the baseline
        await move_label(sapi, 2)
        second = await fire_and_conclude(sapi, made["id"])
        assert second["status"] == "regressed" and second["version"] == 2 and second["passRate"] == 0.0
        cmp = second["comparison"]
        assert second["baselineEvalRunId"] == first["evalRunId"]
        assert cmp["significant"] is True and cmp["winner"] == "A" and cmp["mcnemar"]["aOnly"] == len(REVIEWS)
        assert cmp["verdict"].startswith(f"{PROMPT}@1 beats {PROMPT}@2") and len(cmp["broken"]) == len(
            REVIEWS
        )
        shown = (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()
        assert shown["baselineEvalRunId"] == first["evalRunId"]  # the last good run stays the baseline
        finished = await audit_events(sapi, "RegressionCheckFinished")
        assert [e["data"]["status"] for e in finished] == ["regressed", "baseline"]

        assert await periodic.run_now(runtime, "alerts.evaluate")
        (alert,) = (await sapi.get("/api/v1/alerts", params={"status": "open"})).json()["items"]
        assert alert["kind"] == "regression" and alert["severity"] == "critical" and alert["count"] == 1
        assert (
            alert["subject"] == f"schedule:{made['id']}"
            and alert["details"]["evalRunId"] == second["evalRunId"]
        )
        assert "v2" in alert["title"]
        # the evaluation round sent both notifications
        hook_log = (await sapi.get("/api/v1/alert-channels/hook/deliveries")).json()["items"]
        assert [d["status"] for d in hook_log] == ["sent"] and hook_log[0]["alertId"] == alert["id"]
        (got,) = receiver.requests
        assert verify(hook["signingSecret"], got) and got.headers["x-promptops-event"] == "fired"
        payload = got.json()
        assert payload["event"] == "fired" and payload["alert"]["id"] == alert["id"]
        assert payload["alert"]["severity"] == "critical"
        ((_, message),) = smtp.messages
        assert message["Subject"].startswith(
            "[PromptOps] Alert (critical): Regression on reg/echo@production v2"
        )

        # dedup: evaluating again counts, sends nothing new
        assert await periodic.run_now(runtime, "alerts.evaluate")
        (again,) = (await sapi.get("/api/v1/alerts", params={"status": "active"})).json()["items"]
        assert again["id"] == alert["id"] and again["count"] == 2 and len(receiver.requests) == 1

        # one click: the broken cases go to an annotation queue for QA review
        qa = (await sapi.make_key("QAAnalyst"))["key"]
        r = await sapi.post(f"/api/v1/alerts/{alert['id']}/annotation-queue", qa)
        assert r.status_code == 200, r.text
        queued = r.json()
        assert queued["queue"].startswith("alert-") and queued["created"] == len(REVIEWS)
        r = await sapi.post(f"/api/v1/alerts/{alert['id']}/annotation-queue", qa)
        assert r.json() == {**queued, "created": 0, "alreadyQueued": len(REVIEWS), "items": len(REVIEWS)}
        items = (
            await sapi.get("/api/v1/annotations", params={"queue": queued["queue"], "limit": 50})
        ).json()["items"]
        assert len(items) == len(REVIEWS) and all(i["evalResultId"] for i in items)
        assert (await audit_events(sapi, "AlertReviewQueued"))[0]["actorType"] != "system"

        # 3. the label moves back: the next run passes, and the alert resolves by itself
        await move_label(sapi, 1)
        third = await fire_and_conclude(sapi, made["id"])
        assert third["status"] == "pass" and third["comparison"]["significant"] is False
        shown = (await sapi.get(f"/api/v1/eval-schedules/{made['id']}")).json()
        assert shown["baselineEvalRunId"] == third["evalRunId"]
        assert await periodic.run_now(runtime, "alerts.evaluate")
        detail = (await sapi.get(f"/api/v1/alerts/{alert['id']}")).json()
        assert (
            detail["status"] == "resolved"
            and detail["resolution"] == "auto"
            and detail["resolvedBy"] == "system"
        )
        assert detail["annotationQueue"] == queued["queue"]
        kinds = [e["kind"] for e in detail["events"]]
        assert kinds[0] == "fired" and "review_queued" in kinds and kinds.count("notified") == 4
        assert kinds.index("resolved") > kinds.index("review_queued")
        assert [r_.json()["event"] for r_ in receiver.requests] == ["fired", "resolved"]
        assert len(smtp.messages) == 2 and smtp.messages[1][1]["Subject"].startswith("[PromptOps] Resolved")
    listed = [h["status"] for h in await history(sapi, made["id"])]
    assert listed == ["pass", "regressed", "baseline"]
    only_regressed = (
        await sapi.get(f"/api/v1/eval-schedules/{made['id']}/runs", params={"status": "regressed"})
    ).json()
    assert [h["id"] for h in only_regressed["items"]] == [second["id"]]
    resolved = await audit_events(sapi, "AlertResolved")
    assert resolved[0]["data"]["resolution"] == "auto" and resolved[0]["actorType"] == "system"
    fired = await audit_events(sapi, "AlertFired")
    assert len(fired) == 1 and fired[0]["data"]["alertId"] == alert["id"]


async def test_a_broken_schedule_run_is_recorded_as_failed(sapi: Api) -> None:
    made = await create_schedule(sapi, label="production")
    r = await sapi.delete(f"/api/v1/prompts/{PROMPT}/labels/production")
    assert r.status_code in (200, 204), r.text
    await sapi.post(f"/api/v1/eval-schedules/{made['id']}/run")
    assert await periodic.run_now(sapi.app.state.runtime, schedules.TASK)
    (failed,) = await history(sapi, made["id"])
    assert failed["status"] == "failed" and failed["evalRunId"] is None
    assert "production" in failed["error"]
    (event,) = await audit_events(sapi, "RegressionCheckFinished")
    assert event["data"]["status"] == "failed"


async def test_schedule_permissions(sapi: Api) -> None:
    viewer = (await sapi.make_key("Viewer"))["key"]
    qa = (await sapi.make_key("QAAnalyst"))["key"]
    r = await sapi.post("/api/v1/eval-schedules", viewer, json=schedule_body())
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = await sapi.post("/api/v1/eval-schedules", qa, json=schedule_body())
    assert r.status_code == 201, r.text
    made = r.json()
    assert (await sapi.get(f"/api/v1/eval-schedules/{made['id']}", viewer)).status_code == 200
    assert (await sapi.post(f"/api/v1/eval-schedules/{made['id']}/run", viewer)).status_code == 403
    assert (
        await sapi.patch(f"/api/v1/eval-schedules/{made['id']}", viewer, json={"enabled": False})
    ).status_code == 403
    assert (await sapi.delete(f"/api/v1/eval-schedules/{made['id']}", viewer)).status_code == 403
    r = await sapi.post(f"/api/v1/eval-schedules/{made['id']}/run", qa)
    assert r.status_code == 200
    (triggered,) = await audit_events(sapi, "EvalScheduleTriggered")
    assert triggered["data"]["scheduleId"] == made["id"]
