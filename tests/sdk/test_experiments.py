"""The SDK in a live experiment, against a real server (SQLite and PostgreSQL): ``get_prompt(..., unit=)`` gets
the unit's sticky arm, the cache never serves one unit's arm to another, a label without an experiment is
fetched once for every unit, and traces of the prompt carry the experiment and arm."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from promptops_sdk import AsyncPromptOps, PromptOps, PromptOpsError

from tests.sdk.support import client, create_prompt, sdk_runs
from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess

NAME = "sdk/exp"


def arm_of(server: ServerProcess, unit: str, name: str = NAME) -> dict[str, Any]:
    body = server.call("GET", f"/api/v1/prompts/{name}", params={"label": "production", "unit": unit})
    return dict(body)


def experiment(server: ServerProcess) -> str:
    create_prompt(server, name=NAME, template="v1 {{ x }}", labels=["production"])
    server.call("POST", f"/api/v1/prompts/{NAME}/versions", json={"template": "v2 {{ x }}"})
    created = server.call(
        "POST",
        "/api/v1/experiments",
        json={
            "name": "sdk",
            "prompt": NAME,
            "arms": [{"version": 1}, {"version": 2, "name": "big", "model": "gpt-4o"}],
        },
    )
    server.call("POST", f"/api/v1/experiments/{created['id']}/start")
    return str(created["id"])


def test_units_get_their_own_arms(served: ServerProcess, po: PromptOps) -> None:
    exp_id = experiment(served)
    units = [f"user-{i}" for i in range(30)]
    got = {unit: po.get_prompt(NAME, label="production", unit=unit) for unit in units}
    for unit, prompt in got.items():
        expected = arm_of(served, unit)
        assert prompt.experiment == exp_id and prompt.unit == unit
        assert prompt.arm == expected["experiment"]["arm"]
        assert prompt.version == expected["version"]["version"]
        assert prompt.render(x="!") == f"v{prompt.version} !"
        if prompt.arm == "big":
            assert prompt.model_config["model"] == "gpt-4o"
    assert {p.arm for p in got.values()} == {"control", "big"}

    # cached per unit: no request for a unit seen, and each unit keeps its own arm
    requests = po.stats.http_requests
    for unit in units:
        assert po.get_prompt(NAME, label="production", unit=unit).arm == got[unit].arm
    assert po.stats.http_requests == requests
    # without a unit, the label's own version (no experiment); a pinned version ignores the unit
    plain = po.get_prompt(NAME, label="production")
    assert plain.experiment is None and plain.version == 1
    assert po.get_prompt(NAME, version=2, unit="user-1").experiment is None

    # traces of the prompt carry the experiment and its arm
    for unit in units[:6]:
        with po.trace(prompt=got[unit], input="hi") as t:
            t.record(output="ok", model="m")
    assert po.flush()
    runs = sdk_runs(served)
    assert len(runs) == 6
    assert {(r["experimentId"], r["experimentArm"]) for r in runs} == {
        (exp_id, got[u].arm) for u in units[:6]
    }
    found = served.call("GET", f"/api/v1/experiments/{exp_id}/results")
    latency = next(m for m in found["metrics"] if m["name"] == "run.latency_ms")
    assert sum(a["n"] for a in latency["arms"]) == 6

    with pytest.raises(PromptOpsError):
        po.get_prompt(NAME, label="production", unit="")


def test_a_label_without_experiment_is_fetched_once(served: ServerProcess, tmp_path: Path) -> None:
    create_prompt(served, name="sdk/plain", template="plain", labels=["production"])
    with client(served, tmp_path, cache_ttl=60) as po:
        first = po.get_prompt("sdk/plain", label="production", unit="a")
        assert first.experiment is None and first.version == 1
        requests = po.stats.http_requests
        for unit in ("b", "c", "d"):
            assert po.get_prompt("sdk/plain", label="production", unit=unit).version == 1
        assert po.get_prompt("sdk/plain", label="production").version == 1
        assert po.stats.http_requests == requests
    # a short TTL: once it passed, a unit asks the server again and sees an experiment started meanwhile
    with client(served, tmp_path, cache_ttl=0.2) as po:
        assert po.get_prompt("sdk/plain", label="production", unit="a").experiment is None
        served.call("POST", "/api/v1/prompts/sdk/plain/versions", json={"template": "plain 2"})
        exp = served.call(
            "POST",
            "/api/v1/experiments",
            json={"name": "late", "prompt": "sdk/plain", "arms": [{"version": 1}, {"version": 2}]},
        )
        served.call("POST", f"/api/v1/experiments/{exp['id']}/start")
        time.sleep(0.4)  # the client's TTL (the server dropped its own cache when the experiment started)
        found = po.get_prompt("sdk/plain", label="production", unit="a")
        assert found.experiment == exp["id"]


def test_async_client_units(served: ServerProcess, tmp_path: Path) -> None:
    exp_id = experiment(served)

    async def main() -> dict[str, str | None]:
        async with AsyncPromptOps(served.url, ADMIN_KEY, cache_dir=tmp_path / "c") as po:
            found = await asyncio.gather(
                *(po.get_prompt(NAME, label="production", unit=f"a-{i}") for i in range(12))
            )
            assert all(p.experiment == exp_id for p in found)
            return {p.unit or "": p.arm for p in found}

    arms = asyncio.run(main())
    for unit, arm in arms.items():
        assert arm_of(served, unit)["experiment"]["arm"] == arm
