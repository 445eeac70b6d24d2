"""``PUT /api/v1/prompts/{name}``: push a prompt file; the server decides created / new version / unchanged."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

from promptops.registry.files import SUFFIX, parse_prompt_file
from tests.support.app import Api

FILE = {
    "description": "Route a ticket",
    "tags": ["support"],
    "template": "Classify this ticket: {{ ticket }}\n",
    "variables": [{"name": "ticket"}],
    "modelConfig": {"provider": "local", "model": "gemma-3-270m"},
    "labels": ["staging"],
    "commitMessage": "from a file",
}
URL = "/api/v1/prompts/support/pushed"


async def push(
    api: Api, body: dict[str, Any], *, dry_run: bool = False, key: str | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"json": body, "params": {"dryRun": "true"} if dry_run else None}
    r = await (api.put(URL, **kwargs) if key is None else api.put(URL, key, **kwargs))
    assert r.status_code == 200, r.text
    return r.json()


async def versions(api: Api) -> list[int]:
    r = await api.get(f"{URL}/versions")
    return [v["version"] for v in r.json()["items"]] if r.status_code == 200 else []


async def test_push_creates_then_versions_then_reports_unchanged(api: Api) -> None:
    planned = await push(api, FILE, dry_run=True)
    assert (planned["action"], planned["version"], planned["dryRun"], planned["resolved"]) == (
        "created",
        1,
        True,
        None,
    )
    assert (await api.get(URL)).status_code == 404  # a dry run writes nothing

    created = await push(api, FILE)
    assert (created["action"], created["version"]) == ("created", 1)
    assert created["resolved"]["prompt"]["labels"] == {"staging": 1}

    # The same content, spelled with the defaults the server fills in, is unchanged: the server hashes it.
    spelled = {**FILE, "variables": [{"name": "ticket", "type": "string", "required": True}]}
    again = await push(api, spelled)
    assert (again["action"], again["version"], again["changed"]) == ("unchanged", 1, [])
    assert await versions(api) == [1]

    planned = await push(api, {**FILE, "template": "Route: {{ ticket }}\n"}, dry_run=True)
    assert (planned["action"], planned["version"]) == ("versionCreated", 2)
    assert await versions(api) == [1]

    changed = await push(api, {**FILE, "template": "Route: {{ ticket }}\n", "labels": ["production"]})
    assert (changed["action"], changed["version"]) == ("versionCreated", 2)
    labels = changed["resolved"]["prompt"]["labels"]
    assert (
        labels["production"] == 2 and labels["staging"] == 1
    )  # only the file's labels move to the new version
    history = (await api.get(f"{URL}/history")).json()
    assert sorted(e["label"] for e in history) == ["production", "staging"]


async def test_push_updates_details_without_a_version(api: Api) -> None:
    await push(api, FILE)
    planned = await push(api, {**FILE, "description": "New words", "tags": ["b", "a"]}, dry_run=True)
    assert (planned["action"], planned["changed"]) == ("updated", ["description", "tags"])
    assert (await api.get(URL)).json()["prompt"]["description"] == "Route a ticket"

    updated = await push(api, {**FILE, "description": "New words", "tags": ["b", "a"]})
    assert (updated["action"], updated["changed"], updated["version"]) == (
        "updated",
        ["description", "tags"],
        1,
    )
    prompt = (await api.get(URL)).json()["prompt"]
    assert (prompt["description"], prompt["tags"]) == ("New words", ["a", "b"])
    # A file without description/tags leaves them as they are.
    bare = {k: v for k, v in FILE.items() if k not in ("description", "tags")}
    assert (await push(api, bare))["action"] == "unchanged"

    events = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
    assert "PromptUpdated" in [e["eventType"] for e in events]


async def test_push_rejects_bad_input_and_writes_nothing(api: Api) -> None:
    r = await api.put(URL, json={**FILE, "name": "support/other"})
    assert (r.status_code, r.json()["code"]) == (422, "name_mismatch")
    r = await api.put("/api/v1/prompts/support/pushed@production", json=FILE)
    assert r.status_code == 422, r.text
    r = await api.put(URL, json={**FILE, "template": "{% if %}"})
    assert r.status_code == 422, r.text
    assert (await api.get(URL)).status_code == 404

    await push(api, FILE)
    await api.patch(URL, json={"archived": True})
    r = await api.put(URL, json={**FILE, "template": "Other {{ ticket }}\n", "description": "changed"})
    assert (r.status_code, r.json()["code"]) == (409, "prompt_archived")
    # The description change in the same push was rolled back with the refused version.
    assert (await api.get(URL)).json()["prompt"]["description"] == "Route a ticket"


async def test_push_needs_write_permission(api: Api) -> None:
    viewer = await api.make_key("Viewer")
    r = await api.put(URL, viewer["key"], json=FILE)
    assert r.status_code == 403, r.text


def example_files() -> list[dict[str, Any]]:
    folder = resources.files("promptops") / "examples"
    return [parse_prompt_file(e.read_text()) for e in folder.iterdir() if e.name.endswith(SUFFIX)]


@pytest.mark.parametrize("body", example_files(), ids=lambda body: str(body["name"]))
async def test_pushing_the_loaded_examples_back_is_unchanged(api: Api, body: dict[str, Any]) -> None:
    """The bootstrap loaded these files; pushed back as they are (defaults omitted, metadata and a new commit
    message added), the server finds the same content."""
    for variant in (
        body,
        {**body, "commitMessage": "again", "metadata": {**body.get("metadata", {}), "x": 1}},
    ):
        r = await api.put(f"/api/v1/prompts/{body['name']}", json=variant)
        assert r.status_code == 200, r.text
        assert (r.json()["action"], r.json()["version"]) == ("unchanged", 1)
