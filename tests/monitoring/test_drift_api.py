"""Drift over REST and through the service the alerts feature calls: a known shift between a baseline and a
current window is flagged with the runs to review; the same traffic in both windows is not (both databases)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from promptops.monitoring import service
from tests.monitoring.support import PROMPT, hours_ago, ingest, prompt_with_versions, sdk_run
from tests.support.app import Api

STEADY = "mon/steady"


def traffic(
    rng: random.Random, name: str, start: datetime, hours: float, n: int, *, shifted: bool
) -> list[dict]:
    runs = []
    for _ in range(n):
        at = start + timedelta(hours=rng.random() * hours)
        if shifted and rng.random() < 0.6:
            output, latency = "I'm sorry, I can't help with that.", rng.uniform(500, 900)
        else:
            output, latency = rng.choice(["positive", "negative", "neutral"]), rng.uniform(150, 300)
        runs.append(sdk_run(1, name=name, at=at, output=output, latencyMs=latency))
    return runs


async def test_known_shift_is_flagged_and_steady_traffic_is_not(api: Api) -> None:
    rng = random.Random(4)
    now = datetime.now(UTC)
    await prompt_with_versions(api, versions=1)
    await prompt_with_versions(api, name=STEADY, versions=1)
    baseline_start, current_start = hours_ago(26, now), hours_ago(1.8, now)
    runs = traffic(rng, PROMPT, baseline_start, 23, 300, shifted=False)
    runs += traffic(rng, STEADY, baseline_start, 23, 300, shifted=False)
    current = traffic(rng, PROMPT, current_start, 1.7, 200, shifted=True)
    runs += traffic(rng, STEADY, current_start, 1.7, 200, shifted=False)
    ids = await ingest(api, runs + current)
    current_ids = set(ids[-200:])
    # the label moved when the prompts were made (just now): the windows end after that
    now = datetime.now(UTC)

    params = {"windowMinutes": 120, "baselineMinutes": 24 * 60, "to": now.isoformat()}
    r = await api.get(f"/api/v1/monitoring/prompts/{PROMPT}/drift", params=params)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["drifted"] is True and report["label"] == "production"
    assert report["current"]["runs"] == 200 and report["baseline"]["runs"] == 300
    signals = {s["name"]: s for s in report["signals"]}
    assert signals["refusal_rate"]["drifted"] and signals["refusal_rate"]["currentValue"] > 0.4
    assert signals["output_label_chi2"]["drifted"] and signals["latency_change"]["drifted"]
    assert not signals["input_length"]["drifted"]
    assert 0 < len(report["runIds"]) <= 200 and set(report["runIds"]) <= current_ids
    assert {s["name"] for s in report["skipped"]} >= {"online_score"}  # no online scores in either window

    r = await api.get(f"/api/v1/monitoring/prompts/{STEADY}/drift", params=params)
    steady = r.json()
    assert steady["drifted"] is False and steady["runIds"] == [], [
        s for s in steady["signals"] if s["drifted"]
    ]

    me = (await api.get("/api/v1/auth/me")).json()
    async with api.app.state.runtime.db.transaction() as session:
        found = await service.drift_check(
            session,
            me["projectId"],
            prompt_name=PROMPT,
            label=None,
            window=timedelta(hours=2),
            baseline=timedelta(hours=24),
            now=now,
        )
    assert found.drifted and set(found.run_ids) <= current_ids
    assert {s.name for s in found.signals} >= {"refusal_rate", "output_length", "cost_change"}
    quiet = await _empty_report(api, me["projectId"], now)
    assert quiet.drifted is False and quiet.signals == [] and quiet.run_ids == []


async def _empty_report(api: Api, project_id: str, now: datetime) -> service.DriftReport:
    async with api.app.state.runtime.db.transaction() as session:
        return await service.drift_check(
            session,
            project_id,
            prompt_name=PROMPT,
            label="production",
            window=timedelta(hours=1),
            baseline=timedelta(hours=1),
            now=now - timedelta(days=20),
        )
