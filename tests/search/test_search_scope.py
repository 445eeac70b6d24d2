"""Search scope and upkeep: tenant isolation and cross-project search, rolled-back writes leave no trace,
concurrent writers all land in the index, and a restart with a stale, corrupt or missing index catches up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from promptops import lifecycle
from promptops.search.embed import embedder, to_bytes
from promptops.search.index import embedding_label, make_vectors
from promptops.search.models import SearchDocument
from tests.support.app import ADMIN_KEY, Api, open_api
from tests.support.tenancy import B_SECRET, make_project_b


async def hits(api: Api, query: str, token: str = ADMIN_KEY, **params: object) -> list[str]:
    r = await api.get("/api/v1/search", token, params={"q": query, **params})
    assert r.status_code == 200, r.text
    return [f"{h['project']}:{h['name']}" for h in r.json()["items"]]


async def test_projects_never_leak(api: Api) -> None:
    b = await make_project_b(api)
    query = B_SECRET  # words found only in project B's prompt
    # the default project's admin key: not found, not with '*', and project-b is "not found"
    assert not any("b-prompt" in h for h in await hits(api, query))
    assert not any("b-prompt" in h for h in await hits(api, query, project="*"))
    r = await api.get("/api/v1/search", params={"q": query, "project": "project-b"})
    assert r.status_code == 404 and "project-b" in r.json()["detail"]
    r = await api.get("/api/v1/prompts/secret/b-prompt/similar")
    assert r.status_code == 404
    # project B's key searches project B by default
    assert await hits(api, query, b["key"]) == ["project-b:secret/b-prompt"]
    # a user in both projects searches either or both
    session = b["session"]
    both = await hits(api, query, session, project="*")
    assert "project-b:secret/b-prompt" in both
    assert await hits(api, "confidential", session, project="project-b", mode="text") == [
        "project-b:secret/b-prompt"
    ]
    # a copy of a default-project prompt in project B is its look-alike for the user, not for the key
    reply = (await api.get("/api/v1/prompts/support/reply")).json()["version"]
    copy = {
        "name": "copied/reply",
        **{k: reply[k] for k in ("kind", "template", "messages", "variables") if reply[k]},
    }
    r = await api.post("/api/v1/prompts", session, json=copy, headers={"X-Project": "project-b"})
    assert r.status_code == 201, r.text
    r = await api.get("/api/v1/prompts/support/reply/similar")
    assert "copied/reply" not in [i["name"] for i in r.json()["items"]]
    r = await api.get("/api/v1/prompts/support/reply/similar", session, params={"project": "*"})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["name"] == "copied/reply" and r.json()["items"][0]["project"] == "project-b"


async def doc_count(api: Api) -> int:
    async with api.app.state.runtime.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(SearchDocument))).scalar_one())


async def test_rolled_back_write_leaves_no_document(api: Api) -> None:
    before = await doc_count(api)
    body = {
        "name": "ghost/prompt",
        "template": "A zanzibarian quokka translator for {{ x }}",
        "variables": [{"name": "x"}],
        "labels": ["Not A Label!"],  # refused after the version (and its document) were written
    }
    r = await api.post("/api/v1/prompts", json=body)
    assert r.status_code == 422, r.text
    assert await doc_count(api) == before
    assert await hits(api, "zanzibarian quokka") == []


async def test_concurrent_writers_all_indexed(api: Api) -> None:
    async def create(i: int) -> None:
        body = {
            "name": f"load/p{i}",
            "template": f"Describe the color number{i} {{{{ x }}}}",
            "variables": [{"name": "x"}],
        }
        r = await api.post("/api/v1/prompts", json=body)
        assert r.status_code == 201, r.text
        r = await api.post(
            f"/api/v1/prompts/load/p{i}/versions",
            json={"template": f"Paint wall{i} {{{{ x }}}}", "variables": [{"name": "x"}]},
        )
        assert r.status_code == 201, r.text

    await asyncio.gather(*(create(i) for i in range(12)))
    async with api.app.state.runtime.db.transaction() as session:
        versions = (
            await session.execute(
                select(func.count())
                .select_from(SearchDocument)
                .where(SearchDocument.prompt_name.like("load/%"))
            )
        ).scalar_one()
    assert versions == 24
    for i in (0, 7, 11):
        assert await hits(api, f"wall{i}", mode="text") == [f"default:load/p{i}"]
        assert await hits(api, f"number{i}", mode="text") == []  # superseded text
    semantic = await hits(api, "paint a wall", mode="semantic", limit=50)
    assert sum(h.startswith("default:load/") for h in semantic) == 12


async def test_restart_catches_up_stale_corrupt_or_missing_index(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "server-a"
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        assert await hits(api, "customer support reply", mode="semantic")  # builds and saves the index
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    files = list((data / "search-index").glob("*.usearch"))
    assert files, "the vector index is persisted"
    # another process writes while server A is down
    other, client2, lifespan2 = await open_api(db_url, tmp_path, data_dir=tmp_path / "server-b")
    try:
        r = await other.post(
            "/api/v1/prompts",
            json={"name": "late/arrival", "template": "Write a haiku about autumn leaves falling."},
        )
        assert r.status_code == 201, r.text
    finally:
        await client2.aclose()
        await lifespan2.__aexit__(None, None, None)
    # A starts again from its stale file: the new prompt is found by meaning
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        assert (await hits(api, "a short poem about fall foliage", mode="semantic"))[
            0
        ] == "default:late/arrival"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    # a corrupt file is rebuilt from the rows; documents deleted by hand are written again at start
    for f in files:
        f.write_bytes(b"not an index")
    async with api.app.state.runtime.db.transaction(write=True) as session:
        await session.execute(delete(SearchDocument).where(SearchDocument.prompt_name == "late/arrival"))
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        # written again at start for words at once; embedded by the background refresh, then found by meaning
        assert await hits(api, "haiku", mode="text") == ["default:late/arrival"]
        refresh = api.app.state.runtime.search_refresh
        assert refresh is not None and await refresh == 1
        assert (await hits(api, "a short poem about fall foliage", mode="semantic"))[
            0
        ] == "default:late/arrival"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_vectors_follow_description_and_recipe(db_url: str, tmp_path: Path) -> None:
    """A new description is embedded again in the same write; vectors of an older model or text recipe are
    embedded again in the background after start-up, and left out of semantic results until then."""
    data = tmp_path / "server"
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        body = {
            "name": "notes/plain",
            "template": "Rewrite {{ text }} more briefly.",
            "description": "Shorter",
        }
        assert (await api.post("/api/v1/prompts", json=body)).status_code == 201
        before = await stored_vector(api, "notes/plain")
        r = await api.patch("/api/v1/prompts/notes/plain", json={"description": "Stargazing telescope guide"})
        assert r.status_code == 200, r.text
        after = await stored_vector(api, "notes/plain")
        expected, content = make_vectors(
            [("notes/plain", "Stargazing telescope guide", "Rewrite {{ text }} more briefly.")]
        )
        assert after != before and after == to_bytes(expected[0])
        # given the content vector it already has, only the name is embedded: the same vectors
        again, kept = make_vectors(
            [("notes/plain", "Stargazing telescope guide", "Rewrite {{ text }} more briefly.")],
            [to_bytes(content[0])],
        )
        assert to_bytes(again[0]) == to_bytes(expected[0]) and to_bytes(kept[0]) == to_bytes(content[0])
        assert "default:notes/plain" in await hits(api, "stargazing telescope", mode="semantic")
        async with api.app.state.runtime.db.transaction(write=True) as session:  # vectors of an older recipe
            await session.execute(
                update(SearchDocument).values(
                    embedding_model="old", embedding=b"\0" * 1024, content_embedding=None
                )
            )
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        refresh = api.app.state.runtime.search_refresh
        assert refresh is not None
        assert await refresh >= 1  # every document (the example prompts' too)
        async with api.app.state.runtime.db.transaction() as session:
            labels = set((await session.execute(select(SearchDocument.embedding_model))).scalars())
        assert labels == {embedding_label(embedder().name)}
        assert await stored_vector(api, "notes/plain") == to_bytes(expected[0])
        assert "default:notes/plain" in await hits(api, "stargazing telescope", mode="semantic")
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def stored_vector(api: Api, name: str) -> bytes:
    async with api.app.state.runtime.db.transaction() as session:
        return (
            await session.execute(
                select(SearchDocument.embedding).where(
                    SearchDocument.prompt_name == name, SearchDocument.latest
                )
            )
        ).scalar_one()


async def test_a_failed_refresh_is_logged_and_does_not_stop_the_server(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background refresh failing (the database gone away, say) leaves the server running and searching
    by words; shutting down afterwards is clean, and the next start tries again."""
    data = tmp_path / "server"
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        async with api.app.state.runtime.db.transaction(write=True) as session:
            await session.execute(
                update(SearchDocument).values(embedding_model="old", content_embedding=None)
            )
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)

    async def broken(db: object) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(lifecycle, "search_refresh_embeddings", broken)
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        refresh = api.app.state.runtime.search_refresh
        assert refresh is not None
        with pytest.raises(RuntimeError, match="went away"):
            await refresh
        r = await api.get("/api/v1/search", params={"q": "sentiment", "mode": "text"})
        assert r.status_code == 200 and r.json()["items"]
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)  # no error from the failed task
    monkeypatch.undo()
    api, client, lifespan = await open_api(db_url, tmp_path, data_dir=data)
    try:
        refresh = api.app.state.runtime.search_refresh
        assert refresh is not None and await refresh >= 1
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
