"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``PROMPTOPS_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
A template database is migrated once per run and each test gets a fresh copy (``CREATE DATABASE ... TEMPLATE``);
SQLite tests copy a migrated template file. When PostgreSQL does not answer, its tests are skipped with a
notice, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from promptops.migrate import upgrade

# The helpers in tests/support assert too: pytest rewrites their asserts (call before they are imported).
pytest.register_assert_rewrite("tests.support")

# fixtures shared by test modules in several folders (a killable server; a live server and a logged-in CLI)
pytest_plugins = ["tests.support.server_process", "tests.support.cli_support"]

# One outcome per commit, locally and in CI: the examples are derived from each test (derandomize, which also
# turns the example database off), and nothing depends on how fast this machine is right now (no deadline, no
# too_slow health check). A failure prints the blob that replays it (@reproduce_failure).
settings.register_profile(
    "promptops",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("promptops")

# Settings read PROMPTOPS_* variables: one left in a developer's shell (PROMPTOPS_JOB_BACKEND, PROMPTOPS_LOG_FORMAT,
# PROMPTOPS_LOCAL_QUEUE_TIMEOUT_SECONDS, ...) would make a local run differ from CI. Tests set what they need.
for _name in [n for n in os.environ if n.startswith("PROMPTOPS_") and not n.startswith("PROMPTOPS_TEST_")]:
    del os.environ[_name]

from tests.support.app import (  # noqa: E402 (after the environment is cleaned)
    Api,
    _pg_exec,
    _pg_state,
    new_database,
    open_api,
    release_database,
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_databases() -> Iterator[None]:
    yield
    for name in [*_pg_state.get("created", []), _pg_state.get("template")]:
        if name:
            try:
                asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception as exc:  # cleanup must not hide test results
                print(f"could not drop test database {name}: {exc}")


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite database, for slow tests about something else than the database (the local model)."""
    return new_database("sqlite", tmp_path, sqlite_template)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    url = new_database(request.param, tmp_path, sqlite_template)
    yield url
    release_database(url)


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on a fresh database, bootstrapped with the known admin key and the example prompts."""
    api_, client, lifespan = await open_api(db_url, tmp_path)
    try:
        yield api_
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that configure logging (level, handlers) must not change it for the tests after them."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
