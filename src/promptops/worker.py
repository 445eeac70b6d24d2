"""``promptops worker``: a process that only runs background jobs (procrastinate, PostgreSQL).

It builds the same runtime as the server (database, model caller, run recorder, job kinds) without serving
HTTP, checks that the database is migrated, runs a procrastinate worker until SIGTERM or SIGINT, then stops
gracefully: running jobs get ``PROMPTOPS_JOB_SHUTDOWN_GRACE_SECONDS`` to finish and are requeued otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from promptops.config import Settings
from promptops.jobs.pg import ProcrastinateQueue
from promptops.lifecycle import build_runtime, running
from promptops.logging import log
from promptops.migrate import alembic_config


class WorkerError(Exception):
    """The worker cannot run (wrong database, unmigrated schema); the message says what to do."""


async def migration_state(database_url: str) -> tuple[set[str], set[str]]:
    """(revisions the database is at, head revisions of the code)."""
    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:

            def current(sync_conn: Connection) -> set[str]:
                return set(MigrationContext.configure(sync_conn).get_current_heads())

            at = await conn.run_sync(current)
    finally:
        await engine.dispose()
    return at, heads


async def run_worker(settings: Settings, concurrency: int | None = None) -> int:
    """Run job workers until a stop signal; the exit status (0 after a clean stop)."""
    url = settings.effective_database_url
    if not url.startswith("postgresql"):
        raise WorkerError(
            "promptops worker needs PostgreSQL (PROMPTOPS_DATABASE_URL); "
            "with the embedded SQLite database, jobs run inside `promptops serve`"
        )
    at, heads = await migration_state(url)
    if at != heads:
        raise WorkerError(
            f"the database is at migration {sorted(at) or 'none'}, this code needs {sorted(heads)}; "
            "start `promptops serve` once (it migrates on start) and then the workers"
        )
    update: dict[str, object] = {"run_workers": True, "job_backend": "procrastinate", "bootstrap": False}
    if concurrency is not None:
        update["job_concurrency"] = concurrency
    runtime = build_runtime(settings.model_copy(update=update))
    queue = runtime.jobs
    if not isinstance(queue, ProcrastinateQueue):
        raise WorkerError(f"promptops worker needs the procrastinate job backend, not {queue.backend!r}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    try:
        async with running(runtime, migrate=False):
            log.info("worker_started", concurrency=runtime.settings.job_concurrency)
            stopped = loop.create_task(stop.wait())
            died = loop.create_task(queue.wait_worker())
            await asyncio.wait({stopped, died}, return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                log.error("worker_died", hint="see the error logged above; the process exits to be restarted")
                status = 1
            for task in (stopped, died):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            log.info("worker_stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("worker_stopped", status=status)
    return status
