"""The app under test: settings, a fresh database per test (SQLite and PostgreSQL), an httpx client bound to the
app acting as a given key. ``tests/conftest.py`` turns these into fixtures."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from promptops.app import create_app
from promptops.config import Settings
from promptops.migrate import upgrade

PG_URL = os.environ.get("PROMPTOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


IN_CI = os.environ.get("CI", "").lower() == "true"


ADMIN_KEY = "po_adm1n000_" + "A" * 40


ADMIN_PASSWORD = "admin-password-123"


ADMIN_EMAIL = "admin@localhost"


RUN_ID = uuid.uuid4().hex[:8]


_pg_state: dict[str, Any] = {}


def _pg_base() -> tuple[str, str]:
    """(server URL without database, maintenance database name)."""
    base, _, dbname = PG_URL.rpartition("/")
    return base, dbname


async def _pg_exec(sql: str, database: str | None = None) -> None:
    base, maintenance = _pg_base()
    conn = await asyncpg.connect(f"{base}/{database or maintenance}", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_template() -> str:
    if "template" in _pg_state:
        return _pg_state["template"]
    if "error" in _pg_state:
        raise _pg_state["error"]
    name = f"promptops_tpl_{RUN_ID}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        _pg_state["error"] = exc
        raise
    base, _ = _pg_base()
    upgrade(f"{base}/{name}")
    _pg_state["template"] = name
    return name


def new_database(kind: str, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated database URL of ``kind`` (sqlite | postgresql)."""
    if kind == "sqlite":
        target = tmp_path / f"db-{uuid.uuid4().hex[:6]}.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    try:
        template = _postgres_template()
    except Exception as exc:
        message = f"PostgreSQL not reachable at {PG_URL}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    base, _ = _pg_base()
    free: list[str] = _pg_state.setdefault("free", [])
    if free:
        return f"{base}/{free.pop()}"
    name = f"promptops_t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    _pg_state.setdefault("created", []).append(name)
    return f"{base}/{name}"


async def _truncate_all(database: str) -> None:
    base, _ = _pg_base()
    conn = await asyncpg.connect(f"{base}/{database}", timeout=5)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            if r["tablename"] != "alembic_version"
        ]
        if tables:
            await conn.execute(f"TRUNCATE TABLE {', '.join(chr(34) + t + chr(34) for t in tables)} CASCADE")
    finally:
        await conn.close()


def release_database(url: str) -> None:
    """Empty a PostgreSQL test database and keep it for the next test (dropping one costs a checkpoint)."""
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    try:
        asyncio.run(_truncate_all(name))
    except Exception as exc:  # a broken database is simply not reused
        print(f"not reusing test database {name}: {exc}")
        return
    _pg_state.setdefault("free", []).append(name)


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "data_dir": tmp_path / "data",
        "bootstrap_admin_key": ADMIN_KEY,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        "bootstrap_admin_email": ADMIN_EMAIL,
        "log_json": True,
        # The built web UI (web/dist) is served only where a test asks for it (tests/ops/test_web.py): a test
        # app must not depend on whether `make web` ran.
        "web_dir": tmp_path / "no-web-ui",
        # Periodic tasks run only where a test drives them (promptops.jobs.periodic.run_now / run_due) or asks
        # for the loop (scheduler=True): a round firing in the middle of a test would race with its requests.
        "scheduler": False,
    }
    values.update(overrides)
    return Settings(**values)


class Api:
    """A test client bound to the app, with helpers to act as a given key."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def request(
        self, method: str, url: str, key: str | None = ADMIN_KEY, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is not None:
            headers.update(self.auth(key))
        return await self.client.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, key, **kw)

    async def post(self, url: str, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, key, **kw)

    async def put(self, url: str, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return await self.request("PUT", url, key, **kw)

    async def patch(self, url: str, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", url, key, **kw)

    async def delete(self, url: str, key: str | None = ADMIN_KEY, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, key, **kw)

    async def make_key(self, role: str, name: str | None = None, key: str = ADMIN_KEY) -> dict[str, Any]:
        r = await self.post("/api/v1/api-keys", key, json={"name": name or f"{role}-key", "role": role})
        assert r.status_code == 201, r.text
        return r.json()


async def open_api(db_url: str, tmp_path: Path, **overrides: Any) -> tuple[Api, Any, Any]:
    app = create_app(make_settings(db_url, tmp_path, **overrides), migrate=False)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return Api(client, app), client, lifespan
