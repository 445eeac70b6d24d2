"""The evaluation job writes its results and the model calls behind them (runs) in batches, in the same
transactions: every case result and every run is stored, each result names its run, and a result is never
visible without its run (on SQLite and PostgreSQL, through the REST API).
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

CASES = 40
MODEL = {"provider": "fake", "model": "gpt-fake"}


@pytest.fixture
async def bapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        for name, template in (("batch/a", "{{ review }}"), ("batch/b", "About: {{ review }}")):
            r = await api.post(
                "/api/v1/prompts",
                json={"name": name, "template": template, "variables": [{"name": "review"}]},
            )
            assert r.status_code == 201, r.text
        cases = [
            {"id": f"c{i:02d}", "input": {"review": f"case {i}"}, "expected": f"case {i}"}
            for i in range(CASES)
        ]
        r = await api.post("/api/v1/datasets", json={"name": "batch/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api


async def every(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """All items of a paged list endpoint."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (await api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})).json()
        found += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return found


async def results_of(api: Api, run_id: str) -> list[dict[str, Any]]:
    return await every(api, f"/api/v1/evals/{run_id}/results", limit=500)


async def runs_of(api: Api, trace_id: str) -> list[dict[str, Any]]:
    return await every(api, "/api/v1/runs", traceId=trace_id, limit=200)


async def test_every_result_and_every_model_call_is_stored_together(bapi: Api, fake: FakeLLMServer) -> None:
    fake.script("openai", delay=0.01, times=10_000)
    r = await bapi.post(
        "/api/v1/evals",
        json={
            "prompts": ["batch/a", "batch/b"],
            "dataset": "batch/reviews",
            "models": [MODEL],
            "scorers": [{"type": "contains"}],
            "concurrency": 16,
        },
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    checks = 0
    while (run := (await bapi.get(f"/api/v1/evals/{run_id}")).json())["status"] in ("queued", "running"):
        # While it runs: every stored result's model call is stored too (one transaction holds both).
        results = await results_of(bapi, run_id)
        stored_runs = {x["id"] for x in await runs_of(bapi, run_id)}
        assert {x["runId"] for x in results} <= stored_runs
        checks += 1
        assert loop.time() < deadline, run
        await asyncio.sleep(0.02)
    assert run["status"] == "completed", run
    assert run["doneCells"] == 2 * CASES and run["errorCells"] == 0
    assert run["summary"][0]["passed"] == CASES

    results = await results_of(bapi, run_id)
    runs = {x["id"]: x for x in await runs_of(bapi, run_id)}
    assert len(results) == 2 * CASES == len(runs) == len(fake.requests_to("/chat/completions"))
    assert sorted(x["runId"] for x in results) == sorted(runs)
    for result in results:
        call = runs[result["runId"]]
        assert call["source"] == "eval" and call["versionId"] == result["versionId"]
        assert call["output"] == result["output"] and call["status"] == "ok"


async def test_failed_calls_are_stored_with_their_results(bapi: Api, fake: FakeLLMServer) -> None:
    fake.script("openai", status=400, times=10_000)  # not retryable: one failed run per cell
    r = await bapi.post(
        "/api/v1/evals",
        json={
            "prompts": ["batch/a"],
            "dataset": "batch/reviews",
            "models": [MODEL],
            "scorers": [{"type": "contains"}],
        },
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (run := (await bapi.get(f"/api/v1/evals/{run_id}")).json())["status"] in ("queued", "running"):
        assert loop.time() < deadline
        await asyncio.sleep(0.05)
    assert run["status"] == "completed" and run["errorCells"] == CASES
    results = await results_of(bapi, run_id)
    runs = {x["id"]: x for x in await runs_of(bapi, run_id)}
    assert len(runs) == CASES and sorted(x["runId"] for x in results) == sorted(runs)
    assert all(runs[x["runId"]]["status"] == "error" for x in results)
    assert all(x["errorClass"] == runs[x["runId"]]["errorClass"] for x in results)
