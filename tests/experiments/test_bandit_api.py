"""Bandit experiments and run-based metrics through the REST API, on SQLite and PostgreSQL: Thompson-sampling
reallocation (on demand and by the periodic task), sticky units across an allocation change and a restart,
regret and allocation over time in the results; runs (SDK traces tagged with the arm, or untagged runs of an
arm's version) and their feedback as per-arm metrics; a run-based guardrail pausing an arm."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from promptops.db import utcnow
from promptops.experiments import service as experiments_service
from promptops.experiments.models import Experiment
from promptops.jobs import periodic
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


async def reallocate(api: Api, exp_id: str) -> dict[str, Any]:
    r = await api.post(f"/api/v1/experiments/{exp_id}/allocation")
    assert r.status_code == 200, r.text
    allocation: dict[str, Any] = r.json()["allocation"]
    return allocation


def shares(allocation: dict[str, Any]) -> dict[str, float]:
    return {a["name"]: a["share"] for a in allocation["arms"]}


async def test_bandit_moves_new_units_to_the_best_arm(api: Api) -> None:
    await prompt_with_versions(api)
    created = await create_experiment(
        api,
        mode="bandit",
        arms=[{"version": 1}, {"version": 2}, {"version": 3, "name": "best"}],
        bandit={"intervalSeconds": 600},
    )
    exp_id = created["id"]
    assert created["mode"] == "bandit"
    assert created["bandit"]["metric"] == "conversion" and created["bandit"]["intervalSeconds"] == 600
    await start(api, exp_id)
    first = await results(api, exp_id)
    assert first["mode"] == "bandit" and [a["seq"] for a in first["bandit"]["allocation"]] == [0]
    assert all(abs(a["share"] - 1 / 3) < 1e-9 for a in first["bandit"]["allocation"][0]["arms"])

    rng = random.Random(4)
    rates = {"control": 0.05, "b": 0.08, "best": 0.4}
    assigned: dict[str, str] = {}

    async def traffic(prefix: str, count: int) -> None:
        batch = []
        for i in range(count):
            unit = f"{prefix}-{i}"
            arm = (await resolve(api, unit))["experiment"]["arm"]
            assigned[unit] = arm
            batch.append(
                {"unit": unit, "metric": "conversion", "value": 1 if rng.random() < rates[arm] else 0}
            )
        await events(api, exp_id, batch)

    await traffic("r1", 240)
    assert set(Counter(assigned.values())) == {"control", "b", "best"}
    one = await reallocate(api, exp_id)
    assert one["seq"] == 1 and one["reason"] == "manual" and one["exposures"] == 240
    assert shares(one)["best"] > 0.8, one
    assert abs(sum(shares(one).values()) - 1) < 1e-9

    # units seen before keep their arm; new units mostly get the best arm
    before = dict(assigned)
    for unit in list(before)[:60]:
        assert (await resolve(api, unit))["experiment"]["arm"] == before[unit]
    await traffic("r2", 200)
    new_arms = Counter(assigned[f"r2-{i}"] for i in range(200))
    assert new_arms["best"] > 150, new_arms

    # a restart (this process forgets what it saw): the exposure rows keep every unit on its arm
    await api.app.state.runtime.exposures.flush()
    experiments_service._bandit_units.clear()
    experiments_service.running_cache.invalidate(lambda key: True)
    for unit in list(before)[:40] + [f"r2-{i}" for i in range(40)]:
        assert (await resolve(api, unit))["experiment"]["arm"] == assigned[unit]

    two = await reallocate(api, exp_id)
    found = await results(api, exp_id)
    bandit = found["bandit"]
    assert bandit["metric"] == "conversion" and bandit["bestArm"] == "best"
    assert [a["seq"] for a in bandit["allocation"]] == [0, 1, 2]
    assert bandit["allocation"][-1]["arms"] == two["arms"]
    assert bandit["regret"] is not None and bandit["regret"] > 0
    assert 0 < bandit["regretPerUnit"] < max(rates.values()) - min(rates.values())
    # the sample-ratio check counts the units of the current allocation only
    assert found["sampleRatio"]["since"] is not None and found["sampleRatio"]["mismatch"] is False
    allocated = await audit_events(api, "ExperimentAllocated")
    assert [e["data"]["seq"] for e in allocated] == [2, 1]
    assert allocated[0]["data"]["shares"]["best"] == pytest.approx(shares(two)["best"], abs=1e-6)

    # the CLI-facing list and detail show the current shares
    shown = (await api.get(f"/api/v1/experiments/{exp_id}")).json()
    assert {a["name"]: a["weight"] for a in shown["arms"]} == pytest.approx(shares(two))


async def test_the_periodic_task_reallocates_when_due(api: Api, db_url: str) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(api, mode="bandit", bandit={"floor": 0.05})
    await start(api, exp["id"])
    batch = []
    for i in range(120):
        unit = f"p-{i}"
        arm = (await resolve(api, unit))["experiment"]["arm"]
        batch.append({"unit": unit, "metric": "conversion", "value": 1 if arm == "b" else 0})
    await events(api, exp["id"], batch)
    runtime = api.app.state.runtime
    assert await periodic.run_now(runtime, "experiments.tick")
    first = await results(api, exp["id"])
    assert len(first["bandit"]["allocation"]) == 1  # not due yet (an hour)
    # the tick keeps the primary metric per arm (intervals over time), at most every 15 minutes
    (snapshot,) = first["timeline"]
    assert snapshot["metric"] == "conversion" and snapshot["exposures"] == 120
    assert [a["arm"] for a in snapshot["arms"]] == ["control", "b"]
    assert snapshot["arms"][1]["mean"] > snapshot["arms"][0]["mean"]

    async with runtime.db.transaction(write=True) as session:
        await session.execute(
            sa.update(Experiment)
            .where(Experiment.id == exp["id"])
            .values(next_allocation_at=utcnow() - timedelta(seconds=1))
        )
    assert await periodic.run_now(runtime, "experiments.tick")
    history = (await results(api, exp["id"]))["bandit"]["allocation"]
    assert [(a["seq"], a["reason"]) for a in history] == [(0, "start"), (1, "scheduled")]
    latest = shares(history[-1])
    assert latest["control"] == pytest.approx(0.05) and latest["b"] == pytest.approx(0.95)
    (event,) = await audit_events(api, "ExperimentAllocated")
    assert event["actorType"] == "system" and event["data"]["reason"] == "scheduled"


async def test_bandit_on_a_continuous_metric_that_should_decrease(api: Api) -> None:
    await prompt_with_versions(api)
    exp = await create_experiment(
        api,
        mode="bandit",
        metrics=[{"name": "handle_time", "kind": "continuous", "direction": "decrease"}],
    )
    await start(api, exp["id"])
    rng = random.Random(9)
    batch = []
    for i in range(200):
        unit = f"c-{i}"
        arm = (await resolve(api, unit))["experiment"]["arm"]
        batch.append({"unit": unit, "metric": "handle_time", "value": rng.gauss(30 if arm == "b" else 45, 5)})
    await events(api, exp["id"], batch)
    allocation = await reallocate(api, exp["id"])
    assert shares(allocation)["b"] > 0.99
    found = await results(api, exp["id"])
    assert found["bandit"]["bestArm"] == "b" and found["bandit"]["direction"] == "decrease"


async def test_run_metrics_and_feedback_per_arm(api: Api) -> None:
    versions = await prompt_with_versions(api)
    exp = await create_experiment(api, arms=[{"version": 1}, {"version": 2}])
    await start(api, exp["id"])
    units = {f"s-{i}": (await resolve(api, f"s-{i}"))["experiment"]["arm"] for i in range(240)}
    rng = random.Random(2)
    runs = []
    for unit, arm in units.items():
        slow = arm == "b"
        runs.append(
            {
                "prompt": PROMPT,
                "model": "m",
                "latencyMs": rng.gauss(900 if slow else 300, 40),
                "costUsd": 0.002 if slow else 0.001,
                "status": "error" if rng.random() < (0.5 if slow else 0.02) else "ok",
                "experimentId": exp["id"],
                "arm": arm,
                "input": {"prompt": unit},
            }
        )
    # an untagged run of the control's version during the experiment counts for the control
    runs.append({"versionId": versions[0]["id"], "model": "m", "latencyMs": 300.0, "costUsd": 0.001})
    r = await api.post("/api/v1/runs/batch", json={"runs": runs})
    assert r.status_code == 200, r.text
    run_ids = r.json()["runIds"]
    for run_id, body in zip(run_ids[:20], runs[:20], strict=True):
        r = await api.post(
            "/api/v1/feedback", json={"runId": run_id, "score": 2 if body["arm"] == "b" else 5}
        )
        assert r.status_code == 201, r.text
    stored = (await api.get(f"/api/v1/runs/{run_ids[0]}")).json()
    assert stored["experimentId"] == exp["id"] and stored["experimentArm"] == runs[0]["arm"]

    found = await results(api, exp["id"])
    counts = Counter(units.values())
    latency = metric(found, "run.latency_ms")
    assert latency["source"] == "runs" and latency["guardrail"] is True
    by_arm = {a["arm"]: a for a in latency["arms"]}
    assert by_arm["control"]["n"] == counts["control"] + 1 and by_arm["b"]["n"] == counts["b"]
    assert by_arm["b"]["mean"] > 800 > 400 > by_arm["control"]["mean"]
    cost = {a["arm"]: a["mean"] for a in metric(found, "run.cost_usd")["arms"]}
    assert cost["b"] == pytest.approx(0.002) and cost["control"] == pytest.approx(0.001)
    score = {a["arm"]: a for a in metric(found, "feedback.score")["arms"]}
    assert score["control"]["n"] + score["b"]["n"] == 20
    assert score["b"]["mean"] == pytest.approx(2.0) and score["control"]["mean"] == pytest.approx(5.0)
    violated = {(v["arm"], v["metric"]) for v in found["guardrailViolations"]}
    assert ("b", "run.latency_ms") in violated and ("b", "run.error") in violated

    # the periodic task pauses the arm from the runs alone (no outcome event was posted)
    assert await periodic.run_now(api.app.state.runtime, "experiments.tick")
    shown = (await api.get(f"/api/v1/experiments/{exp['id']}")).json()
    assert shown["status"] == "paused"  # its only treatment arm
    b = next(a for a in shown["arms"] if a["name"] == "b")
    assert b["paused"] and b["pausedReason"].startswith("guardrail run.")
    (paused,) = await audit_events(api, "ExperimentArmPaused")
    assert paused["data"]["metric"].startswith("run.") and paused["data"]["automatic"] is True


async def test_bad_bandit_and_run_input(api: Api) -> None:
    await prompt_with_versions(api)
    base = {"name": "x", "prompt": PROMPT, "arms": [{"version": 1}, {"version": 2}]}

    async def problem(body: dict[str, Any]) -> dict[str, Any]:
        r = await api.post("/api/v1/experiments", json={**base, **body})
        assert r.status_code == 422, r.text
        return dict(r.json())

    assert "need mode 'bandit'" in (await problem({"bandit": {"floor": 0.1}}))["detail"]
    assert (
        "not a metric of this experiment"
        in (await problem({"mode": "bandit", "bandit": {"metric": "nope"}}))["detail"]
    )
    assert (
        "intervalSeconds" in (await problem({"mode": "bandit", "bandit": {"intervalSeconds": 5}}))["detail"]
    )
    assert "floor" in (await problem({"mode": "bandit", "bandit": {"floor": 0.5}}))["detail"]
    assert "unknown platform metric" in (await problem({"metrics": [{"name": "run.nope"}]}))["detail"]
    assert (await problem({"mode": "epsilon"}))["code"] == "validation_error"

    ab = await create_experiment(api)
    await start(api, ab["id"])
    r = await api.post(f"/api/v1/experiments/{ab['id']}/allocation")
    assert r.status_code == 409 and r.json()["code"] == "not_a_bandit"
    r = await api.post(
        f"/api/v1/experiments/{ab['id']}/events", json={"unit": "u", "metric": "run.error", "value": 1}
    )
    assert r.status_code == 422 and r.json()["code"] == "platform_metric"
    await api.post(f"/api/v1/experiments/{ab['id']}/stop")
    bandit = await create_experiment(api, mode="bandit")
    r = await api.post(f"/api/v1/experiments/{bandit['id']}/allocation")
    assert r.status_code == 409 and r.json()["code"] == "invalid_experiment_state"  # a draft

    run = {"model": "m", "experimentId": ab["id"], "arm": "zzz"}
    r = await api.post("/api/v1/runs/batch", json={"runs": [run]})
    assert r.status_code == 422 and r.json()["code"] == "unknown_arm" and "control" in r.json()["detail"]
    r = await api.post("/api/v1/runs/batch", json={"runs": [{**run, "experimentId": "exp_nope", "arm": "b"}]})
    assert r.status_code == 404 and r.json()["code"] == "experiment_not_found"
    r = await api.post("/api/v1/runs/batch", json={"runs": [{"model": "m", "arm": "b"}]})
    assert r.status_code == 422 and "together" in r.json()["detail"]
    viewer = (await api.make_key("Viewer"))["key"]
    r = await api.post(f"/api/v1/experiments/{bandit['id']}/allocation", viewer)
    assert r.status_code == 403 and r.json()["permission"] == "experiment:manage"
