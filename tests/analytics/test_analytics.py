"""Dashboards: the runs rollup stays equal to a GROUP BY over runs, and the aggregate endpoints answer from it
(zero-filled buckets, readable keys, tenant scoping, permissions, clear 4xx) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text
from typer.testing import CliRunner

from promptops.cli.main import app as cli_app
from promptops.evals.models import EvalRun, EvalRunPrompt
from promptops.ids import new_id
from promptops.runs import rollup
from promptops.runs.models import Run, RunRollup
from promptops.runtime import Runtime
from tests.support.app import Api
from tests.support.tenancy import make_project_b

BASE = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, 00:00 UTC
BOUNDS = [10.0 * 2**i for i in range(15)]
MIGRATION = Path(__file__).parents[2] / "src/promptops/migrations/versions/0006_run_rollups.py"


def make_run(project_id: str, at: datetime, **fields: Any) -> Run:
    values: dict[str, Any] = {
        "id": new_id("run"),
        "project_id": project_id,
        "prompt_id": None,
        "version_id": None,
        "provider": "local",
        "provider_type": "local",
        "model": "gemma-3-270m",
        "params": {},
        "input": {"prompt": "hi"},
        "status": "ok",
        "source": "playground",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.001,
        "latency_ms": 120.0,
        "created_at": at,
    }
    values.update(fields)
    return Run(**values)


async def store(runtime: Runtime, runs: list[Run]) -> None:
    async with runtime.db.transaction(write=True) as session:
        await rollup.store_runs(session, runs)


async def project_of(api: Api, key: str | None = None) -> str:
    r = await api.get("/api/v1/auth/me", **({"key": key} if key else {}))
    assert r.status_code == 200, r.text
    return str(r.json()["projectId"])


def expected_rollup(runs: list[Run]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The rollup computed independently: a plain GROUP BY in Python over the runs."""
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0.0] + [0] * 16)
    for run in runs:
        hour = int(run.created_at.timestamp()) // 3600
        bucket = next((i for i, bound in enumerate(BOUNDS) if run.latency_ms <= bound), 15)
        for grain in (1, 24):
            acc = sums[
                (
                    run.project_id,
                    grain,
                    hour // grain * grain,
                    run.prompt_id or "",
                    run.version_id or "",
                    run.provider,
                    run.model,
                    run.source,
                )
            ]
            acc[0] += 1
            acc[1] += 1 if run.status == "error" else 0
            acc[2] += run.input_tokens
            acc[3] += run.output_tokens
            acc[4] += run.cost_usd
            acc[5] += run.latency_ms
            acc[6 + bucket] += 1
    return {key: _rounded(values) for key, values in sums.items()}


def _rounded(values: Any) -> tuple[Any, ...]:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in values)


async def stored_rollup(runtime: Runtime) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    table = RunRollup.__table__
    async with runtime.db.transaction() as session:
        rows = (await session.execute(select(table))).all()
    width = len(rollup.KEY_COLUMNS)
    return {tuple(row[:width]): _rounded(row[width:]) for row in rows}


def mixed_runs(project_id: str, prompt_id: str, version_id: str) -> list[list[Run]]:
    """Batches that hit the same keys twice, errors, several hours and days, and every latency bucket."""
    batches = []
    for batch in range(4):
        runs = []
        for i in range(30):
            runs.append(
                make_run(
                    project_id,
                    BASE + timedelta(hours=(i % 5) * 7, minutes=i),
                    prompt_id=prompt_id if i % 3 else None,
                    version_id=version_id if i % 3 else None,
                    model="gemma-3-270m" if i % 2 else "other-model",
                    source="eval" if i % 4 == 0 else "playground",
                    status="error" if (i + batch) % 6 == 0 else "ok",
                    input_tokens=i + batch,
                    output_tokens=2 * i,
                    cost_usd=0.0001 * (i + 1),
                    latency_ms=float(5 * 2 ** (i % 17)),
                )
            )
        batches.append(runs)
    return batches


async def example_prompt(api: Api, name: str = "sentiment/few-shot") -> tuple[str, str]:
    r = await api.get(f"/api/v1/prompts/{name}/versions")
    assert r.status_code == 200, r.text
    version = r.json()["items"][0]
    return version["promptId"], version["id"]


