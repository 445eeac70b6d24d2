"""The gateway in a live experiment, through the official ``openai`` client against a real fake upstream, on
SQLite and PostgreSQL: a call that names a prompt by label with a unit (``X-PromptOps-Unit``, else the OpenAI
``user`` field) is served the unit's arm (the same arm the resolve endpoint gives; an arm's model override goes
upstream), answers with ``x-promptops-experiment``, and its run carries the experiment, the arm and the arm's
version, so the results count it per arm."""

from __future__ import annotations

from pathlib import Path

from tests.experiments.support import (
    PROMPT,
    create_experiment,
    metric,
    prompt_with_versions,
    resolve,
    results,
    start,
)
from tests.gateway.support import gateway_app, gateway_runs, openai_client
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_gateway_serves_the_units_arm(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        versions = await prompt_with_versions(api)
        exp = await create_experiment(
            api, arms=[{"version": 1}, {"version": 2, "name": "big", "model": "fake/gpt-4o"}]
        )
        await start(api, exp["id"])
        client = openai_client(api)
        served: dict[str, str] = {}
        for i in range(16):
            unit = f"gw-{i}"
            raw = await client.chat.completions.with_raw_response.create(
                model="fake/gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"X-PromptOps-Prompt": f"{PROMPT}@production", "X-PromptOps-Unit": unit},
            )
            experiment_id, arm = raw.headers["x-promptops-experiment"].split("/")
            assert experiment_id == exp["id"]
            served[unit] = arm
            sent = fake.requests_to("/chat/completions")[-1].body["model"]
            assert sent == ("gpt-4o" if arm == "big" else "gpt-4o-mini")
        assert set(served.values()) == {"control", "big"}
        # the OpenAI "user" field is the unit when no header names one; the same arm as the resolve endpoint
        for unit in list(served)[:6]:
            raw = await client.chat.completions.with_raw_response.create(
                model="fake/gpt-4o-mini",
                messages=MESSAGES,
                user=unit,
                extra_headers={"X-PromptOps-Prompt": f"{PROMPT}@production"},
            )
            assert raw.headers["x-promptops-experiment"] == f"{exp['id']}/{served[unit]}"
            assert (await resolve(api, unit))["experiment"]["arm"] == served[unit]
        # no unit, or a pinned version: no experiment
        raw = await client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"X-PromptOps-Prompt": f"{PROMPT}@production"},
        )
        assert "x-promptops-experiment" not in raw.headers
        raw = await client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"X-PromptOps-Prompt": f"{PROMPT}@2", "X-PromptOps-Unit": "gw-0"},
        )
        assert "x-promptops-experiment" not in raw.headers

        runs = await gateway_runs(api)
        tagged = [r for r in runs if r.experiment_id]
        assert len(tagged) == 22
        version_of = {"control": versions[0]["id"], "big": versions[1]["id"]}
        for run in tagged:
            assert run.experiment_id == exp["id"] and run.version_id == version_of[run.experiment_arm]
            assert run.model == ("gpt-4o" if run.experiment_arm == "big" else "gpt-4o-mini")
        untagged = [r for r in runs if not r.experiment_id]
        assert [r.version_id for r in untagged] == [versions[0]["id"], versions[1]["id"]]

        found = await results(api, exp["id"])
        assert found["exposures"] == 16
        latency = {a["arm"]: a["n"] for a in metric(found, "run.latency_ms")["arms"]}
        per_arm = {arm: sum(1 for r in tagged if r.experiment_arm == arm) for arm in ("control", "big")}
        # untagged calls of a version only one arm serves, made during the experiment, count for that arm too
        assert latency == {"control": per_arm["control"] + 1, "big": per_arm["big"] + 1}
