"""The embedded backend: jobs run as asyncio tasks inside the server process (the SQLite default).

Nothing about a job is stored here: durability comes from the handler's own domain state plus the pending
queries, which :meth:`InProcessQueue.start` runs to resume whatever a stopped or crashed process left unfinished.
At most ``PROMPTOPS_JOB_CONCURRENCY`` handlers run at once; the rest wait their turn. A handler that raises
is logged and called again after an exponential backoff, up to ``PROMPTOPS_JOB_MAX_ATTEMPTS`` times in all.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from promptops.jobs.base import (
    QueueBase,
    UnknownJobKind,
    cancel_and_wait,
    check_job,
    job_kind,
    retry_delay,
)
from promptops.jobs.kinds import import_job_modules
from promptops.logging import log

if TYPE_CHECKING:
    from promptops.runtime import Runtime

Key = tuple[str, str]


class InProcessQueue(QueueBase):
    backend = "inprocess"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.backoff = runtime.settings.job_retry_backoff_seconds
        self._slots = asyncio.Semaphore(self.concurrency)
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._rerun: set[Key] = set()
        self._started = False
        self._stopping = False

    @property
    def active(self) -> list[Key]:
        """Jobs queued or running right now (diagnostics and tests)."""
        return [key for key, task in self._tasks.items() if not task.done()]

    async def submit(self, kind: str, ref_id: str) -> None:
        check_job(kind, ref_id)
        key = (kind, ref_id)
        if not self.run_workers:
            # Nothing runs jobs in this process; the work waits in the domain state for a process that does.
            log.info("job_deferred_no_workers", kind=kind, ref_id=ref_id)
            return
        if self._stopping:
            # The work is recorded in the domain state; the next start's pending query picks it up.
            log.warning("job_not_started_shutting_down", kind=kind, ref_id=ref_id)
            return
        task = self._tasks.get(key)
        if task is not None and not task.done():
            # Already queued or running: run once more afterwards so a change made now is not missed.
            self._rerun.add(key)
            return
        self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"job {kind}:{ref_id}")

    async def start(self) -> None:
        import_job_modules()
        self._stopping = False
        self._started = True
        if not self.run_workers:
            log.warning("job_workers_disabled", backend=self.backend)
            return
        await self.resume_pending()

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        await cancel_and_wait(tasks, self.grace)
        self._tasks.clear()
        self._rerun.clear()
        self._started = False

    async def join(self) -> None:
        """Wait until no job is queued or running (tests, ``--wait`` style callers)."""
        while True:
            tasks = [t for t in self._tasks.values() if not t.done()]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, key: Key) -> None:
        kind, ref_id = key
        try:
            while True:
                self._rerun.discard(key)
                await self._attempts(kind, ref_id)
                if key not in self._rerun or self._stopping:
                    return
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def _attempts(self, kind: str, ref_id: str) -> None:
        for attempt in range(1, self.max_attempts + 1):
            async with self._slots:
                try:
                    handler = job_kind(kind).handler
                    log.info("job_started", kind=kind, ref_id=ref_id, attempt=attempt)
                    await handler(self.runtime, ref_id)
                except asyncio.CancelledError:
                    log.info("job_interrupted", kind=kind, ref_id=ref_id, attempt=attempt)
                    raise
                except UnknownJobKind:
                    log.exception("job_failed", kind=kind, ref_id=ref_id, attempt=attempt, final=True)
                    return
                except Exception:
                    final = attempt >= self.max_attempts
                    log.exception("job_failed", kind=kind, ref_id=ref_id, attempt=attempt, final=final)
                    if final:
                        return
                else:
                    log.info("job_succeeded", kind=kind, ref_id=ref_id, attempt=attempt)
                    return
            # Back off outside the concurrency slot so other jobs can run meanwhile.
            await asyncio.sleep(retry_delay(self.backoff, attempt))
