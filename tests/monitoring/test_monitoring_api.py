"""Per-version monitoring over REST: the versions that served a label, every metric per bucket from rollups,
one metric over a trailing window, clear 4xx, permissions and tenant scoping (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promptops.ids import new_id
from promptops.monitoring import service
from promptops.runs import rollup
from promptops.runs.models import Run
from tests.monitoring.support import PROMPT, hours_ago, ingest, move_label, prompt_with_versions, sdk_run
from tests.support.app import Api
from tests.support.tenancy import make_project_b

URL = f"/api/v1/monitoring/prompts/{PROMPT}"


async def _traffic(api: Api, now: datetime) -> list[str]:
    """v1: 10 runs 3 h ago (2 errors, 100 ms); v2: 5 runs 1 h ago (1000 ms); v3 (never labelled): 4 runs."""
    await prompt_with_versions(api, versions=3)
    v1 = [sdk_run(1, at=hours_ago(3, now), latencyMs=100.0) for _ in range(8)]
    v1 += [
        sdk_run(1, at=hours_ago(3, now), status="error", output=None, errorClass="Timeout", latencyMs=100.0)
        for _ in range(2)
    ]
    v2 = [sdk_run(2, at=hours_ago(1, now), latencyMs=1000.0, costUsd=0.004) for _ in range(5)]
    v3 = [sdk_run(3, at=hours_ago(2, now)) for _ in range(4)]
    ids = await ingest(api, v1 + v2 + v3)
    await move_label(api, 2)
    for run_id, score in ((ids[0], 4), (ids[1], 2)):
        r = await api.post("/api/v1/feedback", json={"runId": run_id, "score": score})
        assert r.status_code == 201, r.text
    return ids


async def test_series_per_serving_version(api: Api) -> None:
    now = datetime.now(UTC)
    await _traffic(api, now)
    # an evaluation run of v1 is not production traffic
    async with api.app.state.runtime.db.transaction(write=True) as session:
        me = (await api.get("/api/v1/auth/me")).json()
        prompt = (await api.get(f"/api/v1/prompts/{PROMPT}")).json()
        await rollup.store_runs(
            session,
            [
                Run(
                    id=new_id("run"),
                    project_id=me["projectId"],
                    prompt_id=prompt["prompt"]["id"],
                    version_id=None,
                    provider="local",
                    provider_type="local",
                    model="m",
                    params={},
                    input={"prompt": "x"},
                    status="ok",
                    source="eval",
                    created_at=hours_ago(3, now),
                )
            ],
        )
    r = await api.get(
        URL, params={"from": hours_ago(6, now).isoformat(), "to": now.isoformat(), "bucket": "hour"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "production" and body["bucket"] == "hour"
    assert len(body["buckets"]) in (6, 7)  # whole hours covering the range
    versions = {v["version"]: v for v in body["versions"]}
    assert set(versions) == {1, 2}  # v3 never served production
    v1, v2 = versions[1]["totals"], versions[2]["totals"]
    assert (v1["runs"], v1["errors"], v1["errorRate"]) == (10, 2, 0.2)
    assert 80 <= v1["latencyP50Ms"] <= 160 and 640 <= v2["latencyP50Ms"] <= 1280
    assert v1["tokens"] == 220 and v2["costUsd"] == pytest.approx(0.02)
    assert (v1["feedbackScored"], v1["feedbackMean"]) == (2, 3.0)
    assert v2["feedbackMean"] is None and v2["onlineEvalPassRate"] is None
    assert versions[2]["serving"][0]["end"] is None and versions[1]["serving"][0]["end"] is not None
    assert body["totals"]["runs"] == 15
    hour_of = {p["bucketStart"]: p for p in body["points"] if p["versionId"] == versions[1]["versionId"]}
    assert sum(p["runs"] for p in hour_of.values()) == 10
    assert sum(p["runs"] for p in body["overall"]) == 15 and len(body["overall"]) == len(body["buckets"])

    every = (await api.get(URL, params={"label": "*", "from": hours_ago(6, now).isoformat()})).json()
    assert {v["version"] for v in every["versions"]} == {1, 2, 3}
    assert every["totals"]["runs"] == 19 and every["label"] is None

    days = (await api.get(URL, params={"bucket": "day", "from": hours_ago(48, now).isoformat()})).json()
    assert days["totals"]["runs"] == 15 and len(days["buckets"]) in (2, 3)


async def test_metric_value_and_rest_metric(api: Api) -> None:
    now = datetime.now(UTC)
    await _traffic(api, now)
    r = await api.get(f"{URL}/metrics/volume", params={"windowMinutes": 6 * 60})
    assert r.status_code == 200, r.text
    assert (r.json()["value"], r.json()["samples"]) == (15.0, 15)
    r = await api.get(f"{URL}/metrics/error_rate", params={"windowMinutes": 6 * 60})
    assert r.json()["value"] == pytest.approx(2 / 15, abs=1e-5)
    r = await api.get(f"{URL}/metrics/online_eval_pass_rate", params={"windowMinutes": 60})
    assert (r.json()["value"], r.json()["samples"]) == (None, 0)

    me = (await api.get("/api/v1/auth/me")).json()
    async with api.app.state.runtime.db.transaction() as session:
        found = await service.metric_value(
            session,
            me["projectId"],
            prompt_name=PROMPT,
            label="production",
            metric="latency_p95_ms",
            window=timedelta(hours=2),
            now=now,
        )
        assert found is not None and found.samples == 5 and 640 <= found.value <= 1280
        cost = await service.metric_value(
            session,
            me["projectId"],
            prompt_name=PROMPT,
            label=None,
            metric="cost_usd",
            window=timedelta(hours=6),
            now=now,
        )
        assert cost is not None and cost.value == pytest.approx(0.01 + 0.02 + 0.004) and cost.samples == 19
        feedback = await service.metric_value(
            session,
            me["projectId"],
            prompt_name=PROMPT,
            label="production",
            metric="feedback_mean",
            window=timedelta(hours=1),
            now=now + timedelta(minutes=1),
        )
        assert feedback is not None and (feedback.value, feedback.samples) == (3.0, 2)
        quiet = await service.metric_value(
            session,
            me["projectId"],
            prompt_name=PROMPT,
            label="production",
            metric="error_rate",
            window=timedelta(hours=1),
            now=now - timedelta(days=3),
        )
        assert quiet is None


async def test_bad_requests(api: Api) -> None:
    await prompt_with_versions(api)
    cases = [
        (URL, {"bucket": "week"}, 422, None),
        (URL, {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422, "invalid_range"),
        (URL, {"from": "2020-01-01T00:00:00Z", "to": "2020-03-01T00:00:00Z"}, 422, "too_many_buckets"),
        (URL, {"label": "latest"}, 422, "bad_label"),
        ("/api/v1/monitoring/prompts/nope/x", {}, 404, "prompt_not_found"),
        (f"{URL}/metrics/happiness", {}, 422, None),
        (f"{URL}/metrics/volume", {"windowMinutes": 0}, 422, None),
        (f"{URL}/drift", {"alpha": 0.9}, 422, None),
        (f"{URL}/drift", {"windowMinutes": 10**9}, 422, None),
    ]
    for url, params, status, code in cases:
        r = await api.get(url, params=params)
        assert r.status_code == status, (url, params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if code:
            assert r.json()["code"] == code, r.text


async def test_permissions_and_tenancy(api: Api) -> None:
    await prompt_with_versions(api)
    viewer = await api.make_key("Viewer")
    assert (await api.get(URL, viewer["key"])).status_code == 200
    assert (await api.get(f"{URL}/drift", viewer["key"])).status_code == 200
    r = await api.put(
        "/api/v1/monitoring/online-evals/configs",
        viewer["key"],
        json={"sampleRate": 1, "scorers": [{"type": "max-length", "value": 10}]},
    )
    assert r.status_code == 403
    other = await make_project_b(api)
    r = await api.get(URL, other["key"])
    assert r.status_code == 404 and r.json()["code"] == "prompt_not_found"
    assert (await api.get(URL, None)).status_code == 401
