"""Search through its REST face on SQLite and PostgreSQL: full text, meaning, hybrid, filters, similar prompts,
near-duplicates on save, duplicate clusters, and what drops out (archived prompts, superseded text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from promptops.db import utcnow
from promptops.search.embed import embedder
from promptops.search.index import PENDING
from promptops.search.models import SearchDocument
from tests.support.app import Api

PROMPTS: list[dict[str, Any]] = [
    {
        "name": "support/refund-reply",
        "description": "Answer a customer asking for a refund",
        "tags": ["support", "email"],
        "template": "Write a polite email replying to a customer who asks for a refund of order {{ order_id }}. "
        "Explain the refund policy and the next steps.",
    },
    {
        "name": "support/ticket-summary",
        "description": "Summarise a support ticket",
        "tags": ["support"],
        "template": "Summarise the support ticket below in three bullet points for the on-call engineer.\n"
        "{{ ticket }}",
    },
    {
        "name": "eng/sql-writer",
        "description": "Natural language to SQL",
        "tags": ["data"],
        "template": "Given the database schema {{ schema }}, write one SQL query that answers: {{ question }}",
    },
    {
        "name": "meetings/action-items",
        "description": "",
        "tags": ["productivity"],
        "template": "Read these meeting notes and list every action item with its owner and due date.\n"
        "{{ notes }}",
    },
]


async def seed(api: Api) -> None:
    for body in PROMPTS:
        r = await api.post("/api/v1/prompts", json={**body, "commitMessage": "first"})
        assert r.status_code == 201, r.text
        assert r.json()["nearDuplicates"] == []


async def names(api: Api, query: str, **params: Any) -> list[str]:
    r = await api.get("/api/v1/search", params={"q": query, **params})
    assert r.status_code == 200, r.text
    return [hit["name"] for hit in r.json()["items"]]


async def test_text_semantic_and_hybrid_search(api: Api) -> None:
    await seed(api)
    # words: stemmed ("refunds" finds "refund"), the name outranks the text
    assert (await names(api, "refunds", mode="text"))[0] == "support/refund-reply"
    r = await api.get("/api/v1/search", params={"q": "refund email", "mode": "text"})
    hit = r.json()["items"][0]
    assert hit["name"] == "support/refund-reply" and hit["textRank"] == 1 and hit["project"]
    assert any(s["match"] and "refund" in s["text"].lower() for s in hit["snippet"])
    # meaning with hardly a shared word
    assert (await names(api, "customer wants their money back", mode="semantic"))[0] == "support/refund-reply"
    assert (await names(api, "customer wants their money back"))[0] == "support/refund-reply"
    # hybrid ranks the right prompt first for natural language and for keywords
    assert (await names(api, "prompt that writes database queries from questions"))[0] == "eng/sql-writer"
    assert (await names(api, "ticket summary"))[0] == "support/ticket-summary"
    # misspelled words are corrected against the words the project's prompts use
    r = await api.get("/api/v1/search", params={"q": "refnud emial", "mode": "text"})
    assert r.json()["corrections"] == {"refnud": "refund", "emial": "email"}
    assert r.json()["items"][0]["name"] == "support/refund-reply"
    assert (await names(api, "polite refnud emial"))[0] == "support/refund-reply"
    r = await api.get("/api/v1/search", params={"q": "refund email"})
    assert r.json()["corrections"] == {}


async def test_filters_paging_and_errors(api: Api) -> None:
    await seed(api)
    assert await names(api, "support", mode="text", tag="email") == ["support/refund-reply"]
    assert {"support/refund-reply", "support/ticket-summary"} <= set(
        await names(api, "support", mode="text", tag="support")
    )
    r = await api.put("/api/v1/prompts/support/ticket-summary/labels/production", json={"version": 1})
    assert r.status_code == 200, r.text
    production = await names(api, "support", mode="text", label="production")
    assert "support/ticket-summary" in production and "support/refund-reply" not in production
    # the label's version is found when a newer version is the latest
    r = await api.post(
        "/api/v1/prompts/support/ticket-summary/versions",
        json={"template": "Give the gist of {{ ticket }} in one line.", "variables": [{"name": "ticket"}]},
    )
    assert r.status_code == 201, r.text
    r = await api.get("/api/v1/search", params={"q": "bullet points", "mode": "text", "label": "production"})
    assert [(h["name"], h["version"]) for h in r.json()["items"]] == [("support/ticket-summary", 1)]
    assert "support/ticket-summary" not in await names(api, "bullet points", mode="text")
    first = await names(api, "support ticket refund", mode="text", limit=1)
    second = await names(api, "support ticket refund", mode="text", limit=1, offset=1)
    assert len(first) == len(second) == 1 and first != second
    for params, code in [
        ({"q": ""}, 422),
        ({"q": "x" * 1001}, 422),
        ({"q": "refund", "mode": "fuzzy"}, 422),
        ({"q": "!!! ???"}, 422),
        ({"q": "refund", "project": "nope"}, 404),
    ]:
        r = await api.get("/api/v1/search", params=params)
        assert r.status_code == code, (params, r.text)
        assert r.json()["detail"]


async def test_index_follows_versions_archive_and_tags(api: Api) -> None:
    await seed(api)
    r = await api.post(
        "/api/v1/prompts/eng/sql-writer/versions",
        json={
            "template": "Translate {{ question }} into a pandas expression over {{ frame }}.",
            "commitMessage": "pandas",
        },
    )
    assert r.status_code == 201, r.text
    # the superseded text is only found with allVersions; the new text at once
    assert "eng/sql-writer" not in await names(api, "schema", mode="text")
    assert "eng/sql-writer" in await names(api, "schema", mode="text", allVersions="true")
    assert await names(api, "pandas", mode="text") == ["eng/sql-writer"]
    assert await names(api, "pandas", mode="text", allVersions="true") == [
        "eng/sql-writer"
    ]  # commit message too
    r = await api.patch("/api/v1/prompts/eng/sql-writer", json={"tags": ["analytics"]})
    assert r.status_code == 200, r.text
    assert await names(api, "pandas", mode="text", tag="analytics") == ["eng/sql-writer"]
    r = await api.patch("/api/v1/prompts/eng/sql-writer", json={"archived": True})
    assert r.status_code == 200, r.text
    assert "eng/sql-writer" not in await names(api, "pandas")


async def test_similar_and_near_duplicates(api: Api) -> None:
    await seed(api)
    twin = {
        "name": "cs/refund-email",
        "description": "Reply to a refund request",
        "tags": [],
        "template": "Write a polite email replying to a customer who asks for a refund of order {{ order }}. "
        "Explain our refund policy and the next steps.",
        "commitMessage": "copy",
    }
    r = await api.post("/api/v1/prompts", json=twin)
    assert r.status_code == 201, r.text
    near = r.json()["nearDuplicates"]
    floor = embedder().profile.duplicate_score  # the default model's (0.27)
    assert [n["name"] for n in near] == ["support/refund-reply"] and near[0]["duplicateScore"] >= floor
    r = await api.get("/api/v1/prompts/cs/refund-email/similar")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items[0]["name"] == "support/refund-reply" and items[0]["duplicate"] is True
    assert items[0]["similarity"] >= 0.85 and items[0]["duplicateScore"] >= floor
    assert not any(i["duplicate"] for i in items[1:])
    assert "cs/refund-email" not in [i["name"] for i in items]
    r = await api.get("/api/v1/search/duplicates")
    assert r.status_code == 200, r.text
    clusters = r.json()["clusters"]
    groups = [sorted(p["name"] for p in c["prompts"]) for c in clusters]
    # the copy pairs with its original; the example prompts' few-shot and zero-shot sentiment prompts (the
    # same instruction, one with examples) are grouped too; the other seeded prompts are not
    assert ["cs/refund-email", "support/refund-reply"] in groups
    assert ["sentiment/few-shot", "sentiment/zero-shot"] in groups and len(groups) == 2
    assert all(c["score"] >= floor for c in clusters) and r.json()["threshold"] == floor
    r = await api.get("/api/v1/search/duplicates", params={"threshold": 0.7})
    assert [sorted(p["name"] for p in c["prompts"]) for c in r.json()["clusters"]] == [
        ["cs/refund-email", "support/refund-reply"]
    ]
    assert (await api.get("/api/v1/prompts/nope/similar")).status_code == 404
    assert (await api.get("/api/v1/search/duplicates", params={"threshold": 2})).status_code == 422


async def test_a_document_waiting_for_its_vectors(api: Api) -> None:
    """A version indexed without vectors (a bulk backfill, or a model change, before the background refresh
    reaches it) is found by words, left out of the vector index and of duplicate clusters, and its own similar
    prompts are computed from a vector made on the spot."""
    await seed(api)
    twin = {
        "name": "cs/refund-email",
        "description": "Reply to a refund request",
        "template": "Write a polite email replying to a customer who asks for a refund of order {{ order }}. "
        "Explain our refund policy and the next steps.",
    }
    assert (await api.post("/api/v1/prompts", json=twin)).status_code == 201
    async with api.app.state.runtime.db.transaction(write=True) as session:
        await session.execute(
            update(SearchDocument)
            .where(SearchDocument.prompt_name == "cs/refund-email")
            .values(embedding_model=PENDING, embedding=b"", content_embedding=None, changed_at=utcnow())
        )
    text = (await api.get("/api/v1/search", params={"q": "refund email", "mode": "text"})).json()
    assert "cs/refund-email" in [h["name"] for h in text["items"]]
    meaning = (await api.get("/api/v1/search", params={"q": "refund email", "mode": "semantic"})).json()
    assert "cs/refund-email" not in [h["name"] for h in meaning["items"]]
    r = await api.get("/api/v1/prompts/cs/refund-email/similar")
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["name"] == "support/refund-reply" and r.json()["items"][0]["duplicate"]
    clusters = (await api.get("/api/v1/search/duplicates")).json()["clusters"]
    assert not any("cs/refund-email" in [p["name"] for p in c["prompts"]] for c in clusters)