async def test_rollup_equals_group_by_over_runs_and_the_backfill(api: Api) -> None:
    runtime: Runtime = api.app.state.runtime
    project_id = await project_of(api)
    prompt_id, version_id = await example_prompt(api)
    batches = mixed_runs(project_id, prompt_id, version_id)
    await store(runtime, batches[0])
    await store(runtime, batches[1])
    # concurrent writers on the same keys never lose a count (ON CONFLICT ... SET c = c + excluded.c)
    await asyncio.gather(store(runtime, batches[2]), store(runtime, batches[3]))
    every_run = [run for batch in batches for run in batch]
    async with runtime.db.transaction() as session:
        stored_runs = list((await session.execute(select(Run).where(Run.project_id == project_id))).scalars())
    assert len(stored_runs) == len(every_run)
    want = expected_rollup(stored_runs)
    assert await stored_rollup(runtime) == want
    assert sum(v[0] for k, v in want.items() if k[1] == 1) == 120

    # the migration's backfill (INSERT ... SELECT ... GROUP BY over runs) builds the same rows
    spec = importlib.util.spec_from_file_location("rollup_migration", MIGRATION)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    async with runtime.db.transaction(write=True) as session:
        await session.execute(delete(RunRollup))
        for statement in migration.backfill_sql(session.get_bind().dialect.name):
            await session.execute(text(statement))
    assert await stored_rollup(runtime) == want


