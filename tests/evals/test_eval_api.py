"""Evaluation runs through the REST API: a real background job calling a real HTTP server that speaks the
OpenAI wire format, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)
from tests.support.tenancy import make_project_b

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
    "friendly driver and a clean car",
    "the room was dirty and noisy",
]
MODEL = {"provider": "fake", "model": "gpt-fake"}


@pytest.fixture
async def eapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        for name, template in (
            ("echo/a", "{{ review }}"),
            ("echo/b", "Say nothing about {{ review | length }}"),
        ):
            r = await api.post(
                "/api/v1/prompts",
                json={"name": name, "template": template, "variables": [{"name": "review"}]},
            )
            assert r.status_code == 201, r.text
        cases = [
            {"id": f"c{i:02d}", "input": {"review": text}, "expected": text} for i, text in enumerate(REVIEWS)
        ]
        r = await api.post("/api/v1/datasets", json={"name": "echo/reviews", "cases": cases})
        assert r.status_code == 201, r.text
        yield api


async def wait_done(api: Api, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await api.get(f"/api/v1/evals/{run_id}")
        assert r.status_code == 200, r.text
        run = r.json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        assert asyncio.get_running_loop().time() < deadline, f"evaluation still {run['status']}: {run}"
        await asyncio.sleep(0.1)


async def start(api: Api, **overrides: Any) -> dict[str, Any]:
    body = {
        "prompts": ["echo/a", "echo/b"],
        "dataset": "echo/reviews",
        "models": [MODEL],
        "scorers": [{"type": "contains"}],
        **overrides,
    }
    r = await api.post("/api/v1/evals", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_evaluation_runs_scores_and_compares(eapi: Api, fake: FakeLLMServer) -> None:
    created = await start(eapi, concurrency=4)
    assert created["status"] == "queued" and created["totalCells"] == 24
    run = await wait_done(eapi, created["id"])
    assert run["status"] == "completed", run
    assert run["doneCells"] == 24 and run["errorCells"] == 0 and run["progress"] == 1.0
    by_label = {g["label"]: g for g in run["summary"]}
    a, b = by_label["echo/a@1"], by_label["echo/b@1"]
    assert a["passRate"] == 1.0 and a["passed"] == 12 and a["meanScore"] == 1.0
    assert b["passRate"] == 0.0 and b["failed"] == 12
    assert a["target"] == "fake/gpt-fake" and a["inputTokens"] > 0 and a["latencyP50Ms"] is not None
    assert a["scorers"] == {"contains": 1.0}
    # every cell called the model exactly once
    assert len(fake.requests_to("/chat/completions")) == 24, [r.path for r in fake.requests]

    failed = (await eapi.get(f"/api/v1/evals/{run['id']}/results", params={"passed": "false"})).json()
    assert len(failed["items"]) == 12 and {r["versionId"] for r in failed["items"]} == {b["versionId"]}
    item = failed["items"][0]
    assert item["scores"][0]["type"] == "contains" and item["scores"][0]["passed"] is False
    assert item["runId"].startswith("run_")
    page = (await eapi.get(f"/api/v1/evals/{run['id']}/results", params={"limit": 10})).json()
    assert len(page["items"]) == 10 and page["nextCursor"]
    rest = (
        await eapi.get(f"/api/v1/evals/{run['id']}/results", params={"cursor": page["nextCursor"]})
    ).json()
    assert len(rest["items"]) == 14 and not {i["id"] for i in rest["items"]} & {
        i["id"] for i in page["items"]
    }

    r = await eapi.get("/api/v1/evals/compare", params={"run": run["id"]})
    assert r.status_code == 200, r.text
    cmp = r.json()
    assert cmp["cases"] == 12 and cmp["aPassRate"] == 1.0 and cmp["bPassRate"] == 0.0
    assert cmp["mcnemar"]["aOnly"] == 12 and cmp["mcnemar"]["pValue"] < 0.001
    assert cmp["significant"] is True and cmp["winner"] == "A"
    assert cmp["verdict"].startswith("echo/a@1 beats echo/b@1 by 100.0 points"), cmp["verdict"]
    assert len(cmp["flipped"]) == 12 and all(f["direction"] == "broken" for f in cmp["flipped"])

    latest = (await eapi.get("/api/v1/evals/latest", params={"prompt": "echo/a"})).json()
    assert latest["evalRunId"] == run["id"] and latest["groups"][0]["passRate"] == 1.0

    runs = (await eapi.get("/api/v1/runs", params={"source": "eval", "limit": 200})).json()["items"]
    assert len(runs) == 24 and {r["traceId"] for r in runs} == {run["id"]}

    events = (await eapi.get("/api/v1/audit", params={"limit": 200})).json()["events"]
    kinds = [e["eventType"] for e in events]
    assert "EvaluationQueued" in kinds
    evaluated = [e for e in events if e["eventType"] == "PromptEvaluated"]
    assert len(evaluated) == 2
    scores = {e["data"]["versionId"]: e["data"]["evalScore"] for e in evaluated}
    assert scores == {a["versionId"]: 1.0, b["versionId"]: 0.0}
    assert all(e["data"]["evaluator"].startswith(f"eval:{run['id']}") for e in evaluated)

    listed = (await eapi.get("/api/v1/evals", params={"prompt": "echo/b"})).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]


async def queue_runs(api: Api, *prompt_lists: list[str]) -> list[str]:
    """Queue one single-case run per list of prompts straight through the service (no job runs them); ids
    in creation order.
    """
    from promptops.auth.principal import Principal
    from promptops.evals import service
    from promptops.evals.schemas import EvalRunIn
    from promptops.governance.rbac import Role

    runtime = api.app.state.runtime
    me = (await api.get("/api/v1/auth/me")).json()
    principal = Principal("system", "system", "system", me["projectId"], me["orgId"], Role.ADMIN)
    ids = []
    for prompts in prompt_lists:
        body = EvalRunIn.model_validate(
            {"prompts": prompts, "dataset": "echo/reviews", "models": [MODEL], "limit": 1}
        )
        async with runtime.db.transaction(write=True) as session:
            ids.append((await service.create_run(session, principal, body, runtime.caller)).id)
    return ids


async def list_all(api: Api, **params: Any) -> list[str]:
    """Every run id the list returns for ``params``, following nextCursor page by page."""
    ids: list[str] = []
    cursor = None
    while True:
        r = await api.get("/api/v1/evals", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params["limit"]
        ids += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            return ids
        assert len(page["items"]) == params["limit"]


async def test_list_by_prompt_reaches_runs_behind_many_others(eapi: Api) -> None:
    """The prompt filter is SQL: runs of echo/a older than 66 runs of echo/b are listed, paged by cursor."""
    ids = await queue_runs(eapi, *[["echo/a"]] * 3, ["echo/b", "echo/a"], *[["echo/b"]] * 66, ["echo/a"])
    newest_first = ids[::-1]
    of_a = [i for i in newest_first if i in {*ids[:4], ids[-1]}]
    of_b = newest_first[1:68]
    assert len(of_a) == 5 and len(of_b) == 67

    assert await list_all(eapi, prompt="echo/a", limit=2) == of_a
    assert await list_all(eapi, prompt="echo/a", dataset="echo/reviews", limit=50) == of_a
    prompt_id = (await eapi.get(f"/api/v1/evals/{ids[0]}")).json()["versions"][0]["promptId"]
    assert await list_all(eapi, prompt=prompt_id, limit=3) == of_a
    assert await list_all(eapi, prompt="echo/b", limit=50) == of_b
    assert await list_all(eapi, limit=200) == newest_first
    missing = await eapi.get("/api/v1/evals", params={"prompt": "no/such"})
    assert missing.status_code == 404


async def test_migration_backfills_the_prompts_of_existing_runs(eapi: Api, db_url: str) -> None:
    """0005 rebuilds eval_run_prompts from each run's spec: down to 0004 drops it, up fills it again."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from promptops.config import normalize_database_url
    from promptops.migrate import downgrade, upgrade

    ids = await queue_runs(eapi, ["echo/a"], ["echo/b", "echo/a"], ["echo/b"])
    mixed = (await eapi.get(f"/api/v1/evals/{ids[1]}")).json()["versions"]
    prompts = {v["promptName"]: v["promptId"] for v in mixed}
    expected = {
        (ids[0], prompts["echo/a"]),
        (ids[1], prompts["echo/a"]),
        (ids[1], prompts["echo/b"]),
        (ids[2], prompts["echo/b"]),
    }

    async def stored() -> set[tuple[str, str]]:
        engine = create_async_engine(normalize_database_url(db_url))
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT eval_run_id, prompt_id FROM eval_run_prompts"))
            found = {(r[0], r[1]) for r in rows}
        await engine.dispose()
        return found

    assert await stored() == expected
    await asyncio.to_thread(downgrade, db_url, "0004")
    await asyncio.to_thread(upgrade, db_url)
    assert await stored() == expected


