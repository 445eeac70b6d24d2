"""Helpers for the monitoring tests: a prompt with versions on production, SDK traffic, waiting for scoring."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from promptops.jobs import periodic
from tests.support.app import ADMIN_KEY, Api

PROMPT = "mon/triage"


async def prompt_with_versions(api: Api, name: str = PROMPT, versions: int = 2) -> list[dict[str, Any]]:
    """A prompt with ``versions`` versions; production points at version 1."""
    r = await api.post(
        "/api/v1/prompts", json={"name": name, "template": "Classify: {{ text }}", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    made = [r.json()["version"]]
    for n in range(2, versions + 1):
        r = await api.post(
            f"/api/v1/prompts/{name}/versions", json={"template": f"Classify v{n}: {{{{ text }}}}"}
        )
        assert r.status_code == 201, r.text
        made.append(r.json()["version"])
    return made


async def move_label(api: Api, version: int, name: str = PROMPT, label: str = "production") -> None:
    r = await api.put(f"/api/v1/prompts/{name}/labels/{label}", json={"version": version})
    assert r.status_code == 200, r.text


def sdk_run(version: int, *, at: datetime | None = None, name: str = PROMPT, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": name,
        "version": version,
        "provider": "openai",
        "model": "gpt-test",
        "input": {"prompt": fields.pop("input_text", "Classify: the parcel arrived late")},
        "output": "negative",
        "inputTokens": 20,
        "outputTokens": 2,
        "costUsd": 0.001,
        "latencyMs": 100.0,
    }
    if at is not None:
        body["createdAt"] = at.isoformat()
    body.update(fields)
    return body


async def ingest(api: Api, runs: list[dict[str, Any]], key: str = ADMIN_KEY) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(runs), 500):
        r = await api.post("/api/v1/runs/batch", key, json={"runs": runs[start : start + 500]})
        assert r.status_code == 200, r.text
        ids.extend(r.json()["runIds"])
    return ids


def hours_ago(hours: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=hours)


async def sample_now(api: Api) -> None:
    """One sampler round as the scheduler would run it, then wait for the scoring job to finish."""
    await periodic.run_now(api.app.state.runtime, "monitoring.online-sample")
    await wait_scored(api)


async def wait_scored(api: Api, attempts: int = 400) -> None:
    for _ in range(attempts):
        r = await api.get("/api/v1/monitoring/online-evals/samples", params={"status": "pending", "limit": 1})
        assert r.status_code == 200, r.text
        if not r.json()["items"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("online-evaluation samples still pending")
