"""The registry through its REST face: create, version, label, resolve, rollback, fork, diff, render."""

from __future__ import annotations

import asyncio
from typing import Any

from promptops.pagination import encode_cursor
from tests.support.app import Api

TRIAGE = {
    "name": "support/triage",
    "description": "Route a ticket",
    "tags": ["support", "routing"],
    "template": "Classify this ticket for {{ team }}: {{ ticket }}\n",
    "variables": [
        {"name": "ticket", "type": "string"},
        {"name": "team", "type": "string", "default": "tier1", "required": False},
    ],
    "modelConfig": {"provider": "local", "model": "gemma-3-270m", "params": {"temperature": 0}},
    "commitMessage": "first",
}


async def create(api: Api, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    r = await api.post("/api/v1/prompts", json=body or TRIAGE, **kw)
    assert r.status_code == 201, r.text
    return r.json()


async def add_version(api: Api, name: str, template: str, **extra: Any) -> dict[str, Any]:
    body = {"template": template, "variables": TRIAGE["variables"], **extra}
    r = await api.post(f"/api/v1/prompts/{name}/versions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_full_lifecycle(api: Api) -> None:
    created = await create(api)
    assert created["version"]["version"] == 1
    assert created["prompt"]["tags"] == ["routing", "support"]
    assert created["version"]["labels"] == ["latest"]
    v2 = await add_version(
        api, "support/triage", "Route for {{ team }}: {{ ticket }}\n", commitMessage="second"
    )
    v3 = await add_version(
        api,
        "support/triage",
        "Route ticket to {{ team }}: {{ ticket }}\n",
        modelConfig={"params": {"temperature": 0.5}},
    )
    assert [v2["version"]["version"], v3["version"]["version"]] == [2, 3]
    assert v3["version"]["parentVersionId"] == v2["version"]["id"]

    r = await api.put(
        "/api/v1/prompts/support/triage/labels/production", json={"version": 2, "reason": "ship"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["deployed"] is True and r.json()["previousVersion"] is None
    r = await api.put("/api/v1/prompts/support/triage/labels/production", json={"version": 3})
    assert r.json()["previousVersion"] == 2

    r = await api.get("/api/v1/prompts/support/triage@production")
    assert r.status_code == 200 and r.json()["version"]["version"] == 3
    assert r.json()["resolvedBy"] == "label:production"
    r = await api.get("/api/v1/prompts/support/triage", params={"label": "production"})
    assert r.json()["version"]["version"] == 3
    r = await api.get("/api/v1/prompts/support/triage@1")
    assert r.json()["version"]["template"].startswith("Classify")
    r = await api.get("/api/v1/prompts/support/triage")
    assert r.json()["version"]["version"] == 3 and "latest" in r.json()["version"]["labels"]

    # rollback to where production was before its last move
    r = await api.post(
        "/api/v1/prompts/support/triage/labels/production/rollback", json={"reason": "regression"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["previousVersion"] == 3
    r = await api.get("/api/v1/prompts/support/triage@production")
    assert r.json()["version"]["version"] == 2

    # contract rollback to a named version
    r = await api.post(
        "/api/prompt/rollback", json={"promptId": created["prompt"]["id"], "toVersion": 1, "reason": "older"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["currentVersion"] == 1 and r.json()["previousVersion"] == 2

    history = (await api.get("/api/v1/prompts/support/triage/history")).json()
    assert [h["action"] for h in history] == ["rollback", "rollback", "set", "set"]

    # fork keeps lineage
    r = await api.post(
        "/api/v1/prompts/support/triage/fork", json={"newName": "support/triage-v2", "version": 3}
    )
    assert r.status_code == 201, r.text
    fork = r.json()
    assert fork["version"]["source"] == "forked" and fork["version"]["parentVersionId"] == v3["version"]["id"]
    assert fork["version"]["version"] == 1 and fork["prompt"]["tags"] == ["routing", "support"]

    # diff
    r = await api.get("/api/v1/prompts/support/triage/diff", params={"from": "1", "to": "3"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["identical"] is False
    assert "-Classify this ticket" in d["template"] and "+Route ticket to" in d["template"]
    assert any(c["path"] == "params.temperature" for c in d["modelConfig"])
    r = await api.get(
        "/api/v1/prompts/support/triage/diff", params={"from": "3", "to": "support/triage-v2@1"}
    )
    assert r.json()["identical"] is True

    # render with variables, default applied, exact versions reported
    r = await api.post(
        "/api/v1/prompts/support/triage/render",
        json={"variables": {"ticket": "VPN down"}, "label": "production"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "Classify this ticket for tier1: VPN down\n"
    assert r.json()["versionsUsed"][0]["version"] == 1


async def test_missing_variables_named(api: Api) -> None:
    await create(api)
    r = await api.post("/api/v1/prompts/support/triage/render", json={"variables": {}})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "missing_variables" and "ticket" in body["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_chat_prompt_and_include(api: Api) -> None:
    r = await api.post(
        "/api/v1/prompts",
        json={"name": "shared/tone", "template": "Be concise and kind.", "labels": ["production"]},
    )
    assert r.status_code == 201, r.text
    body = {
        "name": "support/chat",
        "kind": "chat",
        "messages": [
            {
                "role": "system",
                "content": '{% include "shared/tone@production" %} You help {{ product }} users.',
            },
            {"role": "user", "content": "{{ question }}"},
        ],
        "variables": [{"name": "product", "type": "string"}, {"name": "question", "type": "string"}],
    }
    await create(api, body)
    r = await api.post(
        "/api/v1/prompts/support/chat/render", json={"variables": {"product": "Acme", "question": "Hi?"}}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["messages"][0] == {"role": "system", "content": "Be concise and kind. You help Acme users."}
    assert [u["name"] for u in out["versionsUsed"]] == ["support/chat", "shared/tone"]


async def test_undeclared_variables_reported_on_save(api: Api) -> None:
    r = await api.post("/api/v1/prompts", json={"name": "x/undeclared", "template": "Hello {{ who }}"})
    assert r.status_code == 201
    assert any("who" in w for w in r.json()["version"]["warnings"])


async def test_bad_inputs_are_clear_4xx(api: Api) -> None:
    r = await api.post("/api/v1/prompts", json={"name": "Bad Name!", "template": "x"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_prompt_name"
    r = await api.post("/api/v1/prompts", json={"name": "ok/name", "kind": "chat", "template": "x"})
    assert r.status_code == 422 and "messages" in r.json()["detail"]
    r = await api.post("/api/v1/prompts", json={"name": "ok/syntax", "template": "{% if %}"})
    assert r.status_code == 422 and r.json()["code"] == "template_syntax_error"
    r = await api.post("/api/v1/prompts", json={"name": "ok/x", "template": "x", "surprise": 1})
    assert r.status_code == 422 and "surprise" in r.json()["detail"]
    await create(api)
    r = await api.post("/api/v1/prompts", json=TRIAGE)
    assert r.status_code == 409 and r.json()["code"] == "prompt_exists"
    r = await api.get("/api/v1/prompts/support/triage@9")
    assert r.status_code == 404 and r.json()["code"] == "version_not_found"
    r = await api.put("/api/v1/prompts/support/triage/labels/latest", json={"version": 1})
    assert r.status_code == 422
    r = await api.get("/api/v1/prompts", params={"limit": 1000})
    assert r.status_code == 422
    r = await api.post("/api/v1/prompts/support/triage/labels/production/rollback", json={})
    assert r.status_code == 404 and r.json()["code"] == "label_not_found"
    r = await api.post(
        "/api/v1/prompts", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_list_filters_and_pagination(api: Api) -> None:
    for i in range(5):
        body = {
            **TRIAGE,
            "name": f"folder/p{i}",
            "tags": ["even" if i % 2 == 0 else "odd"],
            "labels": ["staging"] if i < 2 else [],
        }
        await create(api, body)
    r = await api.get("/api/v1/prompts", params={"prefix": "folder/", "limit": 2})
    page1 = r.json()
    assert [p["name"] for p in page1["items"]] == ["folder/p0", "folder/p1"] and page1["nextCursor"]
    r = await api.get(
        "/api/v1/prompts", params={"prefix": "folder", "limit": 2, "cursor": page1["nextCursor"]}
    )
    assert [p["name"] for p in r.json()["items"]] == ["folder/p2", "folder/p3"]
    r = await api.get("/api/v1/prompts", params={"tag": "odd"})
    assert [p["name"] for p in r.json()["items"]] == ["folder/p1", "folder/p3"]
    r = await api.get("/api/v1/prompts", params={"label": "staging"})
    assert [p["name"] for p in r.json()["items"]] == ["folder/p0", "folder/p1"]
    r = await api.get("/api/v1/prompts", params={"q": "sentiment"})
    assert {p["name"] for p in r.json()["items"]} == {"sentiment/few-shot", "sentiment/zero-shot"}


async def test_examples_loaded_on_first_start(api: Api) -> None:
    r = await api.get("/api/v1/prompts", params={"label": "production"})
    names = {p["name"] for p in r.json()["items"]}
    assert {"sentiment/zero-shot", "sentiment/few-shot", "support/reply"} <= names
    r = await api.post("/api/v1/prompts/sentiment/few-shot/render", json={"variables": {"review": "Great!"}})
    assert r.json()["text"].endswith("Review: Great!\nSentiment:")


async def test_concurrent_version_creates_are_gapless(api: Api) -> None:
    await create(api)
    results = await asyncio.gather(
        *[
            api.post("/api/v1/prompts/support/triage/versions", json={"template": f"v {i} {{{{ ticket }}}}"})
            for i in range(50)
        ]
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results if r.status_code != 201][:3]
    numbers = sorted(r.json()["version"]["version"] for r in results)
    assert numbers == list(range(2, 52))
    r = await api.get("/api/v1/prompts/support/triage/versions", params={"limit": 200})
    assert sorted(v["version"] for v in r.json()["items"]) == list(range(1, 52))


async def test_idempotency_key_replays(api: Api) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    r1 = await api.post("/api/v1/prompts", json=TRIAGE, headers=headers)
    r2 = await api.post("/api/v1/prompts", json=TRIAGE, headers=headers)
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["prompt"]["id"] == r2.json()["prompt"]["id"]
    assert r2.headers.get("idempotent-replayed") == "true"
    r3 = await api.post("/api/v1/prompts", json={**TRIAGE, "description": "other"}, headers=headers)
    assert r3.status_code == 422 and r3.json()["code"] == "idempotency_key_reused"


async def test_archive_blocks_new_versions(api: Api) -> None:
    await create(api)
    r = await api.patch("/api/v1/prompts/support/triage", json={"archived": True})
    assert r.status_code == 200 and r.json()["archived"] is True
    r = await api.post("/api/v1/prompts/support/triage/versions", json={"template": "x"})
    assert r.status_code == 409 and r.json()["code"] == "prompt_archived"
    r = await api.get("/api/v1/prompts", params={"archived": True})
    assert [p["name"] for p in r.json()["items"]] == ["support/triage"]


async def test_invalid_label_names_are_422(api: Api) -> None:
    await create(api)
    r = await api.put("/api/v1/prompts/support/triage/labels/Prod", json={"version": 1})
    assert r.status_code == 422 and r.json()["code"] == "invalid_label"
    r = await api.get("/api/v1/prompts", params={"cursor": "!!!"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"


async def test_library_filters_model_author_updated_and_sort(api: Api) -> None:
    first = await create(api, {**TRIAGE, "name": "lib/alpha"})
    await create(
        api,
        {**TRIAGE, "name": "lib/beta", "modelConfig": {"provider": "openai", "model": "gpt-4o-mini"}},
    )
    engineer = await api.make_key("PromptEngineer", "writer")
    r = await api.post(
        "/api/v1/prompts/lib/alpha/versions",
        json={"template": "v2 {{ ticket }}", "variables": TRIAGE["variables"]},
        key=engineer["key"],
    )
    assert r.status_code == 201, r.text
    v2 = r.json()

    def names(r: Any) -> list[str]:
        assert r.status_code == 200, r.text
        return [p["name"] for p in r.json()["items"]]

    # model: the latest version's model config (alpha's v2 has no model config any more)
    assert names(await api.get("/api/v1/prompts", params={"prefix": "lib", "model": "gpt-4o-mini"})) == [
        "lib/beta"
    ]
    assert names(await api.get("/api/v1/prompts", params={"prefix": "lib", "model": "gemma-3-270m"})) == []
    # author: anyone who wrote a version
    author = v2["version"]["createdBy"]
    assert author and author != first["version"]["createdBy"]
    assert names(await api.get("/api/v1/prompts", params={"prefix": "lib", "author": author})) == [
        "lib/alpha"
    ]
    # updated: most recent first, and a time window
    assert names(await api.get("/api/v1/prompts", params={"prefix": "lib", "sort": "updated"})) == [
        "lib/alpha",
        "lib/beta",
    ]
    page = (await api.get("/api/v1/prompts", params={"prefix": "lib", "sort": "updated", "limit": 1})).json()
    rest = await api.get(
        "/api/v1/prompts",
        params={"prefix": "lib", "sort": "updated", "limit": 1, "cursor": page["nextCursor"]},
    )
    assert [p["name"] for p in page["items"]] + names(rest) == ["lib/alpha", "lib/beta"]
    since = first["prompt"]["createdAt"]
    assert "lib/alpha" in names(await api.get("/api/v1/prompts", params={"updatedAfter": since}))
    assert names(await api.get("/api/v1/prompts", params={"prefix": "lib", "updatedBefore": since})) == []
    # bad input is a clear 4xx
    r = await api.get("/api/v1/prompts", params={"sort": "size"})
    assert r.status_code == 422 and "sort" in r.text
    r = await api.get("/api/v1/prompts", params={"sort": "updated", "cursor": "bm90IGEgY3Vyc29y"})
    assert r.status_code == 422 and "cursor" in r.text.lower()
    for forged in ["0001-01-01T00:00:00+05:00|x", "9999-12-31T23:00:00-05:00|x", "2026-13-01T00:00:00|x"]:
        r = await api.get("/api/v1/prompts", params={"sort": "updated", "cursor": encode_cursor(forged)})
        assert r.status_code == 422 and "cursor" in r.text.lower(), (forged, r.text)


async def test_fork_lineage_both_ways(api: Api) -> None:
    await create(api, {**TRIAGE, "name": "tree/root"})
    await add_version(api, "tree/root", "second {{ ticket }}")
    for new_name, version in [("tree/child-a", 1), ("tree/child-b", 2)]:
        r = await api.post("/api/v1/prompts/tree/root/fork", json={"newName": new_name, "version": version})
        assert r.status_code == 201, r.text
    r = await api.post("/api/v1/prompts/tree/child-a/fork", json={"newName": "tree/grandchild"})
    assert r.status_code == 201, r.text

    root = (await api.get("/api/v1/prompts/tree/root/lineage")).json()
    assert root["forkedFrom"] == []
    assert [(f["prompt"], f["fromVersion"]) for f in root["forks"]] == [
        ("tree/child-b", 2),
        ("tree/child-a", 1),
    ]
    child = (await api.get("/api/v1/prompts/tree/child-a/lineage")).json()
    assert [(f["fromPrompt"], f["fromVersion"], f["version"]) for f in child["forkedFrom"]] == [
        ("tree/root", 1, 1)
    ]
    assert [f["prompt"] for f in child["forks"]] == ["tree/grandchild"]
    # a new version of the same prompt is not a fork
    await add_version(api, "tree/child-a", "edited {{ ticket }}")
    assert len((await api.get("/api/v1/prompts/tree/child-a/lineage")).json()["forkedFrom"]) == 1
    assert (await api.get("/api/v1/prompts/tree/missing/lineage")).status_code == 404