async def test_rate_limits_are_retried_and_errors_are_reported_per_case(
    eapi: Api, fake: FakeLLMServer
) -> None:
    fake.script("openai", error="rate_limit", headers={"Retry-After": "0.05"}, times=2)
    run = await wait_done(eapi, (await start(eapi, prompts=["echo/a"], concurrency=1))["id"])
    results = (await eapi.get(f"/api/v1/evals/{run['id']}/results")).json()["items"]
    assert run["status"] == "completed" and run["summary"][0]["passed"] == 12 and run["errorCells"] == 0, [
        (r["output"], r["caseKey"], r["scores"]) for r in results
    ]

    fake.script("openai", error="auth", times=100)
    run = await wait_done(eapi, (await start(eapi, prompts=["echo/a"], concurrency=2))["id"])
    assert run["status"] == "completed" and run["errorCells"] == 12
    group = run["summary"][0]
    assert group["errors"] == 12 and group["passRate"] == 0.0
    result = (await eapi.get(f"/api/v1/evals/{run['id']}/results", params={"errors": "true"})).json()[
        "items"
    ][0]
    assert result["errorClass"] == "provider_auth_failed" and DEFAULT_KEY not in str(result)


async def test_cancel_keeps_finished_cells(eapi: Api, fake: FakeLLMServer) -> None:
    fake.script("openai", delay=0.3, times=100)
    created = await start(eapi, prompts=["echo/a"], concurrency=1)
    while (await eapi.get(f"/api/v1/evals/{created['id']}")).json()["doneCells"] < 1:
        await asyncio.sleep(0.05)
    r = await eapi.post(f"/api/v1/evals/{created['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancelRequested"] is True
    run = await wait_done(eapi, created["id"])
    assert run["status"] == "cancelled" and 1 <= run["doneCells"] < 12
    again = await eapi.post(f"/api/v1/evals/{created['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "eval_finished"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"dataset": "no/such"}, 404, None),
        ({"prompts": ["no/such"]}, 404, None),
        ({"scorers": [{"type": "no-such-scorer"}]}, 422, "invalid_scorer"),
        ({"scorers": [{"type": "regex", "value": "(unclosed"}]}, 422, "invalid_scorer"),
        ({"models": [{"provider": "nope", "model": "x"}]}, 404, None),
        ({"tags": ["no-such-tag"]}, 422, "empty_dataset"),
        ({"prompts": ["echo/a", "echo/a@1"]}, 422, "duplicate_version"),
        ({"concurrency": 0}, 422, "validation_error"),
    ],
)
async def test_bad_requests_are_refused_before_any_call(
    eapi: Api, fake: FakeLLMServer, overrides: dict[str, Any], status: int, code: str | None
) -> None:
    body = {"prompts": ["echo/a"], "dataset": "echo/reviews", "models": [MODEL], **overrides}
    r = await eapi.post("/api/v1/evals", json=body)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code
    assert r.json()["detail"]
    assert not fake.requests
    assert (await eapi.get("/api/v1/evals")).json()["items"] == []


