"""Group commit for runs: many concurrent calls share one write transaction.

A caller's run is acknowledged (its id returned) only after the transaction holding it has committed, so an
acknowledged run survives a crash; batching keeps that cost to one commit per batch instead of one per call.

A job that stores its own results can take the runs over instead (:func:`collect_runs`): inside that context
:meth:`RunRecorder.record` hands each run to the job's list and returns at once, and the job writes the runs in
the same transaction as the results that name them (so a crash loses both or neither, and the work is redone).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from promptops.db import Database
from promptops.logging import log
from promptops.runs.models import Run
from promptops.runs.rollup import store_runs

MAX_BATCH = 500

_collector: ContextVar[list[Run] | None] = ContextVar("promptops_run_collector", default=None)


@contextlib.contextmanager
def collect_runs() -> Iterator[list[Run]]:
    """Within this context (and the tasks it starts) recorded runs are appended to the yielded list instead of
    being committed; the caller must store them (with whatever they belong to) in one of its transactions."""
    runs: list[Run] = []
    token = _collector.set(runs)
    try:
        yield runs
    finally:
        _collector.reset(token)


class RunRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[tuple[Run, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="run-recorder")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pending:
            await self._flush()

    async def record(self, run: Run) -> None:
        """Store ``run``; returns once it is committed (or, inside :func:`collect_runs`, once collected)."""
        collected = _collector.get()
        if collected is not None:
            collected.append(run)
            return
        if self._task is None or self._task.done():
            async with self.db.transaction(write=True) as session:
                await store_runs(session, [run])
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((run, future))
        self._wake.set()
        await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            async with self.db.transaction(write=True) as session:
                await store_runs(session, [run for run, _ in batch])
        except Exception as exc:
            log.error("run_recording_failed", runs=len(batch), error_type=type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        for _, future in batch:
            if not future.done():
                future.set_result(None)
