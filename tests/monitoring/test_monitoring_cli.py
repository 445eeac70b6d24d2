"""``promptops monitor`` against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.monitoring.support import sdk_run
from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer

PROMPT = "mon/cli"


def test_monitor_commands(server: LiveServer, cli: Cli) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    now = datetime.now(UTC)
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        r = http.post(
            "/api/v1/prompts", json={"name": PROMPT, "template": "Classify {{ x }}", "labels": ["production"]}
        )
        assert r.status_code == 201, r.text
        runs = [
            sdk_run(
                1, name=PROMPT, at=now - timedelta(hours=2, minutes=i), output=("positive", "negative")[i % 2]
            )
            for i in range(40)
        ]
        runs += [
            sdk_run(1, name=PROMPT, at=now - timedelta(minutes=30), status="error", output=None)
            for _ in range(2)
        ]
        r = http.post("/api/v1/runs/batch", json={"runs": runs})
        assert r.status_code == 200, r.text

    shown = cli.ok(
        "monitor", "show", PROMPT, "--bucket", "hour", "--from", (now - timedelta(hours=5)).isoformat()
    )
    assert "v1" in shown.stdout and "42" in shown.stdout
    body = cli.json("monitor", "show", PROMPT, "--label", "*")
    assert body["totals"]["runs"] == 42 and body["label"] is None

    volume = cli.json("monitor", "metric", PROMPT, "volume", "--window", "300")
    assert (volume["value"], volume["samples"]) == (42.0, 42)
    errors = cli.ok("monitor", "metric", PROMPT, "error_rate", "--window", "300")
    assert "error_rate = 0.047619" in errors.stdout
    bad = cli.fails("monitor", "metric", PROMPT, "happiness")
    assert "metric" in bad.stderr and "online_eval_pass_rate" in bad.stderr

    steady = cli.ok("monitor", "drift", PROMPT, "--window", "60", "--baseline", "300")
    assert "no drift" in steady.stdout and "output_label_chi2" in steady.stdout

    made = cli.json(
        "monitor", "online", "set", "--prompt", PROMPT, "--rate", "0.25", "--scorer", "max-length=50"
    )
    assert made["sampleRate"] == 0.25 and made["scorers"] == [
        {"type": "max-length", "value": 50, "weight": 1.0, "negate": False, "options": {}}
    ]
    listed = cli.ok("monitor", "online", "list")
    assert made["id"] in listed.stdout and "mon/cli" in listed.stdout and "max-length" in listed.stdout
    refused = cli.fails("monitor", "online", "set", "--rate", "1", "--scorer", "equals")
    assert (
        "invalid_scorer" in refused.stdout + refused.stderr
        or "value is required" in refused.stdout + refused.stderr
    )
    samples = cli.json("monitor", "online", "samples")
    assert samples["items"] == []
    cli.ok("monitor", "online", "delete", made["id"])
    assert cli.json("monitor", "online", "list")["items"] == []
