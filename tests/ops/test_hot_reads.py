"""The hot read path (Database.read): API key lookups and uncached resolves on reader threads with a sync driver.

Checked on SQLite and PostgreSQL through the public API and the Database itself: a read sees every write
committed before it, errors keep their 4xx meaning, a dropped PostgreSQL connection is replaced without the
caller noticing, and the API key cache has its own TTL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from promptops.db import Database, sync_database_url
from promptops.registry.models import Prompt
from tests.support.app import open_api


def prompt_body(name: str, template: str = "Hi {{ who }}", **extra: Any) -> dict[str, Any]:
    return {"name": name, "template": template, "variables": [{"name": "who"}], **extra}


async def test_uncached_resolve_sees_every_committed_write(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(
        db_url, tmp_path, resolve_cache_ttl_seconds=0, api_key_cache_ttl_seconds=0
    )
    try:
        created = await api.post("/api/v1/prompts", json=prompt_body("hot/one", tags=["b", "a"]))
        assert created.status_code == 201, created.text
        for number in range(2, 5):
            r = await api.post(
                "/api/v1/prompts/hot/one/versions",
                json={
                    "template": f"v{number} {{{{ who }}}}",
                    "variables": [{"name": "who"}],
                    "labels": ["staging"],
                },
            )
            assert r.status_code == 201, r.text
            # Read right after the write, on the reader thread: the new version must be there.
            got = await api.get("/api/v1/prompts/hot/one@staging")
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["version"]["version"] == number
            assert body["prompt"]["labels"] == {"staging": number}
            assert body["prompt"]["tags"] == ["a", "b"]
            assert body["resolvedBy"] == "label:staging"
        latest = (await api.get("/api/v1/prompts/hot/one")).json()
        assert latest["version"]["version"] == 4 and latest["resolvedBy"] == "label:latest"
        assert sorted(latest["version"]["labels"]) == ["latest", "staging"]
        by_number = (await api.get("/api/v1/prompts/hot/one@2")).json()
        assert by_number["version"]["version"] == 2 and by_number["resolvedBy"] == "version:2"
        by_id = await api.get(f"/api/v1/prompts/{created.json()['prompt']['id']}?version=1")
        assert by_id.status_code == 200 and by_id.json()["version"]["template"] == "Hi {{ who }}"
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_uncached_resolve_errors_stay_4xx(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(db_url, tmp_path, resolve_cache_ttl_seconds=0)
    try:
        assert (await api.post("/api/v1/prompts", json=prompt_body("hot/two"))).status_code == 201
        cases = {
            "/api/v1/prompts/hot/missing@production": (404, "prompt_not_found"),
            "/api/v1/prompts/hot/two@production": (404, "label_not_found"),
            "/api/v1/prompts/hot/two@7": (404, "version_not_found"),
            "/api/v1/prompts/hot/two?label=staging&version=1": (422, "ambiguous_selector"),
        }
        for url, (status, code) in cases.items():
            r = await api.get(url)
            assert (r.status_code, r.json()["code"]) == (status, code), (url, r.text)
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_api_key_cache_has_its_own_ttl(db_url: str, tmp_path: Path) -> None:
    """Keys stay cached while resolves are not; revoking still takes effect at once on this server."""
    api, client, lifespan = await open_api(
        db_url, tmp_path, resolve_cache_ttl_seconds=0, api_key_cache_ttl_seconds=60
    )
    try:
        runtime = api.app.state.runtime
        assert runtime.api_key_cache.ttl == 60
        made = await api.make_key("Viewer", "cached")
        assert (await api.get("/api/v1/prompts", key=made["key"])).status_code == 200
        revoked = await api.delete(f"/api/v1/api-keys/{made['id']}")
        assert revoked.status_code in (200, 204), revoked.text
        r = await api.get("/api/v1/prompts", key=made["key"])
        assert (r.status_code, r.json()["code"]) == (401, "api_key_revoked")
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_read_survives_a_dropped_postgres_connection(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: the server ends the reader's connection")
    db = Database(db_url)
    try:

        def backend_pid(session: Session) -> int:
            return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())

        pids = {await db.read(backend_pid) for _ in range(30)}
        async with db.transaction() as session:
            for pid in pids:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # Every pooled reader connection is dead now; each read still answers.
        results = await asyncio.gather(*(db.read(backend_pid) for _ in range(20)))
        assert not set(results) & pids
    finally:
        await db.dispose()


async def test_sqlite_read_runs_off_the_event_loop_thread(db_url: str) -> None:
    """SQLite reads are CPU work in this process: they run on reader threads, never on the event loop."""
    import threading

    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL reads are network waits on the event loop (asyncpg)")

    db = Database(db_url)
    try:
        loop_thread = threading.get_ident()

        def where(session: Session) -> tuple[int, int]:
            count = len(session.execute(select(Prompt.id)).all())
            return threading.get_ident(), count

        thread, count = await db.read(where)
        assert thread != loop_thread and count >= 0
    finally:
        await db.dispose()


def test_sync_database_url_forms() -> None:
    sqlite = sync_database_url("sqlite+aiosqlite:///tmp/x.db")
    assert sqlite is not None and sqlite.render_as_string() == "sqlite:///tmp/x.db"
    assert sync_database_url("sqlite+aiosqlite://") is None
    assert sync_database_url("sqlite+aiosqlite:///:memory:") is None
    url = sync_database_url(
        "postgresql+asyncpg://u:p@db:5432/app?ssl=require&prepared_statement_cache_size=0&application_name=x"
    )
    assert url is not None
    assert url.drivername == "postgresql+psycopg"
    assert dict(url.query) == {"sslmode": "require", "application_name": "x"}


async def test_in_memory_sqlite_reads_through_the_async_session() -> None:
    db = Database("sqlite+aiosqlite://")
    try:
        assert await db.read(lambda session: session.execute(text("SELECT 41 + 1")).scalar_one()) == 42
    finally:
        await db.dispose()


async def test_cached_answer_follows_every_label_move_and_new_version(db_url: str, tmp_path: Path) -> None:
    """With the cache on, the finished answer is kept with the entry; every registry write replaces it."""
    api, client, lifespan = await open_api(db_url, tmp_path, resolve_cache_ttl_seconds=300)
    try:
        assert (await api.post("/api/v1/prompts", json=prompt_body("hot/cached"))).status_code == 201
        first = await api.get("/api/v1/prompts/hot/cached")
        assert first.json()["version"]["version"] == 1
        assert (await api.get("/api/v1/prompts/hot/cached")).content == first.content  # served from the cache
        r = await api.post(
            "/api/v1/prompts/hot/cached/versions",
            json={"template": "v2 {{ who }}", "variables": [{"name": "who"}], "labels": ["staging"]},
        )
        assert r.status_code == 201, r.text
        second = (await api.get("/api/v1/prompts/hot/cached")).json()
        assert second["version"]["version"] == 2 and second["prompt"]["labels"] == {"staging": 2}
        moved = await api.put("/api/v1/prompts/hot/cached/labels/staging", json={"version": 1})
        assert moved.status_code == 200, moved.text
        staged = (await api.get("/api/v1/prompts/hot/cached@staging")).json()
        assert staged["version"]["version"] == 1 and staged["prompt"]["labels"] == {"staging": 1}
        tagged = await api.patch("/api/v1/prompts/hot/cached", json={"tags": ["fresh"]})
        assert tagged.status_code == 200, tagged.text
        assert (await api.get("/api/v1/prompts/hot/cached@staging")).json()["prompt"]["tags"] == ["fresh"]
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
