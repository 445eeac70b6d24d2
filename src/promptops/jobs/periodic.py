"""Periodic tasks: "run this every N seconds, in exactly one process of the installation".

Features register a task at import time, from a module listed in :data:`promptops.jobs.kinds.JOB_MODULES`::

    register_periodic("alerts.evaluate", every_seconds=60, run=evaluate_all)   # run: async (runtime) -> None

Every ``promptops serve`` that runs workers and every ``promptops worker`` runs a :class:`Scheduler`. Each tick
it tries to *claim* every due task with one conditional UPDATE on its ``periodic_tasks`` row (due, and no live
lease): the process whose UPDATE matched moves ``next_due_at`` one period forward, holds the lease while the
task runs and releases it with the outcome. Two replicas therefore never run the same period, and a process
that dies mid-run leaves a lease that expires so another process takes the task over. A run that raises is
logged and recorded on the row (``last_error``, ``failures``); the next period runs it again.

A task does one round of work and must be safe to repeat (a retried or overlapping round changes nothing
twice). Per-object schedules (a cron expression per prompt label, say) keep their own ``next_run_at`` rows
and register one periodic task that processes the rows that are due.

Tests drive tasks directly: :func:`run_now` runs one at once, :func:`run_due` every task due at a given time.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from promptops.db import utcnow
from promptops.jobs.kinds import import_job_modules
from promptops.jobs.models import PeriodicTaskRow
from promptops.logging import log

if TYPE_CHECKING:
    from promptops.runtime import Runtime

PeriodicRun = Callable[["Runtime"], Awaitable[None]]
"""``(runtime) -> None``: one round of the task's work; idempotent."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_EVERY_SECONDS = 1.0
MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    every: timedelta
    run: PeriodicRun
    lease: timedelta  # how long a run may take before another process may take the task over


_TASKS: dict[str, PeriodicTask] = {}


def register_periodic(
    name: str, every_seconds: float, run: PeriodicRun, *, lease_seconds: float | None = None
) -> None:
    """Run ``run(runtime)`` every ``every_seconds`` in one process. Registering a name again replaces it."""
    if not _NAME.match(name):
        raise ValueError(f"periodic task name must be 1-64 of a-z, 0-9, '.', '_', '-': {name!r}")
    if every_seconds < MIN_EVERY_SECONDS:
        raise ValueError(f"periodic task {name!r} must run at most once per {MIN_EVERY_SECONDS:g} s")
    lease = lease_seconds if lease_seconds is not None else max(every_seconds * 2, 600.0)
    _TASKS[name] = PeriodicTask(name, timedelta(seconds=every_seconds), run, timedelta(seconds=lease))


def unregister_periodic(name: str) -> None:
    """Forget ``name`` (tests)."""
    _TASKS.pop(name, None)


def registered() -> list[PeriodicTask]:
    """Every registered task, by name (imports the feature modules first)."""
    import_job_modules()
    return [_TASKS[name] for name in sorted(_TASKS)]


def task(name: str) -> PeriodicTask:
    import_job_modules()
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(
            f"no periodic task named {name!r}; registered: {', '.join(sorted(_TASKS)) or 'none'}"
        ) from None


def _owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def _claim(runtime: Runtime, spec: PeriodicTask, now: datetime, owner: str) -> bool:
    """Take this period of ``spec`` for ``owner`` if it is due and nobody holds a live lease."""
    async with runtime.db.transaction(write=True) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(
            insert(PeriodicTaskRow)
            .values(name=spec.name, next_due_at=now, runs=0, failures=0)
            .on_conflict_do_nothing()
        )
        claimed = await session.execute(
            update(PeriodicTaskRow)
            .where(
                PeriodicTaskRow.name == spec.name,
                PeriodicTaskRow.next_due_at <= now,
                or_(PeriodicTaskRow.lease_until.is_(None), PeriodicTaskRow.lease_until < now),
            )
            .values(
                next_due_at=now + spec.every,
                lease_owner=owner,
                lease_until=now + spec.lease,
                last_started_at=now,
            )
        )
        return bool(getattr(claimed, "rowcount", 0) == 1)


