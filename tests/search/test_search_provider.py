"""A project's own provider embedding model for search (PUT /api/v1/search/settings), against a real HTTP server
speaking the OpenAI embeddings wire format on loopback (tests/support/fake_llm_server.py: its vectors are hashed
bags of words, so texts sharing words are close). Vectors are made in the background through the model caller
(recorded as runs of source "search"), the query is embedded before the search's transaction, a provider that
fails leaves the project searchable by words, and two models' vectors are never compared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from promptops import lifecycle
from promptops.search import spaces
from tests.support.app import Api
from tests.support.fake_llm_server import DEFAULT_KEY, EMBEDDING_DIM, FakeLLMServer
from tests.support.provider_support import (  # noqa: F401 (fixtures)
    add_fake_connection,
    fake_fixture,
    provider_app,
    shared_fake_fixture,
)
from tests.support.tenancy import make_project_b

MODEL = "text-embedding-3-small"
PROMPTS = {
    "billing/refund-email": "Write a polite refund email to the customer about their refund request.",
    "billing/refund-mail": "Write a polite refund email to a customer about the refund they requested.",
    "travel/packing-list": "Make a packing list for a ski holiday in the mountains.",
}


async def create(api: Api, name: str, template: str) -> None:
    r = await api.post("/api/v1/prompts", json={"name": name, "template": template})
    assert r.status_code == 201, r.text


async def settings(api: Api) -> dict[str, Any]:
    r = await api.get("/api/v1/search/settings")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def embedded(api: Api, timeout: float = 30.0) -> dict[str, Any]:
    """The settings once no document of the project waits for its vectors."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await settings(api)
        if found["documentsWaiting"] == 0:
            return found
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.2)


async def search(api: Api, query: str, mode: str = "semantic") -> dict[str, Any]:
    r = await api.get("/api/v1/search", params={"q": query, "mode": mode})
    assert r.status_code == 200, r.text
    return dict(r.json())


def names(page: dict[str, Any]) -> list[str]:
    return [h["name"] for h in page["items"]]


