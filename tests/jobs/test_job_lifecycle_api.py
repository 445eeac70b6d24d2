"""The shared job lifecycle (``promptops.jobs.lifecycle``) through the REST faces of both job kinds, evaluations
and optimizations, on SQLite and PostgreSQL: cancelling a queued job and a running one, a second cancel
refused, a job resumed where it stopped after the process restarts its job queue, and the row's bookkeeping
(attempts, started/finished times, the worker id of the process that ran it).

The model is a real HTTP server speaking the OpenAI wire format (``FakeLLMServer``), slowed down so a job is
still running when it is cancelled or interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from promptops.evals.models import EvalRun
from promptops.jobs import lifecycle
from promptops.optimize.models import Optimization
from promptops.runtime import Runtime
from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

CASES = 10
MODEL = {"provider": "fake", "model": "gpt-fake"}
EVALS = "/api/v1/evals"
OPTIMIZATIONS = "/api/v1/optimizations"


@pytest.fixture
async def japi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    # One job at a time, so a second job stays queued while the first runs; a stopping queue cancels at once.
    async with provider_app(db_url, tmp_path, fake, job_concurrency=1, job_shutdown_grace_seconds=0) as api:
        r = await api.post(
            "/api/v1/prompts",
            json={
                "name": "jobs/echo",
                "template": "{{ review }}",
                "variables": [{"name": "review"}],
                "modelConfig": MODEL,
            },
        )
        assert r.status_code == 201, r.text
        cases = [
            {
                "id": f"c{i:02d}",
                "input": {"review": f"review {i}"},
                "expected": "positive" if i % 2 else "negative",
            }
            for i in range(CASES)
        ]
        r = await api.post("/api/v1/datasets", json={"name": "jobs/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api


def runtime(api: Api) -> Runtime:
    found: Runtime = api.app.state.runtime
    return found


async def start_eval(api: Api) -> dict[str, Any]:
    r = await api.post(
        EVALS,
        json={
            "prompts": ["jobs/echo"],
            "dataset": "jobs/reviews",
            "models": [MODEL],
            "scorers": [{"type": "contains"}],
            "concurrency": 1,
        },
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def start_optimization(api: Api) -> dict[str, Any]:
    r = await api.post(
        OPTIMIZATIONS,
        json={
            "prompt": "jobs/echo",
            "dataset": "jobs/reviews",
            "scorers": [{"type": "icontains"}],
            "budget": 200,
            "concurrency": 1,
            "proposer": {"mode": "deterministic"},
        },
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def until(api: Api, path: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    """GET ``path`` until ``check(body)`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await api.get(path)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if check(body):
            return body
        assert loop.time() < deadline, body
        await asyncio.sleep(0.05)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] in lifecycle.TERMINAL


async def stored(api: Api, model: type[EvalRun] | type[Optimization], job_id: str) -> Any:
    """The job row itself: the worker id is bookkeeping no face shows."""
    async with runtime(api).db.transaction() as session:
        return await session.get(model, job_id)


@pytest.mark.parametrize(
    ("path", "start", "progress", "code"),
    [
        (EVALS, start_eval, "doneCells", "eval_finished"),
        (OPTIMIZATIONS, start_optimization, "callsUsed", "optimization_finished"),
    ],
    ids=["eval", "optimization"],
)
async def test_cancel_a_queued_and_a_running_job(
    japi: Api, fake: FakeLLMServer, path: str, start: Any, progress: str, code: str
) -> None:
    fake.script("openai", delay=0.1, times=10_000)
    running = await start(japi)
    queued = await start(japi)  # waits: one job runs at a time
    await until(japi, f"{path}/{running['id']}", lambda b: b[progress] >= 2)
    assert (await japi.get(f"{path}/{queued['id']}")).json()["status"] == "queued"

    # queued: cancelled at once, never started
    r = await japi.post(f"{path}/{queued['id']}/cancel")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled" and body["cancelRequested"] is True
    assert body["finishedAt"] is not None and body["startedAt"] is None and body["attempts"] == 0

    # running: the request is recorded, the job stops at its next write
    r = await japi.post(f"{path}/{running['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancelRequested"] is True
    done = await until(japi, f"{path}/{running['id']}", finished)
    assert done["status"] == "cancelled" and done["error"] is None
    assert done["attempts"] == 1 and done["startedAt"] <= done["finishedAt"]
    row = await stored(japi, EvalRun if path == EVALS else Optimization, running["id"])
    assert row.worker_id == lifecycle.worker_id() and row.heartbeat_at is not None

    # finished jobs cannot be cancelled again; the queued one never ran
    for job in (queued, running):
        again = await japi.post(f"{path}/{job['id']}/cancel")
        assert again.status_code == 409 and again.json()["code"] == code
        assert again.headers["content-type"].startswith("application/problem+json")
    assert (await japi.get(f"{path}/{queued['id']}")).json()["attempts"] == 0

    # both list by status through the same helper
    listed = (await japi.get(path, params={"status": "cancelled"})).json()["items"]
    assert {j["id"] for j in listed} == {queued["id"], running["id"]}
    assert (await japi.get(path, params={"status": "running"})).json()["items"] == []


@pytest.mark.parametrize(
    ("path", "start", "progress"),
    [(EVALS, start_eval, "doneCells"), (OPTIMIZATIONS, start_optimization, "callsUsed")],
    ids=["eval", "optimization"],
)
async def test_a_restarted_queue_resumes_the_job(
    japi: Api, fake: FakeLLMServer, path: str, start: Any, progress: str
) -> None:
    fake.script("openai", delay=0.1, times=10_000)
    job = await start(japi)
    await until(japi, f"{path}/{job['id']}", lambda b: b[progress] >= 3)

    # The process stops its jobs (shutdown): the job is interrupted, not failed, and stays "running".
    queue = runtime(japi).jobs
    await queue.stop()
    interrupted = (await japi.get(f"{path}/{job['id']}")).json()
    assert interrupted["status"] == "running" and interrupted["attempts"] == 1

    # Starting the queue again resubmits every pending job; it finishes from where it stopped.
    await queue.start()
    done = await until(japi, f"{path}/{job['id']}", finished)
    assert done["status"] == "completed", done
    assert done["attempts"] == 2 and done["error"] is None
    assert done["startedAt"] == interrupted["startedAt"]  # the first start is kept
    if path == EVALS:
        assert done["doneCells"] == CASES
        results = (await japi.get(f"{path}/{job['id']}/results", params={"limit": 500})).json()["items"]
        assert sorted(r["caseKey"] for r in results) == [f"c{i:02d}" for i in range(CASES)]
    row = await stored(japi, EvalRun if path == EVALS else Optimization, job["id"])
    assert row.worker_id == lifecycle.worker_id()
