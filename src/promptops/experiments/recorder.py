"""Exposures, recorded off the resolve path: kept in memory and written in bulk.

:meth:`ExposureRecorder.record` only puts the (experiment, unit) pair in a dict and returns; a background task
writes the pending pairs every :data:`FLUSH_DELAY` seconds (or at once when :data:`MAX_BATCH` are waiting) in
one ``INSERT ... ON CONFLICT DO NOTHING`` per batch. A unit seen recently in this process is not queued again.
Exposures still in memory when a process is killed are lost (a graceful stop writes them): each is the first
sighting of a unit, and the unit's next resolve records it again, so a crash costs little.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from sqlalchemy.dialects import postgresql, sqlite

from promptops.db import Database, utcnow
from promptops.experiments.models import ExperimentExposure
from promptops.logging import log

MAX_BATCH = 2000
FLUSH_DELAY = 0.2
SEEN_MAX = 200_000


class ExposureRecorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: dict[tuple[str, str], str] = {}
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="exposure-recorder")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    def record(self, experiment_id: str, unit_hash: str, arm: str) -> None:
        """Queue one exposure (no I/O; a repeat of a recently seen unit is dropped)."""
        key = (experiment_id, unit_hash)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        self._pending[key] = arm
        if len(self._pending) >= MAX_BATCH or not self._wake.is_set():
            self._wake.set()

    def pending_arm(self, experiment_id: str, unit_hash: str) -> str | None:
        """The arm of an exposure queued here and not written yet (a bandit's sticky lookup)."""
        return self._pending.get((experiment_id, unit_hash))

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < MAX_BATCH:
                await asyncio.sleep(FLUSH_DELAY)  # gather a batch
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything pending now (results call this first, so they count what this process saw)."""
        async with self._lock:
            while self._pending:
                batch = dict(list(self._pending.items())[:MAX_BATCH])
                for key in batch:
                    del self._pending[key]
                try:
                    await self._write(batch)
                except Exception as exc:
                    log.error(
                        "exposure_recording_failed", exposures=len(batch), error_type=type(exc).__name__
                    )
                    for key in batch:  # let the unit's next resolve queue it again
                        self._seen.pop(key, None)
                    return

    async def _write(self, batch: dict[tuple[str, str], str]) -> None:
        now = utcnow()
        rows = [
            {"experiment_id": exp, "unit_hash": unit, "arm": arm, "first_at": now}
            for (exp, unit), arm in batch.items()
        ]
        async with self.db.transaction(write=True) as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            await session.execute(insert(ExperimentExposure).on_conflict_do_nothing(), rows)
        self.written += len(rows)
        self.batches += 1
