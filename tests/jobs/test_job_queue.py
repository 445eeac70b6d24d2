"""Durable jobs through the real backends: in-process on SQLite, procrastinate (real worker, real tables) on
PostgreSQL. The test kind ``test-steps`` (job_support.py) keeps its progress in files, like a feature keeps
its progress in tables, so "resumed" means "the steps already done were not done again".
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from promptops.config import Settings
from promptops.jobs.pg import psycopg_conninfo
from promptops.migrate import downgrade, upgrade
from promptops.runtime import Runtime
from tests.support.app import new_database, open_api, release_database
from tests.support.job_support import KIND, create_job, job_dir, lines, wait_for

FAST = {"job_retry_backoff_seconds": 0, "job_shutdown_grace_seconds": 0}
ROOT = Path(__file__).resolve().parents[2]  # where the `tests` package is importable from


@asynccontextmanager
async def running_app(db_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Runtime]:
    """The app's lifespan (migrated database, job queue started) on ``db_url``; its runtime."""
    api, client, lifespan = await open_api(db_url, tmp_path, **{**FAST, **overrides})
    try:
        yield api.app.state.runtime
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def pg_fetch(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def queue_rows(db_url: str, ref_id: str) -> list[str]:
    rows = await pg_fetch(
        db_url,
        "SELECT status::text AS status FROM procrastinate_jobs WHERE queueing_lock = $1 ORDER BY id",
        f"{KIND}:{ref_id}",
    )
    return [r["status"] for r in rows]


async def settled(runtime: Runtime, db_url: str, ref_id: str, timeout: float = 60.0) -> None:
    """Wait until the queue holds nothing to do for ``ref_id`` (the timeout only guards against a hang)."""
    if runtime.jobs.backend == "inprocess":
        await asyncio.wait_for(runtime.jobs.join(), timeout)  # type: ignore[attr-defined]
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while {"todo", "doing"} & set(await queue_rows(db_url, ref_id)):
        assert loop.time() < deadline, f"job {ref_id} still queued: {await queue_rows(db_url, ref_id)}"
        await asyncio.sleep(0.05)


def is_pg(db_url: str) -> bool:
    return db_url.startswith("postgresql")


async def test_submitted_job_runs_on_the_configured_backend(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_app(db_url, tmp_path) as runtime:
        assert runtime.jobs.backend == ("procrastinate" if is_pg(db_url) else "inprocess")
        create_job(data, "j1", steps=3)
        await runtime.jobs.submit(KIND, "j1")
        await wait_for(job_dir(data, "j1") / "finished", "the job to finish")
        await settled(runtime, db_url, "j1")
    assert lines(job_dir(data, "j1") / "done") == ["0", "1", "2"]
    assert len(lines(job_dir(data, "j1") / "calls")) == 1
    if is_pg(db_url):
        assert await queue_rows(db_url, "j1") == []  # succeeded jobs are deleted from the queue


async def test_unknown_kind_and_bad_id_are_refused(db_url: str, tmp_path: Path) -> None:
    async with running_app(db_url, tmp_path) as runtime:
        with pytest.raises(LookupError, match="no-such-kind"):
            await runtime.jobs.submit("no-such-kind", "x")
        with pytest.raises(ValueError, match="ref_id"):
            await runtime.jobs.submit(KIND, "")


async def test_a_failing_handler_is_retried_until_it_succeeds(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_app(db_url, tmp_path, job_max_attempts=3) as runtime:
        create_job(data, "flaky", steps=3, fail_calls=2)
        await runtime.jobs.submit(KIND, "flaky")
        await wait_for(job_dir(data, "flaky") / "finished", "the job to finish after two failures")
    assert len(lines(job_dir(data, "flaky") / "calls")) == 3
    assert lines(job_dir(data, "flaky") / "done") == ["0", "1", "2"]


async def test_a_job_out_of_attempts_fails_and_the_next_start_resumes_it(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = create_job(data, "broken", steps=2, fail_calls=100)
    async with running_app(db_url, tmp_path, job_max_attempts=2) as runtime:
        await runtime.jobs.submit(KIND, "broken")
        await settled(runtime, db_url, "broken")
        assert len(lines(path / "calls")) == 2
        assert not (path / "finished").exists()
        if is_pg(db_url):
            assert await queue_rows(db_url, "broken") == ["failed"]
    create_job(data, "broken", steps=2)  # the cause is fixed
    async with running_app(db_url, tmp_path, job_max_attempts=2):
        await wait_for(path / "finished", "the pending query to resume the failed job")
    assert lines(path / "done") == ["0", "1"]


async def test_stop_mid_job_then_restart_resumes_where_it_stopped(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = create_job(data, "long", steps=4, block_at=2)
    async with running_app(db_url, tmp_path) as runtime:
        await runtime.jobs.submit(KIND, "long")
        await wait_for(path / "blocked", "the job to reach step 2")
    # stopping the app cancelled the handler in the middle of the job
    assert (path / "cancelled").exists()
    assert not (path / "finished").exists()
    assert lines(path / "done") == ["0", "1"]
    if is_pg(db_url):
        assert await queue_rows(db_url, "long") == ["todo"]  # back in the queue, not lost
    (path / "release").write_text("go")
    async with running_app(db_url, tmp_path):
        await wait_for(path / "finished", "the restarted app to resume the job")
    assert lines(path / "done") == ["0", "1", "2", "3"]  # steps 0 and 1 were not run again
    assert len(lines(path / "calls")) == 2


async def test_concurrency_bound_holds_jobs_back(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, second = create_job(data, "a", steps=1, block_at=0), create_job(data, "b", steps=1, block_at=0)
    async with running_app(db_url, tmp_path, job_concurrency=1) as runtime:
        await runtime.jobs.submit(KIND, "a")
        await wait_for(first / "blocked", "job a to start")
        await runtime.jobs.submit(KIND, "b")
        # b is queued behind a: submitting it again does not queue a second copy
        await runtime.jobs.submit(KIND, "b")
        if is_pg(db_url):
            assert await queue_rows(db_url, "b") == ["todo"]
        assert not (second / "calls").exists()
        (first / "release").write_text("go")
        (second / "release").write_text("go")
        await wait_for(second / "finished", "job b to run once a is done")
        await settled(runtime, db_url, "b")
    assert (first / "finished").exists()
    assert len(lines(second / "calls")) in (1, 2)  # a resubmission during a run may run it once more
    assert lines(second / "done") == ["0"]


# --- PostgreSQL: workers as separate processes, crash recovery, the `promptops worker` command ----------


@pytest.fixture
def pg_url(tmp_path: Path, sqlite_template: Path) -> Any:
    url = new_database("postgresql", tmp_path, sqlite_template)
    yield url
    release_database(url)


def worker_env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTOPS_")}
    env.update(
        PROMPTOPS_DATABASE_URL=db_url,
        PROMPTOPS_DATA_DIR=str(tmp_path / "data"),
        PROMPTOPS_LOG_JSON="true",
        PROMPTOPS_JOB_SHUTDOWN_GRACE_SECONDS="0",
        PROMPTOPS_JOB_RETRY_BACKOFF_SECONDS="0",
        **extra,
    )
    return env


def promptops_cmd() -> str:
    return str(Path(sys.executable).parent / "promptops")


async def wait_rows(
    db_url: str, sql: str, want: bool, what: str, proc: subprocess.Popen[str] | None = None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while bool(await pg_fetch(db_url, sql)) != want:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"worker exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def test_promptops_worker_runs_until_sigterm_and_unregisters(pg_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [promptops_cmd(), "worker", "--concurrency", "2"],
        env=worker_env(pg_url, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_rows(pg_url, "SELECT id FROM procrastinate_workers", True, "the worker to register", proc)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "worker_stopped" in err
    assert await pg_fetch(pg_url, "SELECT id FROM procrastinate_workers") == []


def test_promptops_worker_refuses_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    url = new_database("sqlite", tmp_path, sqlite_template)
    proc = subprocess.run(
        [promptops_cmd(), "worker"], env=worker_env(url, tmp_path), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "needs PostgreSQL" in proc.stderr


async def test_promptops_worker_refuses_an_unmigrated_database(pg_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(downgrade, pg_url, "0003")
    proc = await asyncio.to_thread(
        subprocess.run,
        [promptops_cmd(), "worker"],
        env=worker_env(pg_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    await asyncio.to_thread(upgrade, pg_url)
    assert proc.returncode == 1
    assert "promptops serve" in proc.stderr


async def test_job_of_a_killed_worker_is_requeued_on_restart(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = create_job(data, "crash", steps=3, block_at=1)
    # An API-only replica queues the job; no worker runs in it.
    async with running_app(pg_url, tmp_path, run_workers=False) as api_only:
        await api_only.jobs.submit(KIND, "crash")
    assert await queue_rows(pg_url, "crash") == ["todo"]
    assert not (path / "calls").exists()

    # A separate worker process (the `promptops worker` command, with the test kind loaded) takes it ...
    code = "import tests.support.job_support; from promptops.cli.main import main; main()"
    env = worker_env(
        pg_url, tmp_path, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_for(path / "blocked", "the worker process to reach step 1")
        proc.kill()  # ... and dies mid-job (SIGKILL: no clean-up at all)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert await queue_rows(pg_url, "crash") == ["doing"]
    assert lines(path / "done") == ["0"]
    # Let the dead worker's heartbeat age past PROMPTOPS_JOB_STALLED_SECONDS without waiting for it.
    await pg_fetch(pg_url, "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")

    (path / "release").write_text("go")
    async with running_app(pg_url, tmp_path) as runtime:
        await wait_for(path / "finished", "the restarted worker to retry the stalled job")
        await settled(runtime, pg_url, "crash")
    assert lines(path / "done") == ["0", "1", "2"]
    assert len(lines(path / "calls")) == 2
    assert await queue_rows(pg_url, "crash") == []
    assert await pg_fetch(pg_url, "SELECT id FROM procrastinate_workers") == []


async def test_stalled_job_out_of_attempts_is_failed_not_requeued(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = create_job(data, "doomed", steps=1)
    async with running_app(pg_url, tmp_path, run_workers=False) as api_only:
        await api_only.jobs.submit(KIND, "doomed")
        # a worker that took the job and vanished, on its last attempt
        manager = api_only.jobs.app.job_manager  # type: ignore[attr-defined]
        worker_id = await manager.register_worker()
        job = await manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None
    await pg_fetch(pg_url, "UPDATE procrastinate_jobs SET attempts = 4")
    await pg_fetch(pg_url, "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")
    async with running_app(pg_url, tmp_path, job_max_attempts=5) as runtime:
        await settled(runtime, pg_url, "doomed")
        # the pending query still sees unfinished work and queues it afresh: the domain state decides
        await wait_for(path / "finished", "the pending query to run the job again")
    assert "failed" in await queue_rows(pg_url, "doomed")


# --- migrations and configuration --------------------------------------------------------------------


async def _procrastinate_objects(url: str) -> set[str]:
    rows = await pg_fetch(
        url,
        """
        SELECT relname AS name FROM pg_class WHERE relname LIKE 'procrastinate%' AND relkind = 'r'
        UNION SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%'
        UNION SELECT typname FROM pg_type WHERE typname LIKE 'procrastinate%' AND typtype IN ('e', 'c')
        """,
    )
    return {r["name"] for r in rows}


async def test_migration_0004_installs_and_removes_the_queue_schema(pg_url: str) -> None:
    at_head = await _procrastinate_objects(pg_url)
    assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_job_status"} <= at_head
    assert "procrastinate_fetch_job_v2" in at_head
    await asyncio.to_thread(downgrade, pg_url, "0003")
    assert await _procrastinate_objects(pg_url) == set()
    await asyncio.to_thread(upgrade, pg_url)
    assert await _procrastinate_objects(pg_url) == at_head


def test_backend_follows_the_database_and_conninfo_is_libpq() -> None:
    pg = "postgresql+asyncpg://user:p%40ss@db.example:5433/promptops?ssl=require&command_timeout=5"
    assert Settings(database_url=pg).effective_job_backend == "procrastinate"
    assert Settings(database_url="sqlite:///x.db").effective_job_backend == "inprocess"
    assert Settings(database_url=pg, job_backend="inprocess").effective_job_backend == "inprocess"
    assert psycopg_conninfo(pg) == "postgresql://user:p%40ss@db.example:5433/promptops?sslmode=require"
