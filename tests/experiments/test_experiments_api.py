"""Live experiments through the REST API, on SQLite and PostgreSQL: lifecycle, sticky resolve, events, results,
SRM, guardrails, ship, permissions and bad input."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from promptops.config import normalize_database_url
from tests.experiments.support import (
    PROMPT,
    create_experiment,
    events,
    metric,
    prompt_with_versions,
    resolve,
    results,
    start,
)
from tests.support.app import Api

pytestmark = pytest.mark.asyncio


async def audit_events(api: Api, event_type: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/audit", params={"eventType": event_type, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["events"]


async def test_lifecycle_sticky_resolve_and_audit(api: Api) -> None:
    versions = await prompt_with_versions(api)
    created = await create_experiment(api, arms=[{"version": 1}, {"version": 2, "weight": 3}])
    exp_id = created["id"]
    assert created["status"] == "draft"
    assert [a["name"] for a in created["arms"]] == ["control", "b"]
    assert [a["share"] for a in created["arms"]] == [0.25, 0.75]
    assert [m["name"] for m in created["metrics"]] == [
        "conversion",
        "error",
        "latency_ms",
        "run.error",
        "run.latency_ms",
        "run.cost_usd",
        "feedback.score",
    ]

    # a draft changes nothing
    assert "experiment" not in await resolve(api, "u-1")

    started = await start(api, exp_id)
    assert started["status"] == "running" and started["startedAt"]

    arms: dict[str, str] = {}
    for i in range(400):
        body = await resolve(api, f"u-{i}")
        tag = body["experiment"]
        assert tag["id"] == exp_id
        arms[f"u-{i}"] = tag["arm"]
        expected = 1 if tag["arm"] == "control" else 2
        assert body["version"]["version"] == expected
        assert body["version"]["id"] == versions[expected - 1]["id"]
        assert body["resolvedBy"] == "label:production"
    share_b = Counter(arms.values())["b"] / len(arms)
    assert 0.65 < share_b < 0.85, share_b  # weight 3 of 4
    # sticky: the same unit gets the same arm again, also through name@label
    for unit in list(arms)[:50]:
        assert (await resolve(api, unit))["experiment"]["arm"] == arms[unit]
        r = await api.get(f"/api/v1/prompts/{PROMPT}@production", params={"unit": unit})
        assert r.json()["experiment"]["arm"] == arms[unit]

    # without a unit, with a version, or on another label: nothing changes
    plain = (await api.get(f"/api/v1/prompts/{PROMPT}", params={"label": "production"})).json()
    assert "experiment" not in plain and plain["version"]["version"] == 1
    pinned = (await api.get(f"/api/v1/prompts/{PROMPT}", params={"version": 3, "unit": "u-1"})).json()
    assert "experiment" not in pinned and pinned["version"]["version"] == 3
    latest = (await api.get(f"/api/v1/prompts/{PROMPT}", params={"unit": "u-1"})).json()
    assert "experiment" not in latest and latest["version"]["version"] == 3

    found = await results(api, exp_id)
    assert found["exposures"] == 400
    assert {a["name"]: a["exposures"] for a in found["arms"]} == dict(Counter(arms.values()))
    assert found["sampleRatio"]["mismatch"] is False

    r = await api.post(f"/api/v1/experiments/{exp_id}/pause", json={"reason": "checking something"})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert "experiment" not in await resolve(api, "u-1")
    r = await api.post(f"/api/v1/experiments/{exp_id}/resume")
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert (await resolve(api, "u-7"))["experiment"]["arm"] == arms["u-7"]
    r = await api.post(f"/api/v1/experiments/{exp_id}/stop")
    assert r.status_code == 200 and r.json()["status"] == "stopped" and r.json()["endedAt"]
    assert "experiment" not in await resolve(api, "u-7")
    r = await api.post(f"/api/v1/experiments/{exp_id}/resume")
    assert r.status_code == 409 and r.json()["code"] == "invalid_experiment_state"

    for event in (
        "ExperimentCreated",
        "ExperimentStarted",
        "ExperimentPaused",
        "ExperimentResumed",
        "ExperimentStopped",
    ):
        found_events = await audit_events(api, event)
        assert [e["data"]["experimentId"] for e in found_events] == [exp_id], event
    paused = (await audit_events(api, "ExperimentPaused"))[0]
    assert paused["data"]["reason"] == "checking something"

    r = await api.get("/api/v1/experiments", params={"prompt": PROMPT, "status": "stopped"})
    assert [e["id"] for e in r.json()["items"]] == [exp_id]
    r = await api.get(f"/api/v1/experiments/{exp_id}")
    assert r.status_code == 200 and r.json()["status"] == "stopped"


async def test_one_active_experiment_per_label(api: Api) -> None:
    await prompt_with_versions(api)
    first = await create_experiment(api)
    second = await create_experiment(api, arms=[{"version": 1}, {"version": 3}])
    await start(api, first["id"])
    r = await api.post(f"/api/v1/experiments/{second['id']}/start")
    assert r.status_code == 409 and r.json()["code"] == "experiment_already_active"
    assert first["id"] in r.json()["detail"]
    # another label of the same prompt is free
    third = await create_experiment(api, label="staging")
    await start(api, third["id"])
    # a paused experiment still holds its label
    await api.post(f"/api/v1/experiments/{first['id']}/pause")
    r = await api.post(f"/api/v1/experiments/{second['id']}/start")
    assert r.status_code == 409
    await api.post(f"/api/v1/experiments/{first['id']}/stop")
    await start(api, second["id"])
    assert (await resolve(api, "someone"))["experiment"]["id"] == second["id"]


async def test_outcomes_results_detect_an_effect(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(
        api,
        metrics=[
            {"name": "conversion", "kind": "conversion"},
            {"name": "revenue", "kind": "continuous"},
        ],
    )
    await start(api, exp["id"])
    rng = random.Random(7)
    batch: list[dict[str, Any]] = []
    for i in range(600):
        unit = f"user-{i}"
        arm = (await resolve(api, unit))["experiment"]["arm"]
        rate = 0.10 if arm == "control" else 0.35
        batch.append({"unit": unit, "metric": "conversion", "value": 1 if rng.random() < rate else 0})
        for _ in range(2):  # two purchases per unit: the unit's value is their mean
            batch.append(
                {"unit": unit, "metric": "revenue", "value": rng.gauss(20 if arm == "control" else 20.5, 5)}
            )
    await events(api, exp["id"], batch)
    # one event in the single form too, and a unit never exposed (not attributed)
    r = await api.post(
        f"/api/v1/experiments/{exp['id']}/events", json={"unit": "user-1", "metric": "conversion"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = await api.post(
        f"/api/v1/experiments/{exp['id']}/events", json={"unit": "ghost", "metric": "conversion", "value": 1}
    )
    assert r.status_code == 200

    found = await results(api, exp["id"])
    assert found["test"].startswith("mSPRT") and found["alpha"] == 0.05
    conversion = metric(found, "conversion")
    by_arm = {a["arm"]: a for a in conversion["arms"]}
    assert by_arm["control"]["n"] + by_arm["b"]["n"] == 600
    assert by_arm["control"]["ciLow"] < by_arm["control"]["mean"] < by_arm["control"]["ciHigh"]
    (comparison,) = conversion["comparisons"]
    assert comparison["arm"] == "b" and comparison["control"] == "control"
    assert comparison["significant"] is True and comparison["better"] is True
    assert comparison["pValue"] < 0.05
    assert comparison["sequenceLow"] > 0 and comparison["ciLow"] > 0
    assert comparison["sequenceLow"] <= comparison["ciLow"]  # the always-valid interval is wider
    revenue = metric(found, "revenue")
    assert sum(a["n"] for a in revenue["arms"]) == 600
    for arm in revenue["arms"]:
        assert abs(arm["mean"] - (20 if arm["arm"] == "control" else 20.5)) < 1.5
        assert arm["ciLow"] < arm["mean"] < arm["ciHigh"]
    assert revenue["comparisons"][0]["difference"] == pytest.approx(
        revenue["arms"][1]["mean"] - revenue["arms"][0]["mean"]
    )
    assert found["guardrailViolations"] == []


async def _engine_execute(db_url: str, sql: str) -> None:
    engine = create_async_engine(normalize_database_url(db_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await engine.dispose()


async def test_sample_ratio_mismatch_is_flagged(api: Api, db_url: str) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api)
    await start(api, exp["id"])
    for i in range(1200):
        await resolve(api, f"v-{i}")
    fair = await results(api, exp["id"])
    assert fair["sampleRatio"]["mismatch"] is False and fair["sampleRatio"]["pValue"] > 0.001
    # broken exposure logging: half of arm b's exposures never arrive (the first hex digit places a unit in
    # an arm, the second is independent of it)
    try:
        await _engine_execute(
            db_url,
            f"DELETE FROM experiment_exposures WHERE experiment_id = '{exp['id']}' AND arm = 'b' "
            "AND substr(unit_hash, 2, 1) < '8'",
        )
    except (OSError, asyncpg.PostgresError) as exc:  # pragma: no cover
        pytest.fail(str(exc))
    broken = await results(api, exp["id"])
    assert broken["sampleRatio"]["mismatch"] is True
    assert broken["sampleRatio"]["pValue"] < 0.001 and broken["sampleRatio"]["threshold"] == 0.001


async def test_guardrail_pauses_a_worse_arm(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api, arms=[{"version": 1}, {"version": 2}, {"version": 3}])
    await start(api, exp["id"])
    rng = random.Random(3)
    arms: dict[str, str] = {}
    batch = []
    for i in range(900):
        unit = f"g-{i}"
        arms[unit] = (await resolve(api, unit))["experiment"]["arm"]
        rate = 0.40 if arms[unit] == "b" else 0.02
        batch.append({"unit": unit, "metric": "error", "value": 1 if rng.random() < rate else 0})
    # the first events of an experiment in a process trigger a guardrail check at once
    answer = await events(api, exp["id"], batch)
    assert answer["pausedArms"] == ["b"]

    shown = (await api.get(f"/api/v1/experiments/{exp['id']}")).json()
    assert shown["status"] == "running"  # arm c is still in the test
    b = next(a for a in shown["arms"] if a["name"] == "b")
    assert b["paused"] is True and b["pausedReason"].startswith("guardrail error")
    # units of the paused arm get the control; the others keep their arm
    for unit, arm in list(arms.items())[:120]:
        served = (await resolve(api, unit))["experiment"]
        assert served["arm"] == ("control" if arm == "b" else arm)
    (paused_event,) = await audit_events(api, "ExperimentArmPaused")
    assert paused_event["data"]["arm"] == "b" and paused_event["data"]["automatic"] is True
    assert paused_event["data"]["metric"] == "error" and paused_event["data"]["pValue"] < 0.05
    assert paused_event["actorType"] == "system"
    found = await results(api, exp["id"])
    assert found["sampleRatio"]["arms"] == ["control", "c"]
    # checking again pauses nothing new
    r = await api.post(f"/api/v1/experiments/{exp['id']}/guardrails/check")
    assert r.status_code == 200 and r.json()["pausedArms"] == []


async def test_guardrail_check_pauses_the_experiment_when_no_treatment_is_left(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api)
    await start(api, exp["id"])
    rng = random.Random(5)
    batch = []
    for i in range(500):
        unit = f"l-{i}"
        arm = (await resolve(api, unit))["experiment"]["arm"]
        batch.append(
            {"unit": unit, "metric": "latency_ms", "value": rng.gauss(800 if arm == "b" else 400, 50)}
        )
    await events(api, exp["id"], batch)
    shown = (await api.get(f"/api/v1/experiments/{exp['id']}")).json()
    assert shown["status"] == "paused"
    assert [e["data"].get("automatic") for e in await audit_events(api, "ExperimentPaused")] == [True]
    assert "experiment" not in await resolve(api, "l-1")


async def test_ship_moves_the_label_through_the_registry(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api, arms=[{"version": 1}, {"version": 2, "name": "friendly"}])
    r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", json={"arm": "friendly"})
    assert r.status_code == 409 and r.json()["code"] == "invalid_experiment_state"  # a draft
    await start(api, exp["id"])
    r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", json={"arm": "nope"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_arm" and "friendly" in r.json()["detail"]
    r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", json={"arm": "friendly", "reason": "wins"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "shipped" and r.json()["shippedArm"] == "friendly"

    plain = (await api.get(f"/api/v1/prompts/{PROMPT}", params={"label": "production", "unit": "x"})).json()
    assert plain["version"]["version"] == 2 and "experiment" not in plain
    (deployed,) = [e for e in await audit_events(api, "PromptDeployed") if e["data"]["version"] == 2]
    assert deployed["data"]["label"] == "production" and deployed["data"]["previousVersion"] == 1
    assert deployed["data"]["reason"] == "wins"
    (shipped,) = await audit_events(api, "ExperimentShipped")
    assert shipped["data"]["arm"] == "friendly" and shipped["data"]["version"] == 2
    assert shipped["seq"] > deployed["seq"]
    r = await api.get(f"/api/v1/prompts/{PROMPT}/history", params={"label": "production"})
    assert r.json()[0]["toVersion"] == 2
    r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", json={"arm": "friendly"})
    assert r.status_code == 409

    # an arm on another model is not a version the label can point at
    other = await create_experiment(api, arms=[{"version": 2}, {"version": 2, "model": "gpt-4o"}])
    await start(api, other["id"])
    tag = (await resolve(api, "m-1"))["experiment"]
    assert tag["arm"] in ("control", "b")
    r = await api.post(f"/api/v1/experiments/{other['id']}/ship", json={"arm": "b"})
    assert r.status_code == 409 and r.json()["code"] == "arm_not_shippable"


async def test_model_override_is_in_the_tag(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(
        api, arms=[{"version": 1}, {"version": 1, "model": "gpt-4o", "name": "big"}]
    )
    await start(api, exp["id"])
    seen = set()
    for i in range(40):
        tag = (await resolve(api, f"mm-{i}"))["experiment"]
        seen.add((tag["arm"], tag.get("model")))
    assert seen == {("control", None), ("big", "gpt-4o")}


async def test_permissions(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api)
    viewer = (await api.make_key("Viewer"))["key"]
    qa = (await api.make_key("QAAnalyst"))["key"]
    engineer = (await api.make_key("PromptEngineer"))["key"]
    for key in (viewer, qa):
        r = await api.post(f"/api/v1/experiments/{exp['id']}/start", key)
        assert r.status_code == 403 and r.json()["permission"] == "experiment:manage"
        r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", key, json={"arm": "b"})
        assert r.status_code == 403
        r = await api.post(
            "/api/v1/experiments",
            key,
            json={"name": "x", "prompt": PROMPT, "arms": [{"version": 1}, {"version": 2}]},
        )
        assert r.status_code == 403
        r = await api.post(
            f"/api/v1/experiments/{exp['id']}/events", key, json={"unit": "u", "metric": "conversion"}
        )
        assert r.status_code == 403 and r.json()["permission"] == "experiment:track"
        assert (await api.get(f"/api/v1/experiments/{exp['id']}", key)).status_code == 200
        assert (await api.get(f"/api/v1/experiments/{exp['id']}/results", key)).status_code == 200
    await start(api, exp["id"], key=engineer)
    r = await api.post(f"/api/v1/experiments/{exp['id']}/ship", engineer, json={"arm": "b"})
    assert r.status_code == 200


async def test_bad_input(api: Api) -> None:
    versions = await prompt_with_versions(api)
    base = {"name": "x", "prompt": PROMPT}

    async def problem(body: dict[str, Any]) -> dict[str, Any]:
        r = await api.post("/api/v1/experiments", json={**base, **body})
        assert 400 <= r.status_code < 500, r.text
        return {"status": r.status_code, **r.json()}

    one = await problem({"arms": [{"version": 1}]})
    assert one["status"] == 422 and "arms" in one["detail"]
    many = await problem({"arms": [{"version": 1}] * 11})
    assert many["status"] == 422
    zero = await problem({"arms": [{"version": 1}, {"version": 2, "weight": 0}]})
    assert zero["status"] == 422 and "weight must be greater than 0" in zero["detail"]
    both = await problem({"arms": [{"version": 1, "versionId": versions[0]["id"]}, {"version": 2}]})
    assert "exactly one of 'version'" in both["detail"]
    missing = await problem({"arms": [{"version": 1}, {"version": 99}]})
    assert missing["status"] == 404 and missing["code"] == "version_not_found"
    latest = await problem({"label": "latest", "arms": [{"version": 1}, {"version": 2}]})
    assert latest["status"] == 422 and "latest" in latest["detail"]
    dup = await problem({"arms": [{"version": 1, "name": "a"}, {"version": 2, "name": "a"}]})
    assert "unique" in dup["detail"]
    bad_name = await problem({"arms": [{"version": 1, "name": "Bad Name"}, {"version": 2}]})
    assert "invalid arm name" in bad_name["detail"]
    nothing = await problem({"prompt": "no/such", "arms": [{"version": 1}, {"version": 2}]})
    assert nothing["status"] == 404 and nothing["code"] == "prompt_not_found"
    r = await api.post("/api/v1/prompts", json={"name": "exp/other", "template": "x"})
    other_version = r.json()["version"]["id"]
    mismatch = await problem({"arms": [{"version": 1}, {"versionId": other_version}]})
    assert mismatch["status"] == 422 and mismatch["code"] == "version_mismatch"

    exp = await create_experiment(api)
    url = f"/api/v1/experiments/{exp['id']}/events"
    r = await api.post(url, json={"unit": "u", "metric": "conversion"})
    assert r.status_code == 409 and r.json()["code"] == "experiment_not_running"
    await start(api, exp["id"])
    r = await api.post(url, json={"unit": "u", "metric": "signups"})
    assert (
        r.status_code == 422 and r.json()["code"] == "unknown_metric" and "conversion" in r.json()["detail"]
    )
    r = await api.post(url, json={"unit": "u", "metric": "conversion", "value": 0.5})
    assert r.status_code == 422 and r.json()["code"] == "invalid_event_value"
    r = await api.post(url, json={"events": [{"unit": "u", "metric": "conversion"}] * 1001})
    assert r.status_code == 422
    r = await api.post(
        url, json={"unit": "u", "metric": "conversion", "events": [{"unit": "u", "metric": "conversion"}]}
    )
    assert r.status_code == 422 and "not both" in r.json()["detail"]
    r = await api.post(url, json={"unit": "u"})
    assert r.status_code == 422
    r = await api.post(url, json={"unit": "u", "metric": "latency_ms", "value": "fast"})
    assert r.status_code == 422
    r = await api.post(url, json={"unit": "", "metric": "conversion"})
    assert r.status_code == 422
    r = await api.post("/api/v1/experiments/exp_nope/events", json={"unit": "u", "metric": "conversion"})
    assert r.status_code == 404 and r.json()["code"] == "experiment_not_found"
    r = await api.get("/api/v1/experiments/exp_nope/results")
    assert r.status_code == 404
    r = await api.get(f"/api/v1/prompts/{PROMPT}", params={"label": "production", "unit": ""})
    assert r.status_code == 422
    r = await api.get(f"/api/v1/prompts/{PROMPT}", params={"label": "production", "unit": "u" * 201})
    assert r.status_code == 422
    # odd units are data, never a 500: a lone surrogate in JSON, invalid UTF-8 in the query
    r = await api.post(
        url,
        content=b'{"unit": "\\ud800 user", "metric": "conversion"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (200, 422), r.text
    r = await api.get(f"/api/v1/prompts/{PROMPT}?label=production&unit=%ED%A0%80%FF")
    assert r.status_code in (200, 422), r.text
    r = await api.get("/api/v1/experiments", params={"status": "bogus"})
    assert r.status_code == 422
    r = await api.get("/api/v1/experiments", params={"cursor": "nope"})
    assert r.status_code == 422
