"""Helpers for the experiment tests: a prompt with versions on production, experiments, traffic."""

from __future__ import annotations

from typing import Any

from tests.support.app import ADMIN_KEY, Api

PROMPT = "exp/greeting"


async def prompt_with_versions(api: Api, name: str = PROMPT, versions: int = 3) -> list[dict[str, Any]]:
    """A prompt with ``versions`` versions; production points at version 1."""
    r = await api.post(
        "/api/v1/prompts", json={"name": name, "template": "Hello {{ who }} v1", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    made = [r.json()["version"]]
    for n in range(2, versions + 1):
        r = await api.post(f"/api/v1/prompts/{name}/versions", json={"template": f"Hello {{{{ who }}}} v{n}"})
        assert r.status_code == 201, r.text
        made.append(r.json()["version"])
    return made


async def create_experiment(api: Api, key: str = ADMIN_KEY, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "greeting test",
        "prompt": PROMPT,
        "label": "production",
        "arms": [{"version": 1}, {"version": 2}],
    }
    body.update(overrides)
    r = await api.post("/api/v1/experiments", key, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def start(api: Api, experiment_id: str, key: str = ADMIN_KEY) -> dict[str, Any]:
    r = await api.post(f"/api/v1/experiments/{experiment_id}/start", key)
    assert r.status_code == 200, r.text
    return r.json()


async def resolve(api: Api, unit: str, name: str = PROMPT, **params: Any) -> dict[str, Any]:
    r = await api.get(f"/api/v1/prompts/{name}", params={"label": "production", "unit": unit, **params})
    assert r.status_code == 200, r.text
    return r.json()


async def events(
    api: Api, experiment_id: str, batch: list[dict[str, Any]], key: str = ADMIN_KEY
) -> dict[str, Any]:
    for start_at in range(0, len(batch), 1000):
        r = await api.post(
            f"/api/v1/experiments/{experiment_id}/events",
            key,
            json={"events": batch[start_at : start_at + 1000]},
        )
        assert r.status_code == 200, r.text
    return r.json()


async def results(api: Api, experiment_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/v1/experiments/{experiment_id}/results")
    assert r.status_code == 200, r.text
    return r.json()


def metric(found: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in found["metrics"] if m["name"] == name)
