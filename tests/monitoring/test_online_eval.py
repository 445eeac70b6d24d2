"""Online evaluation over REST: configs (audited, validated, permissioned), the sampler run as the scheduler
runs it, scoring by the job queue (rule scorers and an LLM judge on a real fake-provider server), the pass rate
in the monitoring charts, precedence of label / prompt / project configs (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from promptops.jobs import periodic
from promptops.monitoring import online
from tests.monitoring.support import PROMPT, ingest, prompt_with_versions, sample_now, sdk_run
from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.feedback_support import EXAMPLE, FAKE_TARGET, audit_events, make_run
from tests.support.tenancy import make_project_b

CONFIGS = "/api/v1/monitoring/online-evals/configs"
SAMPLES = "/api/v1/monitoring/online-evals/samples"
LABELS = {"type": "icontains-any", "value": ["positive", "negative", "neutral"]}


async def put(api: Api, body: dict[str, Any], status: int = 201, **kw: Any) -> dict[str, Any]:
    r = await api.put(CONFIGS, json=body, **kw)
    assert r.status_code == status, r.text
    return dict(r.json())


async def samples(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.get(SAMPLES, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def wait_for_lag() -> None:
    """Runs younger than the sampler's lag are left for the next round: let the ones just made age past it."""
    await asyncio.sleep(online.SCAN_LAG.total_seconds() + 0.2)


async def test_sampling_scoring_and_pass_rate(api: Api) -> None:
    await prompt_with_versions(api, versions=2)
    r = await api.post("/api/v1/prompts", json={"name": "mon/other", "template": "Other {{ x }}"})
    assert r.status_code == 201, r.text
    label_cfg = await put(
        api, {"prompt": PROMPT, "label": "production", "sampleRate": 1, "scorers": [LABELS]}
    )
    assert label_cfg["label"] == "production" and label_cfg["promptName"] == PROMPT
    default_cfg = await put(api, {"sampleRate": 0.5, "scorers": [{"type": "max-length", "value": 40}]})
    assert default_cfg["promptId"] is None
    # replacing answers 200 and keeps the id
    again = await put(api, {"sampleRate": 0.5, "scorers": [{"type": "max-length", "value": 30}]}, status=200)
    assert again["id"] == default_cfg["id"] and again["scorers"][0]["value"] == 30
    events = await audit_events(api, "OnlineEvalConfigured")
    assert len(events) == 3 and {e["data"]["sampleRate"] for e in events} == {1, 0.5}

    v1_good = [sdk_run(1, output="Negative") for _ in range(10)]
    v1_bad = [sdk_run(1, output="I do not know") for _ in range(10)]
    v1_errors = [sdk_run(1, status="error", output=None, errorClass="Timeout") for _ in range(3)]
    v2 = [sdk_run(2) for _ in range(4)]  # v2 does not serve production: neither config samples it
    other = [sdk_run(1, name="mon/other", output="short") for _ in range(60)]
    await ingest(api, v1_good + v1_bad + v1_errors + v2 + other)
    await wait_for_lag()
    await sample_now(api)

    mine = await samples(api, prompt=PROMPT)
    assert len(mine) == 20 and all(s["status"] == "done" for s in mine)
    assert sum(s["passed"] for s in mine) == 10
    assert all(s["configId"] == label_cfg["id"] for s in mine)
    others = await samples(api, prompt="mon/other")
    assert 15 <= len(others) <= 45 and all(s["passed"] for s in others)  # ~half of 60, deterministic

    # a second round samples nothing twice
    await periodic.run_now(api.app.state.runtime, online.SAMPLE_TASK)
    assert len(await samples(api, prompt=PROMPT)) == 20

    r = await api.get(f"/api/v1/monitoring/prompts/{PROMPT}")
    totals = r.json()["totals"]
    assert (totals["onlineScored"], totals["onlinePassed"], totals["onlineEvalPassRate"]) == (20, 10, 0.5)
    r = await api.get(f"/api/v1/monitoring/prompts/{PROMPT}/metrics/online_eval_pass_rate")
    assert (r.json()["value"], r.json()["samples"]) == (0.5, 20)

    # deleting a config is audited; its scored samples stay in the charts
    r = await api.delete(f"{CONFIGS}/{label_cfg['id']}")
    assert r.status_code == 204
    assert len(await audit_events(api, "OnlineEvalConfigDeleted")) == 1
    assert (await api.get(f"{CONFIGS}/{label_cfg['id']}")).json()["code"] == "online_eval_config_not_found"
    r = await api.get(f"/api/v1/monitoring/prompts/{PROMPT}")
    assert r.json()["totals"]["onlineScored"] == 20
    listed = (await api.get(CONFIGS)).json()["items"]
    assert [c["id"] for c in listed] == [default_cfg["id"]]