async def _finish(runtime: Runtime, spec: PeriodicTask, owner: str, error: str | None) -> None:
    values: dict[str, object] = {
        "lease_owner": None,
        "lease_until": None,
        "last_finished_at": utcnow(),
        "last_error": error[:MAX_ERROR_CHARS] if error else None,
        "runs": PeriodicTaskRow.runs + 1,
    }
    if error:
        values["failures"] = PeriodicTaskRow.failures + 1
    async with runtime.db.transaction(write=True) as session:
        await session.execute(
            update(PeriodicTaskRow)
            .where(PeriodicTaskRow.name == spec.name, PeriodicTaskRow.lease_owner == owner)
            .values(**values)
        )


async def _execute(runtime: Runtime, spec: PeriodicTask, owner: str) -> bool:
    """Run one claimed round; True when it finished without an error."""
    error: str | None = None
    try:
        await spec.run(runtime)
    except asyncio.CancelledError:
        await asyncio.shield(_finish(runtime, spec, owner, "cancelled (process stopping)"))
        raise
    except Exception as exc:  # a failing round is recorded and retried next period
        error = f"{type(exc).__name__}: {exc}"
        log.exception("periodic_task_failed", task=spec.name, error_type=type(exc).__name__)
    await _finish(runtime, spec, owner, error)
    return error is None


async def run_now(runtime: Runtime, name: str) -> bool:
    """Run task ``name`` once, now, in this process, whatever its schedule (tests, and an operator's "run it
    now"). It takes the task's lease for the run. True when the round finished without an error."""
    spec = task(name)
    owner = _owner()
    now = utcnow()
    async with runtime.db.transaction(write=True) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        await session.execute(
            insert(PeriodicTaskRow)
            .values(name=name, next_due_at=now, runs=0, failures=0)
            .on_conflict_do_nothing()
        )
        await session.execute(
            update(PeriodicTaskRow)
            .where(PeriodicTaskRow.name == name)
            .values(lease_owner=owner, lease_until=now + spec.lease, last_started_at=now)
        )
    return await _execute(runtime, spec, owner)


async def run_due(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """Claim and run (one after the other) every task due at ``now``; the names that ran."""
    ran: list[str] = []
    at = now or utcnow()
    for spec in registered():
        owner = _owner()
        if await _claim(runtime, spec, at, owner):
            await _execute(runtime, spec, owner)
            ran.append(spec.name)
    return ran


@dataclass(frozen=True)
class TaskState:
    name: str
    every_seconds: float
    next_due_at: datetime | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    runs: int
    failures: int
    running: bool


async def states(runtime: Runtime) -> list[TaskState]:
    """Each registered task's schedule state (for the ops endpoint and ``promptops`` diagnostics)."""
    async with runtime.db.transaction() as session:
        rows = {r.name: r for r in (await session.execute(select(PeriodicTaskRow))).scalars()}
    now = utcnow()
    out: list[TaskState] = []
    for spec in registered():
        row = rows.get(spec.name)
        out.append(
            TaskState(
                name=spec.name,
                every_seconds=spec.every.total_seconds(),
                next_due_at=row.next_due_at if row else None,
                last_started_at=row.last_started_at if row else None,
                last_finished_at=row.last_finished_at if row else None,
                last_error=row.last_error if row else None,
                runs=row.runs if row else 0,
                failures=row.failures if row else 0,
                running=bool(row and row.lease_until and row.lease_until > now),
            )
        )
    return out


class Scheduler:
    """The loop a process runs: every tick, claim the due tasks and run each as its own asyncio task."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tick = runtime.settings.scheduler_tick_seconds
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[bool]] = {}

    async def start(self) -> None:
        if self._loop_task is None:
            import_job_modules()
            self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="promptops-scheduler")
            log.info("scheduler_started", tasks=len(_TASKS), tick_seconds=self.tick)

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None
        self._running.clear()

    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not end the loop
                log.warning("scheduler_tick_failed", error_type=type(exc).__name__, error=str(exc)[:200])
            await asyncio.sleep(self.tick)

    async def _tick(self) -> None:
        now = utcnow()
        for spec in list(_TASKS.values()):
            if spec.name in self._running:
                continue  # still running here; its lease keeps other processes off it too
            owner = _owner()
            if await _claim(self.runtime, spec, now, owner):
                run = asyncio.get_running_loop().create_task(_execute(self.runtime, spec, owner))
                self._running[spec.name] = run
                run.add_done_callback(self._forget(spec.name))

    def _forget(self, name: str) -> Callable[[asyncio.Task[bool]], None]:
        def done(_task: asyncio.Task[bool]) -> None:
            self._running.pop(name, None)

        return done