async def test_usage_is_zero_filled_per_bucket_with_readable_keys(api: Api) -> None:
    runtime: Runtime = api.app.state.runtime
    project_id = await project_of(api)
    prompt_id, version_id = await example_prompt(api)
    await store(
        runtime,
        [
            make_run(
                project_id, BASE + timedelta(hours=1, minutes=5), prompt_id=prompt_id, version_id=version_id
            ),
            make_run(project_id, BASE + timedelta(hours=1, minutes=50), status="error", latency_ms=900.0),
            make_run(
                project_id, BASE + timedelta(hours=4), model="other-model", cost_usd=0.5, latency_ms=15.0
            ),
        ],
    )
    window = {"from": BASE.isoformat(), "to": (BASE + timedelta(hours=6)).isoformat()}
    r = await api.get("/api/v1/analytics/usage", params={**window, "bucket": "hour"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [datetime.fromisoformat(b) for b in body["buckets"]] == [
        BASE + timedelta(hours=h) for h in range(6)
    ]
    runs = [p["runs"] for p in body["series"]]
    assert runs == [0, 2, 0, 0, 1, 0]
    second = body["series"][1]
    assert second["errors"] == 1 and second["errorRate"] == 0.5
    assert second["latencyMsAvg"] == 510.0 and second["latencyMsP50"] <= second["latencyMsP95"] <= 1280
    assert body["series"][0]["errorRate"] is None and body["series"][0]["costUsd"] == 0
    assert body["totals"]["runs"] == 3 and abs(body["totals"]["costUsd"] - 0.502) < 1e-9

    r = await api.get("/api/v1/analytics/usage", params={**window, "bucket": "hour", "groupBy": "model"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [k["label"] for k in body["keys"]] == ["local/gemma-3-270m", "local/other-model"]
    assert len(body["series"]) == 12  # every key in every bucket

    r = await api.get("/api/v1/analytics/usage", params={**window, "bucket": "day", "groupBy": "prompt"})
    body = r.json()
    labels = {k["label"]: k for k in body["keys"]}
    assert labels["sentiment/few-shot"]["promptId"] == prompt_id and "(no prompt)" in labels
    assert len(body["buckets"]) == 1

    r = await api.get("/api/v1/analytics/usage", params={**window, "groupBy": "model", "limit": 1})
    body = r.json()
    assert [k["key"] for k in body["keys"]][-1] == "other" and body["otherKeys"] == 1
    assert sum(p["runs"] for p in body["series"]) == 3

    r = await api.get("/api/v1/analytics/usage", params={**window, "prompt": "sentiment/few-shot"})
    assert r.json()["totals"]["runs"] == 1

    r = await api.get("/api/v1/analytics/top", params={**window, "by": "model", "metric": "cost"})
    assert r.status_code == 200, r.text
    assert [i["key"]["model"] for i in r.json()["items"]] == ["other-model", "gemma-3-270m"]
    r = await api.get(
        "/api/v1/analytics/top", params={**window, "by": "prompt", "metric": "errors", "limit": 1}
    )
    items = r.json()["items"]
    assert len(items) == 1 and items[0]["errors"] == 1 and items[0]["key"]["label"] == "(no prompt)"

    # a week bucket starts on Monday 00:00 UTC
    r = await api.get(
        "/api/v1/analytics/usage",
        params={
            "from": (BASE + timedelta(days=2)).isoformat(),
            "to": (BASE + timedelta(days=9)).isoformat(),
            "bucket": "week",
        },
    )
    assert [datetime.fromisoformat(b) for b in r.json()["buckets"]] == [BASE, BASE + timedelta(days=7)]
    assert r.json()["totals"]["runs"] == 3


async def test_quality_counts_feedback_per_day(api: Api) -> None:
    for score in (5, 3):
        r = await api.post(
            "/api/v1/feedback", json={"prompt": "sentiment/few-shot", "score": score, "thumbs": 1}
        )
        assert r.status_code == 201, r.text
    now = datetime.now(UTC)
    params = {"from": (now - timedelta(days=3)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    r = await api.get("/api/v1/analytics/quality", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["feedback"]) == len(body["buckets"]) == len(body["evals"])
    today = [p for p in body["feedback"] if p["count"]]
    assert len(today) == 1 and today[0]["meanScore"] == 4 and today[0]["thumbsUp"] == 2
    r = await api.get("/api/v1/analytics/quality", params={**params, "prompt": "support/reply"})
    assert sum(p["count"] for p in r.json()["feedback"]) == 0
    # an unknown prompt has no data, on every endpoint alike (not a 404 on one and an empty answer on another)
    for path in ("quality", "usage"):
        r = await api.get(f"/api/v1/analytics/{path}", params={**params, "prompt": "no/such-prompt"})
        assert r.status_code == 200, (path, r.text)


async def test_another_projects_runs_never_show(api: Api) -> None:
    runtime: Runtime = api.app.state.runtime
    b = await make_project_b(api)
    a_project = await project_of(api)
    await store(runtime, [make_run(a_project, BASE + timedelta(hours=1))])
    await store(runtime, [make_run(b["project_id"], BASE + timedelta(hours=1), model="b-model")])
    await store(runtime, [make_run(b["project_id"], BASE + timedelta(hours=2), model="b-model")])
    params = {"from": BASE.isoformat(), "to": (BASE + timedelta(days=1)).isoformat(), "groupBy": "model"}
    mine = (await api.get("/api/v1/analytics/usage", params=params)).json()
    theirs = (await api.get("/api/v1/analytics/usage", b["key"], params=params)).json()
    assert mine["totals"]["runs"] == 1 and [k["model"] for k in mine["keys"]] == ["gemma-3-270m"]
    assert theirs["totals"]["runs"] == 2 and [k["model"] for k in theirs["keys"]] == ["b-model"]
    top = (await api.get("/api/v1/analytics/top", params={**params, "by": "model"})).json()
    assert [i["key"]["model"] for i in top["items"]] == ["gemma-3-270m"]


async def test_permissions_and_bad_parameters(api: Api) -> None:
    assert (await api.get("/api/v1/analytics/usage", None)).status_code == 401
    viewer = (await api.make_key("Viewer"))["key"]
    for path in ("usage", "top", "quality"):
        r = await api.get(f"/api/v1/analytics/{path}", viewer)
        assert r.status_code == 200, (path, r.text)
    later, earlier = BASE.isoformat(), (BASE - timedelta(days=1)).isoformat()
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("usage", {"from": later, "to": earlier}, "invalid_range", "'from'"),
        ("top", {"from": later, "to": later}, "invalid_range", "'from'"),
        (
            "usage",
            {"from": (BASE - timedelta(days=401)).isoformat(), "to": later},
            "range_too_long",
            "400 days",
        ),
        (
            "usage",
            {"from": (BASE - timedelta(days=60)).isoformat(), "to": later, "bucket": "hour"},
            "too_many_buckets",
            "bucket=hour",
        ),
        ("usage", {"groupBy": "colour"}, "validation_error", "groupBy"),
        ("usage", {"bucket": "minute"}, "validation_error", "bucket"),
        ("top", {"metric": "vibes"}, "validation_error", "metric"),
        ("quality", {"bucket": "hour"}, "validation_error", "bucket"),
        ("usage", {"limit": 51}, "validation_error", "limit"),
    ]
    for path, params, code, named in cases:
        r = await api.get(f"/api/v1/analytics/{path}", params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["code"] == code and named in r.json()["detail"], (path, params, r.json())
    # an unknown prompt filters to nothing, as on the runs list
    r = await api.get("/api/v1/analytics/usage", params={"prompt": "no/such-prompt"})
    assert r.status_code == 200 and r.json()["totals"]["runs"] == 0, r.text


async def test_rebuild_repairs_runs_written_without_their_rollup(api: Api, db_url: str) -> None:
    runtime: Runtime = api.app.state.runtime
    project_id = await project_of(api)
    prompt_id, version_id = await example_prompt(api)
    batches = mixed_runs(project_id, prompt_id, version_id)
    await store(runtime, batches[0])
    async with runtime.db.transaction(write=True) as session:  # an older release: runs without the rollup
        session.add_all(batches[1])
    async with runtime.db.transaction() as session:
        stored_runs = list((await session.execute(select(Run).where(Run.project_id == project_id))).scalars())
    assert await stored_rollup(runtime) != expected_rollup(stored_runs)

    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["runs", "rebuild-rollup", "--database-url", db_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    rebuilt = json.loads(result.output)["projects"]
    assert {p["projectId"]: p["runs"] for p in rebuilt}[project_id] == len(stored_runs)
    assert await stored_rollup(runtime) == expected_rollup(stored_runs)


async def test_quality_charts_evaluations_that_finished_in_the_range(api: Api) -> None:
    runtime: Runtime = api.app.state.runtime
    project_id = await project_of(api)
    prompt_id, version_id = await example_prompt(api)
    now = datetime.now(UTC).replace(microsecond=0)

    def finished_run(finished: datetime, mean: float, passed: int) -> EvalRun:
        group = {"promptId": prompt_id, "versionId": version_id, "promptName": "sentiment/few-shot"}
        group |= {"version": 1, "completed": 4, "passed": passed, "meanScore": mean}
        return EvalRun(
            id=new_id("eval_run"),
            project_id=project_id,
            spec={},
            status="completed",
            created_at=finished - timedelta(minutes=5),
            finished_at=finished,
            summary={"groups": [group]},
        )

    runs = [
        finished_run(now - timedelta(days=2), 0.5, 2),  # in the range
        finished_run(now - timedelta(hours=1), 1.0, 4),  # in the range, another day
        finished_run(now - timedelta(days=20), 0.0, 0),  # before the range: not counted
    ]
    async with runtime.db.transaction(write=True) as session:
        session.add_all(runs)
        await session.flush()
        session.add_all(
            EvalRunPrompt(eval_run_id=r.id, prompt_id=prompt_id, project_id=project_id) for r in runs
        )
    params = {"from": (now - timedelta(days=7)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    for extra in ({}, {"prompt": "sentiment/few-shot"}):
        r = await api.get("/api/v1/analytics/quality", params={**params, **extra})
        assert r.status_code == 200, r.text
        body = r.json()
        points = [p for p in body["evals"] if p["evaluations"]]
        assert [(p["evaluations"], p["results"], p["meanScore"]) for p in points] == [
            (1, 4, 0.5),
            (1, 4, 1.0),
        ]
        assert sum(p["results"] for p in body["evalVersions"]) == 8
    r = await api.get("/api/v1/analytics/quality", params={**params, "prompt": "support/reply"})
    assert sum(p["evaluations"] for p in r.json()["evals"]) == 0
