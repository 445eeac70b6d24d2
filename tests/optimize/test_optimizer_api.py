"""The optimizer through the REST API: a real background job calling a real HTTP server that speaks the OpenAI
wire format (it echoes the first words of the prompt), on SQLite and PostgreSQL.

The scorer is ``icontains`` against the expected label, so a prompt that starts by naming the labels (the
output-format operator) scores 1 on every case while the starting prompt (the bare review) scores 0: a
measurable "better prompt" without a real model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

REVIEWS = [
    ("great battery and a bright screen", "positive"),
    ("arrived broken and support never answered", "negative"),
    ("lovely staff and quick service", "positive"),
    ("the soup was cold and bland", "negative"),
    ("would buy again without thinking", "positive"),
    ("stopped working after two days", "negative"),
    ("comfortable shoes that fit well", "positive"),
    ("the plot made no sense at all", "negative"),
    ("crisp sound and deep bass", "positive"),
    ("too loud and it smells of plastic", "negative"),
    ("friendly driver and a clean car", "positive"),
    ("the room was dirty and noisy", "negative"),
]
MODEL = {"provider": "fake", "model": "gpt-fake"}
SCORERS = [{"type": "icontains"}]
PROMPT = "opt/echo"


@pytest.fixture
async def oapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        r = await api.post(
            "/api/v1/prompts",
            json={
                "name": PROMPT,
                "template": "{{ review }}",
                "variables": [{"name": "review"}],
                "modelConfig": {**MODEL, "params": {"temperature": 0}},
                "labels": ["production"],
            },
        )
        assert r.status_code == 201, r.text
        cases = [
            {"id": f"c{i:02d}", "input": {"review": text}, "expected": label}
            for i, (text, label) in enumerate(REVIEWS)
        ]
        r = await api.post("/api/v1/datasets", json={"name": "opt/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api


def body(**extra: Any) -> dict[str, Any]:
    return {"prompt": f"{PROMPT}@production", "dataset": "opt/reviews", "scorers": SCORERS, **extra}


async def start(api: Api, key: str | None = None, **extra: Any) -> dict[str, Any]:
    kwargs = {"key": key} if key else {}
    r = await api.post("/api/v1/optimizations", json=body(**extra), **kwargs)
    assert r.status_code == 201, r.text
    started: dict[str, Any] = r.json()
    return started


async def wait(api: Api, optimization_id: str, timeout: float = 60) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.get(f"/api/v1/optimizations/{optimization_id}")
        assert r.status_code == 200, r.text
        found: dict[str, Any] = r.json()
        if found["status"] in ("completed", "failed", "cancelled"):
            return found
        assert loop.time() < deadline, found
        await asyncio.sleep(0.05)


def chat_calls(fake: FakeLLMServer) -> int:
    return len(fake.requests_to("/chat/completions"))


async def audit_events(api: Api, event: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/audit", params={"eventType": event, "limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["events"]
    return items


async def test_optimizer_finds_a_better_prompt_and_saves_it_unlabelled(
    oapi: Api, fake: FakeLLMServer
) -> None:
    started = await start(oapi, budget=80, seed=3)
    assert started["status"] == "queued" and started["budget"] == 80
    assert started["spec"]["trainCases"] == 6 and started["spec"]["valCases"] == 6
    done = await wait(oapi, started["id"])
    assert done["status"] == "completed", done
    report = done["report"]

    # the budget counts every model call, exactly, and is never exceeded
    assert done["callsUsed"] == chat_calls(fake) <= 80
    assert sum(row["calls"] for row in done["trajectory"]) == done["callsUsed"]

    baseline, winner = report["baseline"], report["winner"]
    assert baseline["valScore"] == 0.0 and baseline["trainScore"] == 0.0
    assert winner["valScore"] == 1.0 and winner["strategy"] != "baseline"
    assert report["improvementPoints"] == 100.0 and report["keptBaseline"] is False
    assert report["stopReason"] in ("perfect", "budget", "plateau", "exhausted", "maxRounds")
    rows = done["trajectory"]
    assert rows[0]["strategy"] == "baseline" and rows[0]["round"] == 0
    assert {r["strategy"] for r in rows} >= {"baseline", "format-line"}
    assert all(r["round"] >= 1 for r in rows[1:])

    # the winner is a new version: generated, child of the starting version, with its scores; not labelled
    prompt = (await oapi.get(f"/api/v1/prompts/{PROMPT}")).json()["prompt"]
    base_id = done["baseVersionId"]
    versions = (await oapi.get(f"/api/v1/prompts/{PROMPT}/versions")).json()["items"]
    new = next(v for v in versions if v["id"] == done["winnerVersionId"])
    assert new["source"] == "generated" and new["parentVersionId"] == base_id
    assert new["metadata"]["optimizationId"] == done["id"]
    assert new["metadata"]["valScore"] == 1.0 and new["metadata"]["baselineValScore"] == 0.0
    assert "positive" in new["template"] and "{{ review }}" in new["template"]
    assert new["modelConfig"]["provider"] == "fake"
    assert prompt["labels"]["production"] == 1

    candidates = (await oapi.get(f"/api/v1/optimizations/{done['id']}/candidates")).json()["items"]
    assert [c["id"] for c in candidates] == [r["candidateId"] for r in rows]
    assert all(c["template"] for c in candidates)
    scored = [c for c in candidates if c["status"] == "scored"]
    assert all(c["trainScore"] is not None for c in scored)

    started_events = await audit_events(oapi, "OptimizationStarted")
    assert [e["data"]["optimizationId"] for e in started_events] == [done["id"]]
    generated = await audit_events(oapi, "PromptGenerated")
    mine = [e for e in generated if e["data"].get("optimizationId") == done["id"]]
    assert len(mine) == 1
    assert mine[0]["data"]["promptId"] == prompt["id"] and mine[0]["data"]["templateId"] == base_id
    assert mine[0]["data"]["user"]
    finished = await audit_events(oapi, "OptimizationFinished")
    assert len(finished) == 1
    assert finished[0]["data"]["winner"] == new["id"]
    assert finished[0]["data"]["improvementPoints"] == 100.0
    assert finished[0]["data"]["callsUsed"] == done["callsUsed"]
    assert all(e["data"]["versionId"] != new["id"] for e in await audit_events(oapi, "PromptDeployed"))

    listed = (await oapi.get("/api/v1/optimizations", params={"prompt": PROMPT})).json()["items"]
    assert [o["id"] for o in listed] == [done["id"]]


@pytest.mark.parametrize("budget", [24, 31, 47])
async def test_the_budget_is_never_exceeded(oapi: Api, fake: FakeLLMServer, budget: int) -> None:
    done = await wait(oapi, (await start(oapi, budget=budget, proposer={"mode": "deterministic"}))["id"])
    assert done["status"] == "completed", done
    assert done["callsUsed"] == chat_calls(fake) <= budget
    # the baseline (12 calls) plus at least one candidate on train (6) and validation (6)
    assert done["callsUsed"] >= 24
    assert done["report"]["winner"]["valScore"] is not None


async def test_bad_requests_are_refused_before_any_call(oapi: Api, fake: FakeLLMServer) -> None:
    r = await oapi.post("/api/v1/optimizations", json=body(budget=20))
    assert r.status_code == 422 and r.json()["code"] == "budget_too_small", r.text
    assert "at least 24" in r.json()["detail"]
    r = await oapi.post("/api/v1/optimizations", json=body(budget=5001))
    assert r.status_code == 422
    r = await oapi.post("/api/v1/optimizations", json={**body(), "prompt": "opt/none"})
    assert r.status_code == 404
    r = await oapi.post("/api/v1/optimizations", json={**body(), "dataset": "opt/none"})
    assert r.status_code == 404
    r = await oapi.post("/api/v1/optimizations", json=body(scorers=[{"type": "no-such-scorer"}]))
    assert r.status_code == 422
    r = await oapi.post("/api/v1/optimizations", json=body(model={"provider": "nope", "model": "x"}))
    assert r.status_code in (404, 422), r.text
    r = await oapi.post("/api/v1/optimizations", json=body(promoteLabel="latest"))
    assert r.status_code == 422
    assert chat_calls(fake) == 0
    assert (await oapi.get("/api/v1/optimizations")).json()["items"] == []
    assert (await oapi.get("/api/v1/optimizations/opt_nope")).status_code == 404


async def test_cancel_keeps_the_scored_candidates_and_saves_nothing(oapi: Api, fake: FakeLLMServer) -> None:
    fake.script("openai", delay=0.05, times=10_000)
    started = await start(oapi, budget=200, concurrency=1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (await oapi.get(f"/api/v1/optimizations/{started['id']}")).json()["callsUsed"] < 13:
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    r = await oapi.post(f"/api/v1/optimizations/{started['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancelRequested"] is True
    done = await wait(oapi, started["id"])
    assert done["status"] == "cancelled" and done["winnerVersionId"] is None
    assert done["callsUsed"] >= chat_calls(fake) - 1  # at most the call in flight at the cancel
    versions = (await oapi.get(f"/api/v1/prompts/{PROMPT}/versions")).json()["items"]
    assert len(versions) == 1
    assert done["trajectory"][0]["strategy"] == "baseline"
    r = await oapi.post(f"/api/v1/optimizations/{started['id']}/cancel")
    assert r.status_code == 409
    assert await audit_events(oapi, "OptimizationFinished") == []
    assert len(await audit_events(oapi, "OptimizationCancelled")) == 1


async def test_permissions_and_promotion(oapi: Api, fake: FakeLLMServer) -> None:
    viewer = (await oapi.make_key("Viewer"))["key"]
    qa = (await oapi.make_key("QAAnalyst"))["key"]
    engineer = (await oapi.make_key("PromptEngineer"))["key"]
    for key in (viewer, qa):
        r = await oapi.post("/api/v1/optimizations", key=key, json=body(budget=40))
        assert r.status_code == 403, r.text
    started = await start(oapi, key=engineer, budget=60, promoteLabel="production")
    r = await oapi.get(f"/api/v1/optimizations/{started['id']}", key=viewer)
    assert r.status_code == 200
    r = await oapi.post(f"/api/v1/optimizations/{started['id']}/cancel", key=viewer)
    assert r.status_code == 403
    done = await wait(oapi, started["id"])
    assert done["status"] == "completed", done
    assert done["report"]["promotion"] == {"label": "production", "promoted": True}
    prompt = (await oapi.get(f"/api/v1/prompts/{PROMPT}")).json()["prompt"]
    new = next(
        v
        for v in (await oapi.get(f"/api/v1/prompts/{PROMPT}/versions")).json()["items"]
        if v["id"] == done["winnerVersionId"]
    )
    assert prompt["labels"]["production"] == new["version"] == 2
    deployed = [e for e in await audit_events(oapi, "PromptDeployed") if e["promptId"] == prompt["id"]]
    assert [e["data"]["versionId"] for e in deployed] == [new["id"], done["baseVersionId"]]
