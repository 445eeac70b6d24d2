"""``POST /api/v1/runs/batch`` on SQLite and PostgreSQL: runs made elsewhere (SDK traces) are stored with
source ``sdk``, idempotently by client id, in one transaction, scoped to the caller's project, audited and
counted by the dashboards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.app import Api
from tests.support.feedback_support import audit_events
from tests.support.tenancy import make_project_b

BATCH = "/api/v1/runs/batch"
EXAMPLE = "sentiment/few-shot"


def run_id(n: int) -> str:
    return f"run_sdktest{n:06d}abcdefghijkl"


async def example_version(api: Api, number: int = 1) -> dict[str, Any]:
    r = await api.get(f"/api/v1/prompts/{EXAMPLE}", params={"version": number})
    assert r.status_code == 200, r.text
    return dict(r.json()["version"])


async def sdk_runs(api: Api, key: str | None = None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {} if key is None else {"key": key}
    r = await api.get("/api/v1/runs", params={"source": "sdk", "limit": 200}, **kwargs)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_batch_records_runs_with_attribution_cost_and_audit(api: Api) -> None:
    version = await example_version(api)
    created = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    body = {
        "runs": [
            {
                "id": run_id(1),
                "prompt": EXAMPLE,
                "version": 1,
                "provider": "openai",
                "model": "gpt-4o-mini",
                "params": {"temperature": 0.2},
                "input": {"messages": [{"role": "user", "content": "Review: great"}]},
                "output": "positive",
                "finishReason": "stop",
                "inputTokens": 1000,
                "outputTokens": 500,
                "latencyMs": 120.5,
                "ttftMs": 40.0,
                "traceId": "checkout-1",
                "createdAt": created.isoformat(),
            },
            {"id": run_id(2), "versionId": version["id"], "model": "my-model", "costUsd": 0.25},
            {"model": "other", "status": "error", "errorClass": "Timeout", "errorMessage": "took too long"},
        ]
    }
    r = await api.post(BATCH, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["accepted"] == 3 and answer["duplicates"] == 0
    assert answer["runIds"][:2] == [run_id(1), run_id(2)] and answer["runIds"][2].startswith("run_")

    stored = {run["id"]: run for run in await sdk_runs(api)}
    assert set(stored) == set(answer["runIds"])
    first = stored[run_id(1)]
    assert first["promptId"] == version["promptId"] and first["versionId"] == version["id"]
    assert first["source"] == "sdk" and first["provider"] == "openai" and first["providerType"] == "openai"
    assert first["actorId"].startswith("key_") and first["traceId"] == "checkout-1"
    assert first["input"] == {"messages": [{"role": "user", "content": "Review: great"}]}
    assert first["output"] == "positive" and first["ttftMs"] == 40.0 and first["status"] == "ok"
    # priced from the catalog: gpt-4o-mini costs 0.15 / 0.6 USD per million input / output tokens
    assert abs(first["costUsd"] - (1000 * 0.15 + 500 * 0.6) / 1e6) < 1e-12
    assert datetime.fromisoformat(first["createdAt"]) == created
    second = stored[run_id(2)]
    assert second["versionId"] == version["id"] and second["costUsd"] == 0.25
    assert second["provider"] == "sdk" and second["providerType"] == "sdk"
    third = stored[answer["runIds"][2]]
    assert third["promptId"] is None and third["status"] == "error" and third["costUsd"] == 0.0
    assert third["errorClass"] == "Timeout" and third["errorMessage"] == "took too long"

    events = await audit_events(api, "RunsIngested")
    assert len(events) == 1
    assert events[0]["data"]["count"] == 3 and events[0]["data"]["promptIds"] == [version["promptId"]]


async def test_a_retried_batch_counts_duplicates_and_writes_nothing_twice(api: Api) -> None:
    body = {"runs": [{"id": run_id(n), "model": "m", "inputTokens": 3} for n in range(3)]}
    r = await api.post(BATCH, json=body)
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    r = await api.post(BATCH, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 0, "duplicates": 3, "runIds": [run_id(n) for n in range(3)]}
    # a batch half new, with an id twice in the same batch
    body = {"runs": [{"id": run_id(n), "model": "m"} for n in (2, 3, 3)]}
    r = await api.post(BATCH, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["duplicates"] == 2
    assert len(await sdk_runs(api)) == 4
    assert len(await audit_events(api, "RunsIngested")) == 2  # the all-duplicate retry changed nothing


async def test_a_bad_item_rejects_the_whole_batch_with_its_index(api: Api) -> None:
    ok = {"id": run_id(1), "model": "m"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"versionId": "ver_doesnotexist000000000000", "model": "m"}, 404, "version_not_found"),
        ({"prompt": "no/such-prompt", "version": 1, "model": "m"}, 404, "prompt_not_found"),
        ({"prompt": EXAMPLE, "version": 99, "model": "m"}, 404, "version_not_found"),
        ({"version": 1, "model": "m"}, 422, "validation_error"),
        (
            {"model": "m", "createdAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            422,
            "invalid_created_at",
        ),
        (
            {"model": "m", "createdAt": (datetime.now(UTC) - timedelta(days=31)).isoformat()},
            422,
            "invalid_created_at",
        ),
    ]
    for bad, status, code in cases:
        r = await api.post(BATCH, json={"runs": [ok, bad]})
        assert r.status_code == status, r.text
        assert r.json()["code"] == code and r.json()["index"] == 1, r.text
    # request validation: the item's position is in the error's loc
    for bad in (
        {"id": "run_short", "model": "m"},
        {"id": "prm_0123456789abcdef", "model": "m"},
        {"model": ""},
        {"model": "m", "status": "maybe"},
        {"model": "m", "input": {"text": "not a run input"}},
        {"model": "m", "inputTokens": -1},
        {"model": "m", "errorMessage": "x" * 2001},
        {"model": "m", "unknownField": 1},
    ):
        r = await api.post(BATCH, json={"runs": [ok, bad]})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] == "validation_error"
        assert any(
            [str(part) for part in e["loc"][:3]] == ["body", "runs", "1"] for e in r.json()["errors"]
        ), r.text
    for body in ({"runs": []}, {"runs": [{"model": "m"}] * 501}):
        r = await api.post(BATCH, json=body)
        assert r.status_code == 422, r.text
    r = await api.post(BATCH, json={"runs": [{"model": "m", "output": "x" * 1_100_000}]})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert await sdk_runs(api) == []  # nothing of any rejected batch was written
    assert await audit_events(api, "RunsIngested") == []


async def test_recording_runs_needs_run_write(api: Api) -> None:
    viewer = await api.make_key("Viewer")
    r = await api.post(BATCH, viewer["key"], json={"runs": [{"model": "m"}]})
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert r.json()["permission"] == "run:write"
    r = await api.post(BATCH, None, json={"runs": [{"model": "m"}]})
    assert r.status_code == 401
    engineer = await api.make_key("PromptEngineer")
    r = await api.post(BATCH, engineer["key"], json={"runs": [{"model": "m"}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    assert (await sdk_runs(api))[0]["actorId"] == engineer["id"]


async def test_projects_cannot_attach_runs_to_each_others_versions_or_ids(api: Api) -> None:
    b = await make_project_b(api)
    a_version = await example_version(api)
    for bad in (
        {"versionId": a_version["id"], "model": "m"},
        {"prompt": a_version["promptId"], "model": "m"},
        {"prompt": EXAMPLE, "version": 1, "model": "m"},
    ):
        r = await api.post(BATCH, b["key"], json={"runs": [bad]})
        assert r.status_code == 404, r.text
        assert r.json()["code"] in ("version_not_found", "prompt_not_found")
        assert r.json()["index"] == 0
        if "versionId" in bad:
            assert EXAMPLE not in r.text and a_version["promptId"] not in r.text
    # B's own version attaches
    r = await api.post(BATCH, b["key"], json={"runs": [{"versionId": b["version_id"], "model": "m"}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    # an id A already used: answered like a duplicate, A's run untouched, nothing of it shown to B
    r = await api.post(BATCH, json={"runs": [{"id": run_id(7), "model": "a-model", "output": "A's secret"}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = await api.post(BATCH, b["key"], json={"runs": [{"id": run_id(7), "model": "b-model"}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 0, "duplicates": 1, "runIds": [run_id(7)]}
    assert "secret" not in r.text
    r = await api.get(f"/api/v1/runs/{run_id(7)}", b["key"])
    assert r.status_code == 404
    assert [run["model"] for run in await sdk_runs(api)] == ["a-model"]
    assert [run["versionId"] for run in await sdk_runs(api, b["key"])] == [b["version_id"]]


async def test_dashboards_count_ingested_runs(api: Api) -> None:
    now = datetime.now(UTC)
    runs = [
        {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 100.0, "inputTokens": 10},
        {"model": "gpt-4o-mini", "provider": "openai", "latencyMs": 300.0, "status": "error"},
    ]
    r = await api.post(BATCH, json={"runs": runs})
    assert r.status_code == 200, r.text
    window = {
        "from": (now - timedelta(hours=2)).isoformat(),
        "to": (now + timedelta(hours=2)).isoformat(),
        "bucket": "hour",
        "groupBy": "source",
    }
    r = await api.get("/api/v1/analytics/usage", params=window)
    assert r.status_code == 200, r.text
    body = r.json()
    sdk = [k for k in body["keys"] if k["label"] == "sdk"]
    assert sdk, body["keys"]
    assert body["totals"]["runs"] == 2 and body["totals"]["errors"] == 1
    assert body["totals"]["inputTokens"] == 10
