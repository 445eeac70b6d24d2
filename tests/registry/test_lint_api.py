"""Lint through the REST face: findings stored on save, the lint endpoints, project settings, label gates."""

from __future__ import annotations

from typing import Any

from tests.support.app import Api

REVIEW_SYSTEM = {
    "name": "reviews/sentiment",
    "kind": "chat",
    "messages": [
        {"role": "system", "content": "Classify the review. Review: {{ review }}. Reply politely."},
        {"role": "user", "content": "Which label?"},
    ],
    "variables": [{"name": "review"}],
    "modelConfig": {"provider": "local", "model": "gemma-3-270m"},
    "metadata": {"labels": ["positive", "negative"]},
}
CLEAN_MESSAGES = [
    {"role": "system", "content": "Classify the review. Answer with one word: positive or negative."},
    {"role": "user", "content": "<review>{{ review }}</review>"},
]


def rules(findings: list[dict[str, Any]]) -> list[str]:
    return [f["rule"] for f in findings]


async def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post("/api/v1/prompts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def set_lint(api: Api, lint: dict[str, Any], key: str | None = None) -> Any:
    kwargs = {"key": key} if key else {}
    return await api.patch("/api/v1/projects/current", json={"settings": {"lint": lint}}, **kwargs)


async def test_save_stores_findings_and_returns_them(api: Api) -> None:
    created = await create(api, REVIEW_SYSTEM)
    version = created["version"]
    assert rules(version["lint"]) == ["PL007", "PL012"]
    injection = version["lint"][0]
    assert injection["severity"] == "warning" and injection["messageIndex"] == 0 and injection["line"] == 1
    assert injection["name"] == "injection-risk" and "<review>" in injection["hint"]
    # The text form stays for older clients.
    assert version["warnings"][0].startswith("PL007 injection-risk: ")

    # Stored: every read of the version returns the same findings.
    got = (await api.get("/api/v1/prompts/reviews/sentiment@1")).json()["version"]
    assert got["lint"] == version["lint"]
    listed = (await api.get("/api/v1/prompts/reviews/sentiment/versions")).json()["items"][0]
    assert listed["lint"] == version["lint"]

    fixed = await api.post(
        "/api/v1/prompts/reviews/sentiment/versions",
        json={**REVIEW_SYSTEM, "name": None, "messages": CLEAN_MESSAGES},
    )
    assert fixed.status_code == 422  # name is not a version field
    body = {k: v for k, v in REVIEW_SYSTEM.items() if k != "name"}
    fixed = await api.post(
        "/api/v1/prompts/reviews/sentiment/versions", json={**body, "messages": CLEAN_MESSAGES}
    )
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["version"]["lint"] == [] and fixed.json()["version"]["warnings"] == []


async def test_undeclared_variable_is_a_finding(api: Api) -> None:
    version = (await create(api, {"name": "x/undeclared", "template": "Hello {{ who }}"}))["version"]
    assert [(f["rule"], f["name"]) for f in version["lint"]] == [("PL003", "undeclared-variable")]
    assert any("who" in w for w in version["warnings"])


async def test_secret_never_stored_whole_and_context_window_from_catalog(api: Api) -> None:
    secret = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    big = "word " * 7000  # about 8750 tokens: more than gemma's 8192-token window
    version = (
        await create(
            api,
            {
                "name": "x/leaky",
                "template": f"Call with {secret}.\n{big}",
                "modelConfig": {"provider": "local", "model": "gemma-3-270m"},
            },
        )
    )["version"]
    assert rules(version["lint"]) == ["PL008", "PL011"]
    assert (
        secret not in str(version["lint"]) + str(version["warnings"])
        and "8192" in version["lint"][1]["message"]
    )

    # Same text on a model with a big window: only the secret; an unknown model: no length rule.
    r = await api.post(
        "/api/v1/lint", json={"template": big, "modelConfig": {"provider": "openai", "model": "gpt-4o"}}
    )
    assert r.status_code == 200 and r.json()["findings"] == []
    # A project price override's window wins over the catalog.
    r = await api.put(
        "/api/v1/models/prices",
        json={
            "provider": "openai",
            "model": "gpt-4o",
            "inputPer1M": 1,
            "outputPer1M": 1,
            "contextWindow": 12000,
        },
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        "/api/v1/lint", json={"template": big, "modelConfig": {"provider": "openai", "model": "gpt-4o"}}
    )
    assert rules(r.json()["findings"]) == ["PL010"]


async def test_lint_endpoint_does_not_save(api: Api) -> None:
    before = (await api.get("/api/v1/prompts", params={"limit": 200})).json()["items"]
    r = await api.post("/api/v1/lint", json={**REVIEW_SYSTEM, "tags": ["x"], "labels": ["production"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["name"] == "reviews/sentiment" and rules(out["findings"]) == ["PL007", "PL012"]
    assert out["summary"] == {"error": 0, "warning": 2, "info": 0}
    assert out["blockOn"] == "error" and out["blockedLabels"] == []
    assert (await api.get("/api/v1/prompts", params={"limit": 200})).json()["items"] == before

    # Broken templates are findings here, not 422s; malformed bodies still are.
    r = await api.post("/api/v1/lint", json={"template": "{% if %}"})
    assert r.status_code == 200 and rules(r.json()["findings"]) == ["PL001"]
    assert r.json()["summary"]["error"] == 1
    r = await api.post("/api/v1/lint", json={"kind": "chat", "template": "x"})
    assert r.status_code == 422
    # outputLabels stand in for a scorer's expected labels.
    r = await api.post("/api/v1/lint", json={"template": "Say something.", "outputLabels": ["yes", "no"]})
    assert rules(r.json()["findings"]) == ["PL012"]

    # Any role that can read prompts may lint; unauthenticated callers may not.
    viewer = await api.make_key("Viewer")
    assert (await api.post("/api/v1/lint", viewer["key"], json={"template": "Hi"})).status_code == 200
    assert (await api.post("/api/v1/lint", None, json={"template": "Hi"})).status_code == 401


async def test_includes_resolve_against_the_registry(api: Api) -> None:
    body = {"name": "x/includer", "template": 'Intro.\n{% include "shared/tone-x@production" %}'}
    version = (await create(api, body))["version"]
    assert rules(version["lint"]) == ["PL005"] and version["lint"][0]["severity"] == "error"
    await create(api, {"name": "shared/tone-x", "template": "Be kind.", "labels": ["production"]})
    # Saved findings are a snapshot; the version lint endpoint lints as things stand now.
    r = await api.get("/api/v1/prompts/x/includer/versions/1/lint")
    assert r.status_code == 200, r.text
    assert r.json()["findings"] == [] and r.json()["name"] == "x/includer" and r.json()["version"] == 1
    assert (await api.get("/api/v1/prompts/x/includer/versions/9/lint")).json()["code"] == "version_not_found"
    assert (await api.get("/api/v1/prompts/x/nope/versions/1/lint")).status_code == 404


async def test_project_lint_settings_disable_and_override(api: Api) -> None:
    r = await set_lint(api, {"disabled": ["injection-risk"], "severity": {"PL012": "error"}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["lint"]["disabled"] == ["injection-risk"]
    version = (await create(api, REVIEW_SYSTEM))["version"]
    assert [(f["rule"], f["severity"]) for f in version["lint"]] == [("PL012", "error")]

    bad = await set_lint(api, {"disabled": ["PL999", "no-such-rule"]})
    assert bad.status_code == 422
    assert "PL999" in bad.json()["detail"] and "PL001 (syntax-error)" in bad.json()["detail"]
    assert (await set_lint(api, {"severity": {"PL001": "fatal"}})).status_code == 422
    assert (await set_lint(api, {"blockOn": "info"})).status_code == 422
    assert (await set_lint(api, {"blockOnLabels": ["Not A Label"]})).status_code == 422
    # Only project managers change lint settings.
    engineer = await api.make_key("PromptEngineer")
    assert (await set_lint(api, {"disabled": []}, key=engineer["key"])).status_code == 403


async def test_protected_label_refuses_a_version_failing_lint(api: Api) -> None:
    r = await set_lint(api, {"blockOnLabels": ["production"]})
    assert r.status_code == 200, r.text
    leaky = {"name": "x/gated", "template": "Use key AKIA" + "IOSFODNN7EXAMPLE to answer {{ q }}"}
    leaky["variables"] = [{"name": "q"}]

    # Creating with the protected label fails as a whole: no prompt is left behind.
    r = await api.post("/api/v1/prompts", json={**leaky, "labels": ["production"]})
    assert r.status_code == 409 and r.json()["code"] == "lint_blocked"
    assert rules(r.json()["findings"]) == ["PL008"] and r.json()["label"] == "production"
    assert (await api.get("/api/v1/prompts/x/gated")).status_code == 404

    await create(api, {**leaky, "labels": ["staging"]})  # other labels are not gated
    r = await api.put("/api/v1/prompts/x/gated/labels/production", json={"version": 1})
    assert r.status_code == 409 and r.json()["code"] == "lint_blocked"
    assert "PL008" in r.json()["detail"]
    r = await api.post(
        "/api/v1/prompts/x/gated/versions", json={"template": "Answer {{ q }}", "variables": [{"name": "q"}]}
    )
    assert r.status_code == 201
    r = await api.put("/api/v1/prompts/x/gated/labels/production", json={"version": 2})
    assert r.status_code == 200, r.text
    # A rollback cannot smuggle the failing version in either.
    r = await api.post("/api/v1/prompts/x/gated/labels/production/rollback", json={"version": 1})
    assert r.status_code == 409 and r.json()["code"] == "lint_blocked"
    labels = (await api.get("/api/v1/prompts/x/gated")).json()["prompt"]["labels"]
    assert labels == {"production": 2, "staging": 1}

    # blockOn warning makes warnings block too; the lint endpoint says which labels would be refused.
    await set_lint(api, {"blockOnLabels": ["production"], "blockOn": "warning"})
    r = await api.post("/api/v1/lint", json={"template": "Hi {{ who }}", "labels": ["production", "staging"]})
    assert r.json()["blockedLabels"] == ["production"]
    r = await api.post(
        "/api/v1/prompts/x/gated/versions",
        json={"template": "Hi {{ who }}", "labels": ["production"]},
    )
    assert r.status_code == 409 and rules(r.json()["findings"]) == ["PL003"]
    assert (await api.get("/api/v1/prompts/x/gated")).json()["prompt"]["latestVersion"] == 2

    # Disabling the rule lifts the block: the gate lints with the current settings.
    await set_lint(api, {"blockOnLabels": ["production"], "blockOn": "warning", "disabled": ["PL003"]})
    r = await api.post(
        "/api/v1/prompts/x/gated/versions",
        json={"template": "Hi {{ who }}", "labels": ["production"]},
    )
    assert r.status_code == 201, r.text


async def test_rule_catalog_shows_project_settings(api: Api) -> None:
    rules = (await api.get("/api/v1/lint/rules")).json()
    assert rules[0]["id"] == "PL001" and all(r["enabled"] for r in rules)
    assert all(r["severity"] == r["defaultSeverity"] and r["catches"] and r["fix"] for r in rules)
    r = await set_lint(api, {"disabled": ["PL002"], "severity": {"syntax-error": "warning"}})
    assert r.status_code == 200, r.text
    by_id = {rule["id"]: rule for rule in (await api.get("/api/v1/lint/rules")).json()}
    assert by_id["PL002"]["enabled"] is False
    assert by_id["PL001"]["severity"] == "warning" and by_id["PL001"]["defaultSeverity"] == "error"
    viewer = await api.make_key("Viewer")
    assert (await api.get("/api/v1/lint/rules", key=viewer["key"])).status_code == 200
    assert (await api.get("/api/v1/lint/rules", key=None)).status_code == 401