async def test_prompt_config_overrides_label_free_runs_only(api: Api) -> None:
    await prompt_with_versions(api, versions=2)
    await put(api, {"prompt": PROMPT, "sampleRate": 1, "scorers": [LABELS]})
    await put(
        api,
        {
            "prompt": PROMPT,
            "label": "production",
            "sampleRate": 1,
            "scorers": [{"type": "max-length", "value": 3}],
        },
    )
    await ingest(api, [sdk_run(1) for _ in range(3)] + [sdk_run(2) for _ in range(2)])
    await wait_for_lag()
    await sample_now(api)
    found = await samples(api)
    configs = {c["label"]: c["id"] for c in (await api.get(CONFIGS)).json()["items"]}
    by_version: dict[str, set[str]] = {}
    for s in found:
        by_version.setdefault(s["versionId"], set()).add(s["configId"])
    assert len(found) == 5
    assert sorted(map(sorted, by_version.values())) == [[configs[None]], [configs["production"]]]


async def test_config_validation_and_permissions(api: Api) -> None:
    await prompt_with_versions(api)
    cases = [
        ({"label": "production", "sampleRate": 1, "scorers": [LABELS]}, 422, "label_needs_prompt"),
        ({"sampleRate": 1, "scorers": [{"type": "equals"}]}, 422, "invalid_scorer"),
        ({"sampleRate": 1, "scorers": [{"type": "python", "value": "x"}]}, 422, "invalid_scorer"),
        ({"sampleRate": 1.5, "scorers": [LABELS]}, 422, None),
        ({"sampleRate": 1, "scorers": []}, 422, None),
        ({"sampleRate": 1, "scorers": [LABELS], "sources": ["eval"]}, 422, None),
        ({"prompt": "missing/prompt", "sampleRate": 1, "scorers": [LABELS]}, 404, "prompt_not_found"),
        ({"prompt": PROMPT, "label": "latest", "sampleRate": 1, "scorers": [LABELS]}, 422, "bad_label"),
        ({"sampleRate": 1, "scorers": [LABELS], "extra": 1}, 422, None),
    ]
    for body, status, code in cases:
        r = await api.put(CONFIGS, json=body)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["code"] == code, r.text
    assert (await api.get(CONFIGS)).json()["items"] == []
    assert await audit_events(api, "OnlineEvalConfigured") == []

    engineer = await api.make_key("PromptEngineer")
    qa = await api.make_key("QAAnalyst")
    made = await put(api, {"sampleRate": 0.1, "scorers": [LABELS]}, key=engineer["key"])
    r = await api.put(CONFIGS, qa["key"], json={"sampleRate": 0.2, "scorers": [LABELS]})
    assert r.status_code == 403
    assert (await api.delete(f"{CONFIGS}/{made['id']}", qa["key"])).status_code == 403
    assert (await api.get(CONFIGS, qa["key"])).status_code == 200
    other = await make_project_b(api)
    assert (await api.get(f"{CONFIGS}/{made['id']}", other["key"])).status_code == 404
    assert (await api.delete(f"{CONFIGS}/{made['id']}", other["key"])).status_code == 404
    assert (await api.get(CONFIGS, other["key"])).json()["items"] == []


async def test_llm_judge_scores_playground_runs(fapi: Api, fake_llm: FakeLLMServer) -> None:
    judge = {
        "type": "llm-rubric",
        "value": "The answer names a sentiment",
        "options": {"model": FAKE_TARGET},
    }
    cfg = await put(fapi, {"prompt": EXAMPLE, "sampleRate": 1, "scorers": [judge], "sources": ["playground"]})
    made = [await make_run(fapi, f"review number {i}") for i in range(3)]
    fake_llm.script("openai", text="Reasoning: clear. Score: 5", times=3)
    await wait_for_lag()
    await sample_now(fapi)
    found = await samples(fapi, prompt=EXAMPLE)
    assert {s["runId"] for s in found} == {m["runId"] for m in made}
    assert all(s["status"] == "done" and s["passed"] and s["score"] == 1.0 for s in found), found
    assert all(s["configId"] == cfg["id"] and s["scores"][0]["type"] == "llm-rubric" for s in found)
    # the judge's own calls are evaluation runs, not production traffic of the prompt
    r = await fapi.get("/api/v1/runs", params={"source": "eval"})
    assert len(r.json()["items"]) >= 3