async def test_a_project_searches_with_its_provider_model(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with provider_app(db_url, tmp_path, fake, connection="emb") as api:
        for name, template in PROMPTS.items():
            await create(api, name, template)
        before = await settings(api)
        assert before["source"] == "deployment" and before["connection"] is None
        assert before["duplicateScore"] == pytest.approx(0.27)

        r = await api.put("/api/v1/search/settings", json={"connection": "emb", "model": MODEL})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["source"], body["connection"], body["model"]) == ("provider", "emb", MODEL)
        assert body["dimensions"] == EMBEDDING_DIM  # from the check call
        assert body["duplicateScore"] == pytest.approx(spaces.PROVIDER_PROFILE.duplicate_score)
        assert body["documentsWaiting"] >= len(PROMPTS)  # every version of the project, example prompts too

        done = await embedded(api)
        assert (done["documentsWaiting"], done["dimensions"]) == (0, EMBEDDING_DIM)
        calls = fake.requests_to("/embeddings")
        assert calls and all(c.body["model"] == MODEL for c in calls)
        texts = [t for c in calls for t in c.body["input"]]
        assert any("polite refund email" in t for t in texts)

        # the query is embedded by the provider too; the nearest by shared words comes first
        page = await search(api, "refund email for a customer")
        assert names(page)[:2] == ["billing/refund-email", "billing/refund-mail"] or names(page)[:2] == [
            "billing/refund-mail",
            "billing/refund-email",
        ]
        assert page["warnings"] == []
        assert page["items"][0]["similarity"] > 0.4
        queries = [
            c for c in fake.requests_to("/embeddings") if c.body["input"] == ["refund email for a customer"]
        ]
        assert len(queries) == 1
        await search(api, "refund email for a customer")  # the query's vector is cached
        assert (
            len([c for c in fake.requests_to("/embeddings") if c.body["input"] == queries[0].body["input"]])
            == 1
        )

        # a new prompt is embedded as it is saved, so its near-duplicates come back with it
        r = await api.post(
            "/api/v1/prompts",
            json={"name": "billing/refund-note", "template": "Write a polite refund email to the customer."},
        )
        assert r.status_code == 201, r.text
        near = [n["name"] for n in r.json()["nearDuplicates"]]
        assert "billing/refund-email" in near and "travel/packing-list" not in near
        assert (await settings(api))["documentsWaiting"] == 0
        # and while the provider fails, saved all the same and embedded in the background
        fake.script("openai", error="unavailable", status=503)
        await create(api, "travel/beach-list", "Make a packing list for a beach holiday by the sea.")
        await embedded(api)
        assert "travel/beach-list" in names(await search(api, "packing list for a holiday"))[:2]

        # similar and duplicates read the provider's vectors with the provider's thresholds
        r = await api.get("/api/v1/prompts/billing/refund-email/similar")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert items[0]["name"] == "billing/refund-mail" and items[0]["duplicate"] is True
        r = await api.get("/api/v1/search/duplicates")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["threshold"] == pytest.approx(spaces.PROVIDER_PROFILE.duplicate_score)
        clusters = [sorted(p["name"] for p in c["prompts"]) for c in report["clusters"]]
        assert any({"billing/refund-email", "billing/refund-mail"} <= set(c) for c in clusters)

        # every provider call is a run of the project, source "search"
        r = await api.get("/api/v1/runs", params={"source": "search", "limit": 200})
        assert r.status_code == 200, r.text
        runs = r.json()["items"]
        assert {(run["provider"], run["model"]) for run in runs} == {("emb", MODEL)}
        assert (
            sorted(run["status"] for run in runs).count("error") == 1
        )  # the save while the provider was down

        # audited
        events = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
        changed = [e for e in events if e["eventType"] == "SearchEmbeddingsChanged"]
        assert changed and changed[0]["data"]["model"] == MODEL

        # back to the deployment's model: embedded again by it, found by meaning as before
        r = await api.delete("/api/v1/search/settings")
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "deployment"
        calls_before = len(fake.requests_to("/embeddings"))
        await embedded(api)
        assert names(await search(api, "a letter giving a customer their money back"))[0].startswith(
            "billing/"
        )
        assert len(fake.requests_to("/embeddings")) == calls_before


async def test_a_failing_provider_leaves_search_by_words(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "RETRY_SECONDS", (0.3, 1.0))
    monkeypatch.setattr(lifecycle, "KEEP_EMBEDDED_SECONDS", 0.3)
    async with provider_app(db_url, tmp_path, fake, connection="emb") as api:
        await create(api, "billing/refund-email", PROMPTS["billing/refund-email"])
        r = await api.put("/api/v1/search/settings", json={"connection": "emb", "model": MODEL})
        assert r.status_code == 200, r.text
        await embedded(api)

        fake.script("openai", error="server", status=500, times=1000)
        await create(api, "travel/packing-list", PROMPTS["travel/packing-list"])
        await asyncio.sleep(1.0)
        assert (await settings(api))["documentsWaiting"] == 1  # tried, failed, waiting

        page = await search(api, "packing list for skiing", mode="hybrid")
        assert names(page) == ["travel/packing-list"]  # by its words
        assert page["items"][0]["textRank"] == 1 and page["items"][0]["semanticRank"] is None
        assert len(page["warnings"]) == 1 and "searched by words only" in page["warnings"][0]
        assert f"emb/{MODEL}" in page["warnings"][0]
        r = await api.get("/api/v1/runs", params={"source": "search", "status": "error", "limit": 5})
        assert r.status_code == 200 and r.json()["items"], r.text

        fake.reset()  # the provider answers again: the waiting version is embedded on the next try
        await embedded(api)
        page = await search(api, "packing list for skiing")
        assert names(page)[0] == "travel/packing-list" and page["warnings"] == []


