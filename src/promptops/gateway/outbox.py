"""The gateway's durable write-behind queue: calls are journaled locally, then drained to the database.

A finished call is appended to this process's journal segment with one ``os.write`` (no fsync: the page cache
survives a ``kill -9`` of the process, and only a machine crash can lose the last records) and queued in
memory. A background task inserts queued records in batches, insert-or-ignore by run id, so a record written
twice lands once. Each process writes its own segment and holds an exclusive ``flock`` on it; at start-up a
process replays every segment no live process holds (a crashed process's, or its own previous life's) and
deletes it once every record is stored. A fully drained segment is rotated once it grows past
``ROTATE_BYTES``.

Records are the columns of :class:`~promptops.runs.models.Run` (``created_at`` as ISO text), plus the call's
end user (``end_user``) when it named one: where the project seals run payloads, they are sealed when stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from promptops.db import Database
from promptops.logging import log
from promptops.runs.models import Run
from promptops.runs.payloads import seal_rows
from promptops.runs.rollup import add_runs

BATCH = 500
DRAIN_DELAY_SECONDS = 0.5
ROTATE_BYTES = 16 * 1024 * 1024
MAX_BACKOFF_SECONDS = 5.0
SUFFIX = ".journal"
# A record's extra key (not a column): the end user the call named, whose key seals the run's payloads when
# the project seals them (promptops.runs.payloads).
END_USER_KEY = "end_user"


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge(
            "promptops_gateway_outbox_depth", "Gateway call records not yet stored", registry=registry
        )
        self.drained = Counter(
            "promptops_gateway_outbox_drained_total", "Gateway call records stored", registry=registry
        )
        self.dropped = Counter(
            "promptops_gateway_outbox_dropped_total",
            "Gateway call records lost (journal write failed, unreadable, or refused by the database)",
            registry=registry,
        )
        self.replayed = Counter(
            "promptops_gateway_outbox_replayed_total",
            "Records read back from journals left by an earlier process at start-up",
            registry=registry,
        )


_COLUMNS = tuple(column.key for column in Run.__table__.columns)
_DEFAULTS: dict[str, Any] = {
    "params": {},
    "input_tokens": 0,
    "output_tokens": 0,
    "usage_estimated": False,
    "cost_usd": 0.0,
    "latency_ms": 0.0,
    "cached": False,
    "attempt": 1,
}


def row_of(record: dict[str, Any]) -> dict[str, Any]:
    """A journal record as a ``runs`` row (every column; ``created_at`` parsed)."""
    row = {key: record.get(key, _DEFAULTS.get(key)) for key in _COLUMNS}
    row["created_at"] = datetime.fromisoformat(record["created_at"])
    return row


def record_of(run: Run) -> dict[str, Any]:
    """A Run as a journal record (its column values)."""
    record = {column.key: getattr(run, column.key) for column in Run.__table__.columns}
    record["created_at"] = record["created_at"].isoformat()
    return record


class Outbox:
    def __init__(self, directory: Path, db: Database, metrics: OutboxMetrics) -> None:
        self.directory = directory
        self.db = db
        self.metrics = metrics
        self._pending: deque[dict[str, Any]] = deque()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight = 0
        self.stored = 0

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a fresh segment, store what earlier processes left behind, start draining."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_segment()
        await self.replay()
        self._task = asyncio.get_running_loop().create_task(self._drain_forever(), name="gateway-outbox")

    async def stop(self) -> None:
        """Drain what is queued (best effort), then close; an undrained segment stays for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            while self._pending:
                await self._drain_batch()
        self._close_segment(delete=not self._pending)

    def _open_segment(self) -> None:
        path = self.directory / f"{time.time_ns()}-{os.getpid()}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path, self._size = fd, path, 0

    def _close_segment(self, *, delete: bool) -> None:
        if self._fd is None or self._path is None:
            return
        if delete:
            self._path.unlink(missing_ok=True)
        os.close(self._fd)  # releases the lock
        self._fd = self._path = None

    # --- writing ---------------------------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        """Journal one finished call and queue it for the database. Never raises, never waits."""
        try:
            line = orjson.dumps(record) + b"\n"
            assert self._fd is not None, "outbox not started"
            os.write(self._fd, line)
            self._size += len(line)
        except Exception as exc:  # a full disk must not fail the call; the record still goes to the database
            self.metrics.dropped.inc()
            log.error("gateway_journal_write_failed", error_type=type(exc).__name__)
        self._pending.append(record)
        self.metrics.depth.inc()
        self._wake.set()

    @property
    def depth(self) -> int:
        return len(self._pending) + self._inflight

    # --- draining --------------------------------------------------------------------------------------------

    async def _drain_forever(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            # Let records gather: one transaction per DRAIN_DELAY instead of one per call keeps the database
            # work (and the event loop time it takes) small per call; the journal holds them meanwhile.
            if len(self._pending) < BATCH:
                await asyncio.sleep(DRAIN_DELAY_SECONDS)
            self._wake.clear()
            while self._pending:
                try:
                    await self._drain_batch()
                    backoff = 0.05
                except Exception as exc:  # database down: keep the records (journaled) and retry
                    log.warning("gateway_outbox_drain_failed", error_type=type(exc).__name__)
                    await asyncio.sleep(backoff)
                    backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
            if not self._pending and self._size > ROTATE_BYTES:
                self._close_segment(delete=True)
                self._open_segment()

    async def _drain_batch(self) -> None:
        batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
        self._inflight = len(batch)
        try:
            stored = await self.store(batch)
        except BaseException:
            self._pending.extendleft(reversed(batch))
            raise
        finally:
            self._inflight = 0
        self.metrics.depth.dec(len(batch))
        self.metrics.drained.inc(stored)

    async def store(self, records: list[dict[str, Any]]) -> int:
        """Insert the records whose run id is not stored yet (and their rollups); returns how many were new.

        A batch the database refuses (e.g. a run of a project deleted meanwhile) is retried record by
        record, and the records refused on their own are dropped (counted), so one cannot block the rest.
        """
        try:
            return await self._insert_new(records)
        except IntegrityError:
            if len(records) == 1:
                self.metrics.dropped.inc()
                log.error("gateway_record_refused", run_id=records[0].get("id"))
                return 0
        stored = 0
        for record in records:
            stored += await self.store([record])
        return stored

    async def _insert_new(self, records: list[dict[str, Any]]) -> int:
        # Core inserts (one executemany) rather than ORM objects: a tenth of the CPU per record.
        unique = {r["id"]: r for r in records}
        async with self.db.transaction(write=True) as session:
            existing = set((await session.execute(select(Run.id).where(Run.id.in_(list(unique))))).scalars())
            fresh = [r for key, r in unique.items() if key not in existing]
            rows = [row_of(r) for r in fresh]
            if rows:
                # The journal keeps the call's end user beside the columns; it picks the sealing key only.
                await seal_rows(session, rows, [r.get(END_USER_KEY) for r in fresh])
                await session.execute(insert(Run), rows)
                await add_runs(session, [SimpleNamespace(**row) for row in rows])
        self.stored += len(rows)
        return len(rows)

    # --- replay ----------------------------------------------------------------------------------------------

    async def replay(self) -> int:
        """Store the records of every segment no live process holds, then delete those segments."""
        total = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process is writing it
                records = self._read(path)
                for start in range(0, len(records), BATCH):
                    stored = await self.store(records[start : start + BATCH])
                    self.metrics.drained.inc(stored)
                    total += stored
                self.metrics.replayed.inc(len(records))
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if total:
            log.info("gateway_outbox_replayed", records=total)
        return total

    def _read(self, path: Path) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:  # a line torn by the crash
                self.metrics.dropped.inc()
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
        return records
