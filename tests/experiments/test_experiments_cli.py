"""``promptops experiments`` against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer

PROMPT = "exp/cli"


def test_experiment_commands(server: LiveServer, cli: Cli) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        r = http.post("/api/v1/prompts", json={"name": PROMPT, "template": "v1", "labels": ["production"]})
        assert r.status_code == 201, r.text
        r = http.post(f"/api/v1/prompts/{PROMPT}/versions", json={"template": "v2"})
        assert r.status_code == 201, r.text

        created = cli.json(
            "experiments",
            "create",
            PROMPT,
            "--arm",
            "1",
            "--arm",
            "new=2:3",
            "--metric",
            "signup",
            "--name",
            "cli test",
        )
        exp_id = created["id"]
        assert created["status"] == "draft" and [a["name"] for a in created["arms"]] == ["control", "new"]
        assert [a["weight"] for a in created["arms"]] == [1.0, 3.0]
        assert [m["name"] for m in created["metrics"]][:3] == ["signup", "error", "latency_ms"]

        started = cli.ok("experiments", "start", exp_id)
        assert "is running" in started.stdout
        listed = cli.ok("experiments", "list", "--prompt", PROMPT)
        assert exp_id in listed.stdout and "running" in listed.stdout

        units = {}
        for i in range(60):
            body = http.get(
                f"/api/v1/prompts/{PROMPT}", params={"label": "production", "unit": f"c-{i}"}
            ).json()
            units[f"c-{i}"] = body["experiment"]["arm"]
        events = [
            {"unit": u, "metric": "signup", "value": 1 if arm == "new" else 0} for u, arm in units.items()
        ]
        r = http.post(f"/api/v1/experiments/{exp_id}/events", json={"events": events})
        assert r.status_code == 200, r.text

        table = cli.ok("experiments", "results", exp_id).stdout
        assert "signup" in table and "always-valid CI" in table and "Sample ratio" in table
        found = cli.json("experiments", "results", exp_id)
        assert found["exposures"] == 60

        shown = cli.ok("experiments", "show", exp_id).stdout
        assert "cli test" in shown and "control" in shown
        assert "is paused" in cli.ok("experiments", "pause", exp_id, "--reason", "look").stdout
        assert "is running" in cli.ok("experiments", "resume", exp_id).stdout
        shipped = cli.ok("experiments", "ship", exp_id, "new", "--reason", "more signups")
        assert "Shipped arm new" in shipped.stdout
        assert http.get(f"/api/v1/prompts/{PROMPT}@production").json()["version"]["version"] == 2

        failed = cli.fails("experiments", "stop", exp_id)
        assert "invalid_experiment_state" in failed.stderr or "shipped" in failed.stderr
        bad = cli.run("experiments", "create", PROMPT, "--arm", "x:y")
        assert bad.exit_code != 0 and "VERSION" in bad.stderr
        one = cli.fails("experiments", "create", PROMPT, "--arm", "1")
        assert "arms" in one.stderr


def test_bandit_commands(server: LiveServer, cli: Cli) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    name = "exp/cli-bandit"
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        r = http.post("/api/v1/prompts", json={"name": name, "template": "v1", "labels": ["production"]})
        assert r.status_code == 201, r.text
        r = http.post(f"/api/v1/prompts/{name}/versions", json={"template": "v2"})
        assert r.status_code == 201, r.text
        created = cli.json(
            "experiments",
            "create",
            name,
            "--arm",
            "1",
            "--arm",
            "2",
            "--bandit",
            "--interval",
            "120",
            "--start",
        )
        exp_id = created["id"]
        assert created["mode"] == "bandit" and created["bandit"]["intervalSeconds"] == 120
        assert "Mode" in cli.ok("experiments", "show", exp_id).stdout
        events = []
        for i in range(80):
            body = http.get(
                f"/api/v1/prompts/{name}", params={"label": "production", "unit": f"k-{i}"}
            ).json()
            events.append(
                {"unit": f"k-{i}", "metric": "conversion", "value": int(body["experiment"]["arm"] == "b")}
            )
        r = http.post(f"/api/v1/experiments/{exp_id}/events", json={"events": events})
        assert r.status_code == 200, r.text

        moved = cli.ok("experiments", "reallocate", exp_id).stdout
        assert f"Allocation 1 of {exp_id}" in moved
        assert re.search(r"\bb (9\d|100)\.\d%", moved), moved  # b gets (nearly) everything
        table = cli.ok("experiments", "results", exp_id).stdout
        assert "Allocation over time" in table and "Regret" in table and "Best arm" in table
        assert cli.json("experiments", "results", exp_id)["bandit"]["bestArm"] == "b"
        failed = cli.fails("experiments", "create", name, "--arm", "1", "--arm", "2", "--floor", "0.9")
        assert "floor" in failed.stderr
