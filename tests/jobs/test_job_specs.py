"""Typed job specs (``EvalRunSpec``, ``OptimizationSpec``): what the API stores in ``spec`` is exactly the JSON
the typed model dumps, loads back unchanged, keeps the camelCase shape existing rows have, and a row written
before a field existed still loads (with the default) and shows the same through the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from promptops.evals.models import EvalRun
from promptops.evals.schemas import EvalRunSpec
from promptops.optimize.models import Optimization
from promptops.optimize.schemas import OptimizationSpec
from promptops.runtime import Runtime
from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

MODEL = {"provider": "fake", "model": "gpt-fake", "params": {"temperature": 0}}
EVAL_KEYS = [
    "versions",
    "scorers",
    "variables",
    "concurrency",
    "cacheTtlSeconds",
    "passThreshold",
    "tags",
    "limit",
    "caseIds",
    "dataset",
    "principal",
]
OPTIMIZATION_KEYS = [
    "ref",
    "promptName",
    "version",
    "dataset",
    "budget",
    "target",
    "scorers",
    "callsPerCase",
    "trainFraction",
    "seed",
    "topK",
    "maxRounds",
    "patience",
    "candidatesPerRound",
    "proposer",
    "promoteLabel",
    "concurrency",
    "trainCaseIds",
    "valCaseIds",
    "variables",
    "base",
    "principal",
]


@pytest.fixture
async def sapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    # No workers: the jobs stay queued, so only what create stored is looked at.
    async with provider_app(db_url, tmp_path, fake, run_workers=False) as api:
        r = await api.post(
            "/api/v1/prompts",
            json={"name": "spec/echo", "template": "{{ review }}", "variables": [{"name": "review"}]},
        )
        assert r.status_code == 201, r.text
        cases = [{"input": {"review": f"r{i}"}, "expected": "yes" if i % 2 else "no"} for i in range(6)]
        r = await api.post("/api/v1/datasets", json={"name": "spec/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api


async def row(api: Api, model: type[EvalRun] | type[Optimization], job_id: str) -> Any:
    runtime: Runtime = api.app.state.runtime
    async with runtime.db.transaction() as session:
        return await session.get(model, job_id)


async def replace_spec(api: Api, model: type[EvalRun] | type[Optimization], job_id: str, spec: dict) -> None:
    runtime: Runtime = api.app.state.runtime
    async with runtime.db.transaction(write=True) as session:
        found = await session.get(model, job_id)
        assert found is not None
        found.spec = spec


async def test_eval_spec_round_trip(sapi: Api) -> None:
    r = await sapi.post(
        "/api/v1/evals",
        json={
            "prompts": ["spec/echo"],
            "dataset": "spec/reviews",
            "models": [MODEL],
            "scorers": [
                {"type": "contains", "threshold": 1},
                {"type": "regex", "value": "y.s", "name": "re"},
            ],
            "variables": {"extra": "x"},
            "cacheTtlSeconds": 60,
            "tags": [],
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    stored = (await row(sapi, EvalRun, created["id"])).spec
    assert sorted(stored) == sorted(EVAL_KEYS)  # PostgreSQL (JSONB) keeps its own key order
    spec = EvalRunSpec.model_validate(stored)
    assert spec.dump() == stored  # what is stored is what the model dumps, and back
    assert spec.cache_ttl_seconds == 60 and spec.variables == {"extra": "x"} and len(spec.case_ids) == 6
    assert spec.versions[0].targets[0].model == "gpt-fake" and spec.principal.principal().id
    # unset scorer options are left out, as the API has always shown them
    assert stored["scorers"][1] == {
        "type": "regex",
        "name": "re",
        "value": "y.s",
        "weight": 1.0,
        "negate": False,
        "options": {},
    }
    assert created["scorers"] == stored["scorers"] and created["versions"] == stored["versions"]
    assert created["dataset"] == stored["dataset"] == {"name": "spec/reviews", "version": 1}

    # A row from before ``dataset``/``concurrency``/``passThreshold``/``cacheTtlSeconds`` were stored still loads.
    old = {
        k: v
        for k, v in stored.items()
        if k not in ("dataset", "concurrency", "passThreshold", "cacheTtlSeconds")
    }
    await replace_spec(sapi, EvalRun, created["id"], {**old, "retired": True})
    shown = (await sapi.get(f"/api/v1/evals/{created['id']}")).json()
    assert shown["dataset"] == {} and shown["concurrency"] == 8 and shown["passThreshold"] == 1.0
    assert shown["versions"] == created["versions"] and shown["scorers"] == created["scorers"]

    # A spec that is not one (a hand-edited row) is refused by the model, not read half-way.
    with pytest.raises(ValidationError):
        EvalRunSpec.model_validate({**stored, "versions": [{"ref": "x"}]})


async def test_optimization_spec_round_trip(sapi: Api) -> None:
    r = await sapi.post(
        "/api/v1/optimizations",
        json={"prompt": "spec/echo", "dataset": "spec/reviews", "model": MODEL, "budget": 100, "seed": 7},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    stored = (await row(sapi, Optimization, created["id"])).spec
    assert sorted(stored) == sorted(OPTIMIZATION_KEYS)
    spec = OptimizationSpec.model_validate(stored)
    assert spec.dump() == stored
    assert spec.seed == 7 and spec.budget == 100 and spec.target.params == {"temperature": 0}
    assert len(spec.train_case_ids) + len(spec.val_case_ids) == 6
    # the API shows the spec without the case ids and the acting principal, with the split sizes
    public = {k: v for k, v in stored.items() if k not in ("principal", "trainCaseIds", "valCaseIds")}
    expected = {**public, "trainCases": len(spec.train_case_ids), "valCases": len(spec.val_case_ids)}
    assert created["spec"] == expected and created["budget"] == 100

    # an older row without ``concurrency`` and ``promoteLabel`` loads with the defaults
    old = {k: v for k, v in stored.items() if k not in ("concurrency", "promoteLabel")}
    await replace_spec(sapi, Optimization, created["id"], old)
    shown = (await sapi.get(f"/api/v1/optimizations/{created['id']}")).json()
    assert shown["spec"]["concurrency"] == 8 and shown["spec"]["promoteLabel"] is None
