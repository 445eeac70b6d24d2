"""``promptops alerts …`` and ``promptops eval schedule …`` against a live server whose scheduler loop runs
(the periodic tasks fire the schedule and send notifications by themselves), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.support import http_receiver, verify
from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer, running_server

PROMPT = "cli/alerts"


@pytest.fixture(name="server")
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(
        db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"], scheduler=True, scheduler_tick_seconds=0.2
    ) as live:
        yield live


def wait_for(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_alert_and_schedule_commands(server: LiveServer, cli: Cli) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http, http_receiver() as receiver:
        r = http.post(
            "/api/v1/prompts",
            json={
                "name": PROMPT,
                "template": "{{ text }}",
                "variables": [{"name": "text"}],
                "labels": ["production"],
            },
        )
        assert r.status_code == 201, r.text
        cases = [{"id": f"c{i}", "input": {"text": f"case {i}"}, "expected": f"case {i}"} for i in range(5)]
        r = http.post("/api/v1/datasets", json={"name": "cli/checks", "cases": cases})
        assert r.status_code == 201, r.text

        # a regression schedule, fired by the server's own scheduler after `run`
        made = cli.json(
            "eval",
            "schedule",
            "create",
            "nightly",
            "--prompt",
            PROMPT,
            "--dataset",
            "cli/checks",
            "--cron",
            "0 3 * * *",
            "--tz",
            "Europe/Riga",
            "--scorer",
            "contains",
            "--model",
            "echo/echo",
        )
        assert (
            made["cron"] == "0 3 * * *"
            and made["timezone"] == "Europe/Riga"
            and made["models"][0]["provider"] == "echo"
        )
        shown = cli.ok("eval", "schedule", "show", made["id"]).stdout
        assert "cli/checks@1" in shown and "contains" in shown
        assert made["id"] in cli.ok("eval", "schedule", "list", "--prompt", PROMPT).stdout
        assert "due now" in cli.ok("eval", "schedule", "run", made["id"]).stdout
        history = wait_for(
            lambda: [
                h
                for h in cli.json("eval", "schedule", "history", made["id"])["items"]
                if h["status"] == "baseline"
            ],
            timeout=90,
        )
        assert history[0]["version"] == 1 and history[0]["passRate"] == 1.0
        assert "baseline" in cli.ok("eval", "schedule", "history", made["id"]).stdout
        updated = cli.json("eval", "schedule", "update", made["id"], "--disable")
        assert updated["enabled"] is False and updated["nextRunAt"] is None
        bad = cli.fails(
            "eval",
            "schedule",
            "create",
            "bad",
            "--prompt",
            PROMPT,
            "--dataset",
            "cli/checks",
            "--cron",
            "* * * * *",
        )
        assert (
            "cron_too_frequent" in bad.stdout + bad.stderr
            or "at most every 5 minutes" in bad.stdout + bad.stderr
        )

        # a webhook channel: the secret is printed once; a test notification arrives signed
        out = cli.ok(
            "alerts", "channels", "create", "hook", "--type", "webhook", "--url", receiver.url
        ).stdout
        assert "Signing secret" in out
        secret = next(w for w in out.split() if w.startswith("whsec_") and "…" not in w)
        listed = cli.json("alerts", "channels", "list")
        assert [c["name"] for c in listed["items"]] == ["hook"] and listed["items"][0][
            "signingSecret"
        ] is None
        assert "queued" in cli.ok("alerts", "channels", "test", "hook").stdout
        sent = wait_for(
            lambda: [
                d
                for d in cli.json("alerts", "channels", "deliveries", "hook")["items"]
                if d["status"] == "sent"
            ]
        )
        assert sent[0]["event"] == "test" and verify(secret, receiver.requests[0])

        # a threshold rule on production errors, evaluated from the CLI
        runs = [
            {
                "prompt": PROMPT,
                "version": 1,
                "model": "m",
                "input": {"prompt": "x"},
                "status": "error",
                "errorClass": "Boom",
            }
            for _ in range(3)
        ] + [
            {"prompt": PROMPT, "version": 1, "model": "m", "input": {"prompt": "x"}, "output": "x"}
            for _ in range(2)
        ]
        assert http.post("/api/v1/runs/batch", json={"runs": runs}).status_code == 200
        rule = cli.json(
            "alerts",
            "rules",
            "create",
            "errors",
            "--kind",
            "threshold",
            "-p",
            PROMPT,
            "--metric",
            "error_rate",
            "--op",
            "gte",
            "--value",
            "0.5",
            "--window",
            "60",
            "--channel",
            "hook",
            "--severity",
            "critical",
        )
        assert rule["condition"]["metric"] == "error_rate" and rule["channels"][0]["name"] == "hook"
        assert "errors" in cli.ok("alerts", "rules", "list").stdout
        assert (
            "1 fired" in cli.ok("alerts", "rules", "evaluate", "errors").stdout
            or cli.json("alerts", "list")["items"]
        )
        alerts = cli.json("alerts", "list", "--status", "active")["items"]
        assert len(alerts) == 1 and alerts[0]["severity"] == "critical"
        alert_id = alerts[0]["id"]
        assert "error_rate" in cli.ok("alerts", "list").stdout
        assert "fired" in cli.ok("alerts", "show", alert_id).stdout
        assert "acknowledged" in cli.ok("alerts", "ack", alert_id, "--note", "on it").stdout
        review = cli.ok("alerts", "review", alert_id).stdout
        assert "Queued 3 item(s)" in review and "alert-" in review
        assert "resolved" in cli.ok("alerts", "resolve", alert_id, "--note", "fixed upstream").stdout
        detail = cli.json("alerts", "show", alert_id)
        assert detail["status"] == "resolved" and detail["resolution"] == "manual"
        wait_for(lambda: [r_ for r_ in receiver.requests if r_.json().get("event") == "resolved"])
        assert {r_.json()["event"] for r_ in receiver.requests} == {"test", "fired", "resolved"}
        assert all(verify(secret, r_) for r_ in receiver.requests)

        missing = cli.fails("alerts", "show", "alt_01m8xkegrj2vfj3sgzw3t4mhc1")
        assert "not found" in (missing.stdout + missing.stderr)
        assert "Deleted" in cli.ok("alerts", "rules", "delete", "errors").stdout
        assert "Deleted" in cli.ok("alerts", "channels", "delete", "hook").stdout
        assert "Deleted" in cli.ok("eval", "schedule", "delete", made["id"]).stdout
