"""The PostgreSQL backend: jobs in procrastinate's queue, run by any number of ``promptops worker`` processes.

procrastinate (https://procrastinate.readthedocs.io) stores every job as a row in ``procrastinate_jobs`` and
hands it to exactly one worker with ``SELECT ... FOR UPDATE SKIP LOCKED``. We define a single procrastinate
task, ``promptops.job``, whose arguments are ``{"kind", "ref_id"}``; the worker looks the kind up in the
registry and calls its handler. Per job:

* ``queueing_lock = lock = "<kind>:<ref_id>"``: the same job is never queued twice, and never runs twice at once;
* retries with exponential backoff up to ``PROMPTOPS_JOB_MAX_ATTEMPTS`` (a :class:`JobRetryPolicy`);
* a job interrupted by a worker shutdown goes straight back to the queue.

Crash recovery: workers write a heartbeat every ``job_stalled_seconds / 6`` seconds. A job left in ``doing`` by a
worker whose heartbeat is older than ``PROMPTOPS_JOB_STALLED_SECONDS`` is *stalled*; every worker process checks
for stalled jobs when it starts and then periodically, and puts them back in the queue (procrastinate's
``get_stalled_jobs`` + ``retry_job``). On start every kind's pending query is also resubmitted (the queueing lock
makes that a no-op for work that is still queued).

The schema is installed by our Alembic migration ``0004_job_queue``, never by procrastinate's own CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from procrastinate import App, PsycopgConnector
from procrastinate import exceptions as pq_exceptions
from procrastinate import jobs as pq_jobs
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from promptops.config import normalize_database_url
from promptops.db import sync_database_url, utcnow
from promptops.jobs.base import QueueBase, UnknownJobKind, check_job, job_kind, retry_delay
from promptops.jobs.kinds import import_job_modules
from promptops.jobs.lifecycle import worker_id
from promptops.logging import log

if TYPE_CHECKING:
    from promptops.runtime import Runtime

TASK_NAME = "promptops.job"
QUEUE = "promptops"
FETCH_POLL_SECONDS = 1.0


def psycopg_conninfo(database_url: str) -> str:
    """A libpq URL for psycopg from our SQLAlchemy URL (``postgresql+asyncpg://`` ... ``?ssl=require``)."""
    url = sync_database_url(normalize_database_url(database_url))
    if url is None:
        raise ValueError("the PostgreSQL job queue needs a PostgreSQL database URL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def job_lock(kind: str, ref_id: str) -> str:
    return f"{kind}:{ref_id}"


class JobRetryPolicy(BaseRetryStrategy):
    """Errors: exponential backoff up to ``max_attempts`` tries in all. Shutdown interruptions: requeue at once."""

    def __init__(self, max_attempts: int, backoff_seconds: float) -> None:
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds

    def get_retry_decision(self, *, exception: BaseException, job: pq_jobs.Job) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError | pq_exceptions.JobAborted):
            return RetryDecision(retry_at=utcnow())
        if isinstance(exception, UnknownJobKind | pq_exceptions.TaskNotFound):
            return None
        attempt = job.attempts + 1  # attempts counts the tries before this one
        if attempt >= self.max_attempts:
            return None
        delay = timedelta(seconds=retry_delay(self.backoff_seconds, attempt))
        return RetryDecision(retry_at=utcnow() + delay)


class ProcrastinateQueue(QueueBase):
    backend = "procrastinate"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        settings = runtime.settings
        self.stalled_seconds = settings.job_stalled_seconds
        self.connector = PsycopgConnector(
            conninfo=psycopg_conninfo(settings.effective_database_url),
            min_size=1,
            max_size=self.concurrency + 4,
            name="promptops-jobs",
        )
        self.app = App(connector=self.connector)
        self.app.task(
            name=TASK_NAME,
            queue=QUEUE,
            retry=JobRetryPolicy(settings.job_max_attempts, settings.job_retry_backoff_seconds),
        )(self._execute)
        self.worker_name = worker_id()  # the name job rows record as their worker_id
        self._open = False
        self._worker_task: asyncio.Task[None] | None = None
        self._maintenance_task: asyncio.Task[None] | None = None

    async def _execute(self, kind: str, ref_id: str) -> None:
        """The procrastinate task: run the registered handler for ``kind`` on ``ref_id``."""
        handler = job_kind(kind).handler
        await handler(self.runtime, ref_id)

    async def submit(self, kind: str, ref_id: str) -> None:
        check_job(kind, ref_id)
        if not self._open:
            raise RuntimeError("the job queue is not started")
        lock = job_lock(kind, ref_id)
        try:
            job_id = await self._defer_once(kind, ref_id, lock)
        except pq_exceptions.AlreadyEnqueued:
            return
        if job_id is not None:
            log.info("job_queued", kind=kind, ref_id=ref_id, job_id=job_id)

    async def _defer_once(self, kind: str, ref_id: str, lock: str) -> int | None:
        """Queue the job unless a copy is already queued or running; the new job's id, or None."""
        async with self.connector.pool.connection() as conn, conn.transaction():
            # procrastinate's queueing lock only covers *queued* jobs. A copy queued while the job runs would
            # make the running one's retry collide with it, so: one submitter per job at a time (advisory
            # lock), and no new copy while one is queued or running (a single check sees it in either state;
            # a stalled one is requeued by the stalled-job check).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
            cursor = await conn.execute(
                "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = %s AND status IN ('todo', 'doing')",
                (lock,),
            )
            if await cursor.fetchone() is not None:
                return None
            deferrer = self.app.configure_task(
                TASK_NAME,
                lock=lock,
                queueing_lock=lock,
                queue=QUEUE,
                task_kwargs={"kind": kind, "ref_id": ref_id},
                connection=conn,
            )
            return await deferrer.defer_async()

    async def start(self) -> None:
        import_job_modules()
        await self.app.open_async()
        self._open = True
        if self.run_workers:
            await self.recover_stalled()
        await self.resume_pending()
        if self.run_workers:
            self._worker_task = asyncio.get_running_loop().create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    name=self.worker_name,
                    concurrency=self.concurrency,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=self.grace,
                    update_heartbeat_interval=max(0.5, self.stalled_seconds / 6),
                    stalled_worker_timeout=self.stalled_seconds,
                    delete_jobs="successful",
                    # New jobs arrive by LISTEN/NOTIFY at once; polling catches retries coming due (no notify).
                    listen_notify=True,
                    fetch_job_polling_interval=FETCH_POLL_SECONDS,
                ),
                name="procrastinate-worker",
            )
            self._maintenance_task = asyncio.get_running_loop().create_task(
                self._maintain(), name="procrastinate-stalled-jobs"
            )
        log.info("job_queue_started", backend=self.backend, workers=self.run_workers, name=self.worker_name)

    async def stop(self) -> None:
        maintenance, self._maintenance_task = self._maintenance_task, None
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        worker, self._worker_task = self._worker_task, None
        if worker is not None:
            # procrastinate's documented way to stop an embedded worker: cancel it; it then waits up to
            # shutdown_graceful_timeout for running jobs, cancels the rest (requeued) and unregisters itself.
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._open:
            self._open = False
            await self.app.close_async()

    @property
    def worker_alive(self) -> bool:
        return self._worker_task is not None and not self._worker_task.done()

    async def wait_worker(self) -> None:
        """Return when the embedded worker stops on its own (it failed); used by ``promptops worker``."""
        if self._worker_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._worker_task)

    async def recover_stalled(self) -> int:
        """Requeue jobs whose worker stopped sending heartbeats (killed, lost); fail those out of attempts."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.stalled_seconds)
        count = 0
        for job in stalled:
            args: dict[str, Any] = job.task_kwargs
            fields = {"job_id": job.id, "kind": args.get("kind"), "ref_id": args.get("ref_id")}
            try:
                if job.attempts + 1 >= self.max_attempts:
                    await manager.finish_job(job, status=pq_jobs.Status.FAILED, delete_job=False)
                    log.error("job_stalled_failed", attempts=job.attempts + 1, **fields)
                    continue
                try:
                    await manager.retry_job(job)
                except pq_exceptions.UniqueViolation:
                    # A fresh copy of the same job is already queued: it carries on, this one is closed.
                    await manager.finish_job(job, status=pq_jobs.Status.FAILED, delete_job=False)
            except pq_exceptions.ConnectorException:
                # Another worker recovered (or finished) it first.
                continue
            count += 1
            log.warning("job_stalled_requeued", **fields)
        await manager.prune_stalled_workers(self.stalled_seconds)
        return count

    async def _maintain(self) -> None:
        interval = max(1.0, self.stalled_seconds / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recover_stalled()
            except Exception:
                log.exception("job_stalled_check_failed")