async def test_bad_settings_are_refused_and_change_nothing(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with provider_app(db_url, tmp_path, fake, connection="emb") as api:
        r = await api.post(
            "/api/v1/providers",
            json={"name": "claude", "type": "anthropic", "baseUrl": fake.url, "apiKey": "sk-test"},
        )
        assert r.status_code == 201, r.text
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"connection": "nowhere", "model": MODEL}, 404, "connection_not_found"),
            ({"connection": "claude", "model": MODEL}, 422, "embeddings_not_supported"),
            ({"connection": "emb", "model": MODEL, "duplicateScore": 1.5}, 422, "validation_error"),
            ({"connection": "emb", "model": "", "minSimilarity": 0.5}, 422, "validation_error"),
            ({"connection": "emb"}, 422, "validation_error"),
        ]
        for body, status, code in cases:
            r = await api.put("/api/v1/search/settings", json=body)
            assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert fake.requests_to("/embeddings") == []

        fake.script(
            "openai", error="auth", status=401
        )  # a wrong key fails at once, with the provider's error
        r = await api.put("/api/v1/search/settings", json={"connection": "emb", "model": MODEL})
        assert 400 <= r.status_code < 600 and r.status_code != 500, r.text
        assert "auth" in r.json()["code"]

        viewer = (await api.make_key("Viewer"))["key"]
        r = await api.put("/api/v1/search/settings", viewer, json={"connection": "emb", "model": MODEL})
        assert r.status_code == 403, r.text
        assert (await api.get("/api/v1/search/settings", viewer)).status_code == 200

        found = await settings(api)
        assert found["source"] == "deployment" and found["documentsWaiting"] == 0
        events = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
        assert not [e for e in events if e["eventType"] == "SearchEmbeddingsChanged"]


async def test_projects_with_different_models_are_searched_together_never_compared(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    """Project B searches with a provider model, the default project with the deployment's: a user in both finds
    prompts of both by meaning (the query embedded once per model), and "similar" never pairs vectors of two
    models."""
    async with provider_app(db_url, tmp_path, fake) as api:
        b = await make_project_b(api)
        in_b = {"X-Project": "project-b"}
        r = await api.post("/api/v1/providers", b["key"], json=connection_to(fake))
        assert r.status_code == 201, r.text
        r = await api.put("/api/v1/search/settings", b["key"], json={"connection": "emb-b", "model": MODEL})
        assert r.status_code == 200, r.text
        template = PROMPTS["billing/refund-email"]
        for key, headers in ((b["session"], in_b), (None, {})):
            r = await api.post(
                "/api/v1/prompts",
                *([key] if key else []),
                json={"name": "billing/refund-email", "template": template},
                headers=headers,
            )
            assert r.status_code == 201, r.text
        r = await api.get("/api/v1/search/settings", b["key"])
        deadline = asyncio.get_running_loop().time() + 30
        while r.json()["documentsWaiting"]:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
            r = await api.get("/api/v1/search/settings", b["key"])
        assert (await settings(api))["source"] == "deployment"  # the default project is untouched

        r = await api.get(
            "/api/v1/search",
            b["session"],
            params={"q": "refund email to a customer", "mode": "semantic", "project": "*"},
        )
        assert r.status_code == 200, r.text
        found = {(h["project"], h["name"]) for h in r.json()["items"][:2]}
        assert found == {("default", "billing/refund-email"), ("project-b", "billing/refund-email")}
        assert r.json()["warnings"] == []

        # the same text in both projects, but made by two models: not each other's look-alike
        r = await api.get(
            "/api/v1/prompts/billing/refund-email/similar", b["session"], params={"project": "*"}
        )
        assert r.status_code == 200, r.text
        assert ("project-b", "billing/refund-email") not in {
            (i["project"], i["name"]) for i in r.json()["items"]
        }
        # project B's key does not reach the default project's settings or prompts
        r = await api.get("/api/v1/search", b["key"], params={"q": "refund", "project": "default"})
        assert r.status_code == 404


def connection_to(fake: FakeLLMServer) -> dict[str, Any]:
    return {
        "name": "emb-b",
        "type": "openai",
        "baseUrl": fake.url + "/v1",
        "apiKey": DEFAULT_KEY,
        "maxRetries": 0,
    }
