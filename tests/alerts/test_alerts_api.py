"""Alert rules and the alert inbox through the REST API: a threshold rule on real production traffic (runs
recorded through the runs API, read through monitoring's rollups) that fires once, deduplicates, is
acknowledged, resolves by itself and opens an annotation queue of the affected runs; a drift rule; an experiment
guardrail rule; validation, permissions, project isolation and audit. SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from promptops.alerts import service as alerts
from tests.alerts.support import audit_events, create_channel, http_receiver, verify, wait_deliveries
from tests.experiments import support as exp
from tests.monitoring.support import ingest, prompt_with_versions, sdk_run
from tests.support.app import Api, open_api
from tests.support.tenancy import make_project_b

PROMPT = "mon/triage"


@pytest.fixture
async def aapi(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    api_, client, lifespan = await open_api(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"])
    try:
        yield api_
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def create_rule(api: Api, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    r = await api.post("/api/v1/alert-rules", *([key] if key else []), json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def evaluate(api: Api, rule: str) -> dict[str, Any]:
    r = await api.post(f"/api/v1/alert-rules/{rule}/evaluate")
    assert r.status_code == 200, r.text
    return r.json()


async def test_threshold_alert_dedup_ack_auto_resolve_and_review(aapi: Api) -> None:
    await prompt_with_versions(aapi)
    # production traffic of the last minutes: 6 errors in 20 runs (30 %)
    runs = [sdk_run(1, status="error", errorClass="Timeout", output=None) for _ in range(6)]
    runs += [sdk_run(1) for _ in range(14)]
    run_ids = await ingest(aapi, runs)
    error_ids = set(run_ids[:6])
    with http_receiver() as receiver:
        hook = await create_channel(aapi, {"name": "oncall", "type": "webhook", "url": receiver.url})
        rule = await create_rule(
            aapi,
            {
                "name": "triage errors",
                "kind": "threshold",
                "prompt": PROMPT,
                "metric": "error_rate",
                "op": "gt",
                "value": 0.2,
                "windowMinutes": 60,
                "minSamples": 10,
                "channels": ["oncall"],
            },
        )
        assert rule["label"] == "production" and rule["openAlerts"] == 0
        assert rule["condition"] == {
            "metric": "error_rate",
            "op": "gt",
            "value": 0.2,
            "windowMinutes": 60,
            "minSamples": 10,
        }

        assert await evaluate(aapi, rule["id"]) == {
            "rules": 1,
            "fired": 1,
            "refired": 0,
            "resolved": 0,
            "errors": 0,
        }
        (alert,) = (await aapi.get("/api/v1/alerts", params={"status": "open"})).json()["items"]
        assert alert["ruleName"] == "triage errors" and alert["subject"] == f"{PROMPT}@production"
        assert alert["details"]["value"] == pytest.approx(0.3) and alert["details"]["samples"] == 20
        assert alert["title"].startswith("error_rate of mon/triage@production > 0.2")
        (delivery,) = await wait_deliveries(aapi, "oncall")
        assert delivery["status"] == "sent" and delivery["alertId"] == alert["id"]
        assert verify(hook["signingSecret"], receiver.requests[0])
        assert receiver.requests[0].json()["alert"]["title"] == alert["title"]

        # the same condition again: one alert, counted; no new notification
        assert (await evaluate(aapi, "triage errors"))["refired"] == 1
        assert (await evaluate(aapi, "triage errors"))["refired"] == 1
        (same,) = (await aapi.get("/api/v1/alerts", params={"status": "active"})).json()["items"]
        assert same["id"] == alert["id"] and same["count"] == 3 and same["lastSeenAt"] >= alert["lastSeenAt"]
        assert len(receiver.requests) == 1
        assert (await aapi.get(f"/api/v1/alert-rules/{rule['id']}")).json()["openAlerts"] == 1

        # acknowledge (once); an acknowledged alert still counts and still resolves by itself
        r = await aapi.post(f"/api/v1/alerts/{alert['id']}/ack", json={"note": "looking at the upstream"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert r.json()["acknowledgedBy"].startswith("apikey:")
        r = await aapi.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert r.status_code == 409 and r.json()["code"] == "invalid_alert_state"

        # QA review of the affected runs: the error runs of the window
        r = await aapi.post(f"/api/v1/alerts/{alert['id']}/annotation-queue")
        assert r.status_code == 200, r.text
        queue = r.json()["queue"]
        assert r.json()["created"] == 6
        items = (await aapi.get("/api/v1/annotations", params={"queue": queue, "limit": 50})).json()["items"]
        assert {i["runId"] for i in items} == error_ids

        # too few samples is unknown: nothing changes
        r = await aapi.patch(f"/api/v1/alert-rules/{rule['id']}", json={"minSamples": 1000})
        assert r.status_code == 200 and r.json()["condition"]["minSamples"] == 1000
        assert await evaluate(aapi, rule["id"]) == {
            "rules": 1,
            "fired": 0,
            "refired": 0,
            "resolved": 0,
            "errors": 0,
        }
        # the condition clears: resolved automatically and the channel hears of it
        r = await aapi.patch(f"/api/v1/alert-rules/{rule['id']}", json={"minSamples": 10, "value": 0.5})
        assert r.status_code == 200, r.text
        assert (await evaluate(aapi, rule["id"]))["resolved"] == 1
        detail = (await aapi.get(f"/api/v1/alerts/{alert['id']}")).json()
        assert detail["status"] == "resolved" and detail["resolution"] == "auto" and detail["count"] == 3
        assert [e["kind"] for e in detail["events"]][:1] == ["fired"]
        assert {"acknowledged", "review_queued", "resolved", "notified"} <= {
            e["kind"] for e in detail["events"]
        }
        await wait_deliveries(aapi, "oncall", count=2)
        assert [req.json()["event"] for req in receiver.requests] == ["fired", "resolved"]
        deliveries = (await aapi.get(f"/api/v1/alerts/{alert['id']}/deliveries")).json()["items"]
        assert [d["event"] for d in deliveries] == ["resolved", "fired"]

        # firing again after a resolve opens a new alert
        await aapi.patch(f"/api/v1/alert-rules/{rule['id']}", json={"value": 0.1})
        assert (await evaluate(aapi, rule["id"]))["fired"] == 1
        active = (await aapi.get("/api/v1/alerts", params={"status": "active"})).json()["items"]
        assert len(active) == 1 and active[0]["id"] != alert["id"]
        r = await aapi.post(f"/api/v1/alerts/{active[0]['id']}/resolve", json={"note": "known incident"})
        assert r.status_code == 200 and r.json()["resolution"] == "manual" and r.json()["resolvedBy"]
        r = await aapi.post(f"/api/v1/alerts/{active[0]['id']}/resolve")
        assert r.status_code == 409 and r.json()["code"] == "invalid_alert_state"

    resolved = (await aapi.get("/api/v1/alerts", params={"status": "resolved"})).json()["items"]
    assert len(resolved) == 2
    fired = await audit_events(aapi, "AlertFired")
    assert len(fired) == 2 and fired[-1]["actorType"] == "system" and fired[-1]["promptId"]
    (acked,) = await audit_events(aapi, "AlertAcknowledged")
    assert acked["data"]["note"] == "looking at the upstream"
    resolutions = [e["data"]["resolution"] for e in await audit_events(aapi, "AlertResolved")]
    assert resolutions == ["manual", "auto"]
    assert (await audit_events(aapi, "AlertReviewQueued"))[0]["data"]["created"] == 6
    assert (await audit_events(aapi, "AlertRuleUpdated"))[0]["data"]["name"] == "triage errors"


async def test_drift_rule_and_periodic_round(aapi: Api) -> None:
    await prompt_with_versions(aapi)
    rule = await create_rule(
        aapi,
        {
            "name": "triage drift",
            "kind": "drift",
            "prompt": PROMPT,
            "windowMinutes": 60,
            "baselineMinutes": 1440,
        },
    )
    assert rule["condition"] == {"windowMinutes": 60, "baselineMinutes": 1440}
    # no traffic: nothing drifted, nothing fires; the round records the evaluation
    result = await alerts.evaluate_all(aapi.app.state.runtime)
    assert result.rules == 1 and result.fired == 0 and result.errors == 0
    shown = (await aapi.get("/api/v1/alert-rules/triage drift")).json()
    assert shown["lastEvaluatedAt"] is not None and shown["lastError"] is None
    # windows are limited (at most 30 days)
    r = await aapi.post(
        "/api/v1/alert-rules",
        json={
            "name": "bad window",
            "kind": "threshold",
            "prompt": PROMPT,
            "metric": "volume",
            "op": "lt",
            "value": 1,
            "windowMinutes": 43_200 * 4,
        },
    )
    assert r.status_code == 422


async def test_experiment_guardrail_rule(aapi: Api) -> None:
    await exp.prompt_with_versions(aapi)
    created = await exp.create_experiment(aapi, arms=[{"version": 1}, {"version": 2}, {"version": 3}])
    await exp.start(aapi, created["id"])
    rule = await create_rule(
        aapi, {"name": "guardrails", "kind": "experiment_guardrail", "prompt": exp.PROMPT}
    )
    assert (await evaluate(aapi, "guardrails"))["fired"] == 0
    rng = random.Random(3)
    batch = []
    for i in range(900):
        unit = f"g-{i}"
        arm = (await exp.resolve(aapi, unit))["experiment"]["arm"]
        rate = 0.40 if arm == "b" else 0.02
        batch.append({"unit": unit, "metric": "error", "value": 1 if rng.random() < rate else 0})
    assert (await exp.events(aapi, created["id"], batch))["pausedArms"] == ["b"]
    assert (await evaluate(aapi, rule["id"]))["fired"] == 1
    (alert,) = (await aapi.get("/api/v1/alerts", params={"kind": "experiment_guardrail"})).json()["items"]
    assert alert["subject"] == f"experiment:{created['id']}:b" and alert["details"]["arm"] == "b"
    assert alert["summary"].startswith("guardrail error")
    # no runs were recorded for the arm: nothing to review
    r = await aapi.post(f"/api/v1/alerts/{alert['id']}/annotation-queue")
    assert r.status_code == 409 and r.json()["code"] == "nothing_to_review"
    # the experiment ends: the alert resolves by itself
    r = await aapi.post(f"/api/v1/experiments/{created['id']}/stop", json={"reason": "enough"})
    assert r.status_code == 200, r.text
    assert (await evaluate(aapi, rule["id"]))["resolved"] == 1
    detail = (await aapi.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert detail["status"] == "resolved" and "no longer exists" in detail["events"][-1]["message"]


async def test_rule_problems_permissions_and_isolation(aapi: Api) -> None:
    await prompt_with_versions(aapi)
    for body, status, code in (
        (
            {"name": "r", "kind": "threshold", "prompt": PROMPT, "metric": "error_rate"},
            422,
            "invalid_rule_condition",
        ),
        (
            {"name": "r", "kind": "threshold", "metric": "error_rate", "op": "gt", "value": 1},
            422,
            "invalid_rule_condition",
        ),
        ({"name": "r", "kind": "drift", "prompt": PROMPT, "metric": "volume"}, 422, "invalid_rule_condition"),
        ({"name": "r", "kind": "regression", "windowMinutes": 5}, 422, "invalid_rule_condition"),
        (
            {"name": "r", "kind": "threshold", "prompt": "nope", "metric": "volume", "op": "lt", "value": 1},
            404,
            "prompt_not_found",
        ),
        ({"name": "r", "kind": "regression", "channels": ["nope"]}, 404, "channel_not_found"),
        (
            {
                "name": "r",
                "kind": "threshold",
                "prompt": PROMPT,
                "metric": "accuracy",
                "op": "lt",
                "value": 1,
            },
            422,
            "validation_error",
        ),
        ({"name": "r", "kind": "regression", "label": "Bad Label"}, 422, "validation_error"),
        ({"name": "r", "kind": "sla"}, 422, "validation_error"),
        ({"name": "r" * 101, "kind": "regression"}, 422, "validation_error"),
        ({"name": "r", "kind": "regression", "channels": ["a"] * 11}, 422, "validation_error"),
    ):
        r = await aapi.post("/api/v1/alert-rules", json=body)
        assert r.status_code == status and r.json()["code"] == code, (body, r.text)
    await create_rule(aapi, {"name": "regressions", "kind": "regression"})
    r = await aapi.post("/api/v1/alert-rules", json={"name": "regressions", "kind": "regression"})
    assert r.status_code == 409 and r.json()["code"] == "rule_exists"
    r = await aapi.patch("/api/v1/alert-rules/regressions", json={"metric": "volume"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_rule_condition"

    viewer = (await aapi.make_key("Viewer"))["key"]
    qa = (await aapi.make_key("QAAnalyst"))["key"]
    engineer = (await aapi.make_key("PromptEngineer"))["key"]
    body = {"name": "mine", "kind": "regression"}
    assert (await aapi.post("/api/v1/alert-rules", viewer, json=body)).status_code == 403
    assert (await aapi.post("/api/v1/alert-rules", qa, json=body)).status_code == 403
    await create_rule(aapi, body, key=engineer)
    assert (await aapi.get("/api/v1/alert-rules", viewer)).status_code == 200
    assert (await aapi.get("/api/v1/alerts", viewer)).status_code == 200
    assert (await aapi.post("/api/v1/alert-rules/mine/evaluate", viewer)).status_code == 403
    assert (await aapi.delete("/api/v1/alert-rules/mine", qa)).status_code == 403
    listed = (await aapi.get("/api/v1/alert-rules", params={"kind": "regression"})).json()["items"]
    assert [r_["name"] for r_ in listed] == ["regressions", "mine"]

    # another project sees none of it
    b = await make_project_b(aapi)
    assert (await aapi.get("/api/v1/alert-rules", b["key"])).json()["items"] == []
    r = await aapi.get(f"/api/v1/alert-rules/{listed[0]['id']}", b["key"])
    assert r.status_code == 404 and r.json()["code"] == "rule_not_found"
    r = await aapi.post("/api/v1/alerts/alt_01m8xkegrj2vfj3sgzw3t4mhc1/ack")
    assert r.status_code == 404 and r.json()["code"] == "alert_not_found"
    r = await aapi.get("/api/v1/alerts", params={"cursor": "nope"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"

    r = await aapi.delete("/api/v1/alert-rules/mine", engineer)
    assert r.status_code == 204
    (created,) = [e for e in await audit_events(aapi, "AlertRuleCreated") if e["data"]["name"] == "mine"]
    assert created["data"]["kind"] == "regression"
    assert (await audit_events(aapi, "AlertRuleDeleted"))[0]["data"]["name"] == "mine"