async def test_roles_and_tenancy(eapi: Api) -> None:
    viewer = (await eapi.make_key("Viewer"))["key"]
    body = {"prompts": ["echo/a"], "dataset": "echo/reviews", "models": [MODEL]}
    assert (await eapi.post("/api/v1/evals", viewer, json=body)).status_code == 403
    run = await start(eapi, prompts=["echo/a"])
    assert (await eapi.get(f"/api/v1/evals/{run['id']}", viewer)).status_code == 200
    await wait_done(eapi, run["id"])
    other = (await make_project_b(eapi))["key"]
    assert (await eapi.get(f"/api/v1/evals/{run['id']}", other)).status_code == 404
    assert (await eapi.get(f"/api/v1/evals/{run['id']}/results", other)).status_code == 404
    assert (await eapi.get("/api/v1/evals", other)).json()["items"] == []


async def test_contract_evaluate(eapi: Api, fake: FakeLLMServer) -> None:
    cases = [{"input": text, "expected": text} for text in REVIEWS[:4]] + [
        {"input": "hello", "expected": "zzz"}
    ]
    r = await eapi.post(
        "/api/prompt/evaluate",
        json={"prompt": "echo/a", "testCases": cases, "model": MODEL, "scorers": [{"type": "contains"}]},
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["promptId"].startswith("prm_") and result["score"] == 0.8
    assert result["feedback"].startswith("4/5 test cases passed") and "zzz" in result["feedback"]
    # raw template text, default scorer (label match against expected)
    r = await eapi.post(
        "/api/prompt/evaluate",
        json={
            "prompt": "Repeat: {{ input }}",
            "testCases": [{"input": "x", "expected": "y"}],
            "model": MODEL,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["promptId"].startswith("inline:") and r.json()["score"] == 0.0
    events = (await eapi.get("/api/prompt/audit", params={"eventType": "PromptEvaluated"})).json()["events"]
    assert len(events) == 2 and {e["data"]["evalScore"] for e in events} == {0.8, 0.0}
    assert events[-1]["promptId"] is not None or events[0]["promptId"] is not None

    bad = await eapi.post("/api/prompt/evaluate", json={"prompt": "echo/a", "testCases": []})
    assert bad.status_code == 422
    bad = await eapi.post(
        "/api/prompt/evaluate", json={"prompt": "echo/a@nolabel", "testCases": [{"input": "x"}]}
    )
    assert bad.status_code == 404
    viewer = (await eapi.make_key("Viewer"))["key"]
    r = await eapi.post(
        "/api/prompt/evaluate", viewer, json={"prompt": "echo/a", "testCases": [{"input": "x"}]}
    )
    assert r.status_code == 403


async def test_scorer_types_say_what_a_spec_takes(api: Api) -> None:
    r = await api.get("/api/v1/evals/scorers")
    assert r.status_code == 200, r.text
    rows = {row["type"]: row for row in r.json()}
    assert rows["label"]["valueKind"] == "reference" and "labels" in rows["label"]["options"]
    assert rows["json-path"]["aliases"] == ["jsonpath-equals"] and "jsonpath-equals" not in rows
    assert rows["llm-rubric"]["defaultThreshold"] == 0.75
    assert all(row["builtin"] and row["description"] for row in rows.values())
    assert rows["contains"]["valueKind"] == "reference" and rows["is-json"]["valueKind"] == "optional"
    viewer = await api.make_key("Viewer")
    assert (await api.get("/api/v1/evals/scorers", key=viewer["key"])).status_code == 200
    assert (await api.get("/api/v1/evals/scorers", key=None)).status_code == 401
