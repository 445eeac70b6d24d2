"""Sticky assignment across replicas and restarts: two ``promptops serve`` processes on one database give every
unit the same arm, and so does a process started again after a kill; exposures from both are counted once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess

PROMPT = "exp/replicas"
SECRET = "test-master-secret-for-two-replicas-0123456789"


def _arms(server: ServerProcess, units: list[str]) -> dict[str, str]:
    found = {}
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as http:
        for unit in units:
            r = http.get(f"/api/v1/prompts/{PROMPT}", params={"label": "production", "unit": unit})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            found[unit] = body["experiment"]["arm"]
            assert body["version"]["version"] == {"control": 1, "b": 2, "c": 3}[found[unit]]
    return found


def test_two_processes_and_a_restart_agree(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ServerProcess(db_url, tmp_path / "a")
    second = ServerProcess(db_url, tmp_path / "b")
    for server in (first, second):
        server.env["PROMPTOPS_SECRET_KEY"] = SECRET  # one installation: the same master secret
    try:
        first.start()
        first.call(
            "POST", "/api/v1/prompts", json={"name": PROMPT, "template": "v1", "labels": ["production"]}
        )
        for n in (2, 3):
            first.call("POST", f"/api/v1/prompts/{PROMPT}/versions", json={"template": f"v{n}"})
        exp = first.call(
            "POST",
            "/api/v1/experiments",
            json={
                "name": "replicas",
                "prompt": PROMPT,
                "arms": [{"version": 1}, {"version": 2}, {"version": 3}],
            },
        )
        first.call("POST", f"/api/v1/experiments/{exp['id']}/start")
        second.start()

        units = [f"user-{i}" for i in range(150)]
        on_first = _arms(first, units)
        on_second = _arms(second, units)
        assert on_first == on_second
        assert set(on_first.values()) == {"control", "b", "c"}

        first.kill()  # a crash: its unwritten exposures may be lost, the assignment is not
        first.start()
        assert _arms(first, units) == on_first

        second.stop()  # a graceful stop writes what it holds
        results = first.call("GET", f"/api/v1/experiments/{exp['id']}/results")
        counts = {a["name"]: a["exposures"] for a in results["arms"]}
        expected = {arm: list(on_first.values()).count(arm) for arm in ("control", "b", "c")}
        assert counts == expected  # each unit once, however many processes saw it
    finally:
        first.stop()
        second.stop()
