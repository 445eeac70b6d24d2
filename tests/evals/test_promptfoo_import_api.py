"""``POST /api/v1/evals/import/promptfoo``: a promptfoo config and its files, imported in one transaction.

The evaluations run on the built-in ``echo`` provider (it answers with the rendered prompt, as promptfoo's
``echo`` does), so a passing assertion proves which prompt text was sent; no model server is needed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from tests.support.app import Api

URL = "/api/v1/evals/import/promptfoo"
CONFIG = {
    "description": "Greetings",
    "prompts": ["file://prompts/greet.txt", "Say hi to {{ name }}"],
    "providers": ["echo", "webhook:https://example.com/x"],
    "defaultTest": {"assert": [{"type": "contains", "value": "{{ name }}"}]},
    "tests": [
        "file://tests.csv",
        {
            "vars": {"name": "Grace"},
            "assert": [{"type": "javascript", "value": "output.length > 1"}],
        },
    ],
}
FILES = {
    "prompts/greet.txt": "Hello {{ name }}, welcome!",
    "tests.csv": "name,__expected\nAda,icontains: hello\nAlan,\n",
}


def body(config: dict[str, Any] | None = None, files: dict[str, str] | None = None, **extra: Any) -> dict:
    return {
        "config": yaml.safe_dump(config if config is not None else CONFIG),
        "files": FILES if files is None else files,
        "prefix": "pf/greet",
        **extra,
    }


async def counts(api: Api) -> tuple[int, int, int]:
    """(prompts, datasets, audit events) in the project."""
    prompts = (await api.get("/api/v1/prompts", params={"limit": 200})).json()["items"]
    data = (await api.get("/api/v1/datasets", params={"limit": 200})).json()["items"]
    events = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
    return len(prompts), len(data), len(events)


async def wait_done(api: Api, run_id: str) -> dict[str, Any]:
    for _ in range(600):
        run = (await api.get(f"/api/v1/evals/{run_id}")).json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"evaluation {run_id} did not finish")


async def test_dry_run_shows_the_translation_and_writes_nothing(api: Api) -> None:
    before = await counts(api)
    r = await api.post(URL, json=body(dryRun=True))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["dryRun"] is True and out["evalRun"] is None and out["description"] == "Greetings"
    assert [(p["name"], p["action"], p["version"], p["versionId"]) for p in out["prompts"]] == [
        ("pf/greet/greet", "create", 1, None),
        ("pf/greet/prompt-2", "create", 1, None),
    ]
    assert out["prompts"][0]["source"] == "file://prompts/greet.txt"
    assert out["dataset"] == {
        "name": "pf/greet/tests",
        "action": "create",
        "version": 1,
        "versionId": None,
        "caseCount": 3,
    }
    assert [(m["provider"], m["model"], m["source"]) for m in out["models"]] == [
        ("echo", "echo", "providers[0]")
    ]
    skipped = {f["where"]: f["message"] for f in out["skipped"]}
    assert "custom code or an HTTP endpoint" in skipped["providers[1]"]
    assert "PromptOps runs no code" in skipped["tests[1].assert[0]"]
    assert out["evaluation"]["prompts"] == ["pf/greet/greet@1", "pf/greet/prompt-2@1"]
    assert await counts(api) == before


async def test_import_writes_everything_and_runs_on_echo(api: Api) -> None:
    before = await counts(api)
    r = await api.post(URL, json=body())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["dryRun"] is False and [p["action"] for p in out["prompts"]] == ["create", "create"]
    assert all(p["versionId"] for p in out["prompts"]) and out["dataset"]["versionId"]
    run = await wait_done(api, out["evalRun"]["id"])
    assert run["status"] == "completed", run
    # Ada: contains Ada + icontains hello; Alan: contains Alan; Grace: contains Grace (the javascript one
    # was skipped). "Say hi to {{ name }}" fails the "hello" of Ada's case only.
    groups = {g["label"]: g for g in run["summary"]}
    assert groups["pf/greet/greet@1"]["passed"] == 3
    assert groups["pf/greet/prompt-2@1"]["passed"] == 2
    prompts, datasets, _ = await counts(api)
    assert (prompts, datasets) == (before[0] + 2, before[1] + 1)

    audit = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
    imported = [e for e in audit if e["eventType"] == "PromptfooConfigImported"]
    assert len(imported) == 1
    data = imported[0]["data"]
    assert data["evalRunId"] == out["evalRun"]["id"] and data["caseCount"] == 3 and data["skipped"] == 2
    kinds = [e["eventType"] for e in audit]
    for kind in ("PromptCreated", "PromptVersionCreated", "DatasetCreated", "EvaluationQueued"):
        assert kind in kinds

    # the same config again: nothing changed, nothing new is written but the evaluation
    again = (await api.post(URL, json=body(run=False))).json()
    assert [p["action"] for p in again["prompts"]] == ["unchanged", "unchanged"]
    assert again["dataset"]["action"] == "unchanged" and again["evalRun"] is None
    # a changed prompt file: a new version of that prompt only
    changed = (await api.post(URL, json=body(files={**FILES, "prompts/greet.txt": "Hi {{ name }}!"}))).json()
    assert [(p["action"], p["version"]) for p in changed["prompts"]] == [("version", 2), ("unchanged", 1)]


async def test_a_rejected_import_writes_nothing(api: Api) -> None:
    before = await counts(api)
    # fails late: after the prompts and the dataset were written in the transaction, starting the
    # evaluation finds no case tagged "nope"
    r = await api.post(URL, json=body(tags=["nope"]))
    assert r.status_code == 422 and r.json()["code"] == "empty_dataset", r.text
    assert await counts(api) == before
    # an unknown connection, named by the provider entry it came from
    config = {**CONFIG, "providers": ["echo", "openai:chat:gpt-4o-mini"]}
    r = await api.post(URL, json=body(config, providerMap={"openai": "nowhere"}))
    assert r.status_code in (404, 422), r.text
    assert r.json()["field"] == "providers[1]" and "providers[1] (nowhere/gpt-4o-mini)" in r.json()["detail"]
    assert await counts(api) == before


async def test_bad_configs_answer_4xx_naming_the_field(api: Api) -> None:
    async def problem(payload: dict[str, Any], status: int = 422) -> dict[str, Any]:
        r = await api.post(URL, json=payload)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return r.json()

    got = await problem(body(files={**FILES, "../secret.txt": "x"}))
    assert got["code"] == "invalid_promptfoo_config" and "outside the config's folder" in got["detail"]
    got = await problem(body(files={**FILES, "/etc/passwd": "x"}))
    assert "absolute path" in got["detail"]
    got = await problem(body({**CONFIG, "prompts": ["file://../prompts.txt"]}))
    assert got["field"] == "prompts[0]" and "'..'" in got["detail"]
    got = await problem(body(files={"tests.csv": FILES["tests.csv"]}))  # the prompt file was not sent
    assert got["field"] == "prompts[0]" and "no file matches file://prompts/greet.txt" in got["detail"]
    got = await problem({"config": "prompts: [a\n", "prefix": "pf/x"})
    assert "invalid YAML at line" in got["detail"]
    got = await problem({"config": "- just\n- a list\n"})
    assert got["field"] == "config" and "must be a mapping" in got["detail"]
    got = await problem({"config": "providers: [echo]\n"})
    assert got["field"] == "prompts"
    got = await problem(body(prefix="Bad Prefix"))
    assert got["field"] == "prefix"

    # similar needs an embedding model: refused at import, not when the evaluation scores it
    similar = {**CONFIG, "tests": [{"vars": {"name": "Ada"}, "assert": [{"type": "similar", "value": "Hi"}]}]}
    got = await problem(body(similar, dryRun=True))
    assert got["field"] == "tests[0].assert[0]" and "embedding model" in got["detail"]
    assert got["errors"][0]["where"] == "tests[0].assert[0]"
    with_model = {
        **similar,
        "defaultTest": {"options": {"provider": {"embedding": "openai:embedding:text-embedding-3-small"}}},
    }
    r = await api.post(URL, json=body(with_model, dryRun=True, run=False))
    assert r.status_code == 200, r.text


async def test_cost_assertions_on_unpriced_models_warn(api: Api) -> None:
    r = await api.post(
        "/api/v1/providers", json={"name": "unpriced", "type": "openai", "apiKey": "sk-test-not-used"}
    )
    assert r.status_code == 201, r.text
    config = {
        "prompts": ["Hi {{ name }}"],
        "providers": ["openai:chat:my-own-model", "openai:chat:gpt-4o-mini", "echo"],
        "tests": [{"vars": {"name": "Ada"}, "assert": [{"type": "cost", "threshold": 0.001}]}],
    }
    r = await api.post(URL, json=body(config, files={}, providerMap={"openai": "unpriced"}, dryRun=True))
    assert r.status_code == 200, r.text
    warnings = {f["where"]: f["message"] for f in r.json()["warnings"]}
    # the catalog prices gpt-4o-mini; echo costs nothing; the other model would pass at $0 whatever it spends
    assert list(warnings) == ["providers[0]"] and "no price" in warnings["providers[0]"]


async def test_permissions(api: Api) -> None:
    viewer = (await api.make_key("Viewer"))["key"]
    qa = (await api.make_key("QAAnalyst"))["key"]
    r = await api.post(URL, key=viewer, json=body(dryRun=True))
    assert r.status_code == 403, r.text
    # a QA analyst runs evaluations but does not write prompts: a dry run yes, an import no
    r = await api.post(URL, key=qa, json=body(dryRun=True))
    assert r.status_code == 200, r.text
    r = await api.post(URL, key=qa, json=body())
    assert r.status_code == 403 and r.json()["permission"] == "prompt:write", r.text


async def test_a_bundle_may_exceed_the_general_body_limit(api: Api) -> None:
    rows = "".join(f"Name{i:06d},\n" for i in range(90_000))  # ~1.1 MB of tests, over the 1 MiB body limit
    r = await api.post(URL, json=body(files={**FILES, "tests.csv": "name,__expected\n" + rows}, dryRun=True))
    assert r.status_code == 200, r.text
    assert r.json()["dataset"]["caseCount"] == 90_001
