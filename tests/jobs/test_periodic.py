"""Periodic tasks (``promptops.jobs.periodic``) on SQLite and PostgreSQL: a due task runs once per period, two
replicas on one database never both run a period, a failing round is recorded and runs again next period, a
lease left by a dead process expires, and the scheduler loop of a real app runs a registered task by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from promptops.db import utcnow
from promptops.jobs import periodic
from promptops.runtime import Runtime
from tests.support.app import Api, open_api

NAME = "test.tick"


@pytest.fixture
def calls() -> Iterator[list[Runtime]]:
    seen: list[Runtime] = []

    async def tick(runtime: Runtime) -> None:
        seen.append(runtime)

    periodic.register_periodic(NAME, every_seconds=60, run=tick)
    try:
        yield seen
    finally:
        periodic.unregister_periodic(NAME)


async def _state(runtime: Runtime, name: str = NAME) -> periodic.TaskState:
    return next(s for s in await periodic.states(runtime) if s.name == name)


def _rt(api: Api) -> Runtime:
    runtime: Runtime = api.app.state.runtime
    return runtime


async def test_a_due_task_runs_once_per_period(api: Api, calls: list[Runtime]) -> None:
    runtime, now = _rt(api), utcnow()
    assert NAME in await periodic.run_due(runtime, now)
    assert NAME not in await periodic.run_due(runtime, now + timedelta(seconds=59))
    assert NAME in await periodic.run_due(runtime, now + timedelta(seconds=61))
    assert len(calls) == 2
    state = await _state(runtime)
    assert (state.runs, state.failures, state.last_error, state.running) == (2, 0, None, False)
    assert state.next_due_at is not None and state.next_due_at > now + timedelta(seconds=61)


@pytest.fixture
async def replica(db_url: str, tmp_path: Path, api: Api) -> AsyncIterator[Api]:
    """A second app on the same database (another server process of the installation)."""
    other, client, lifespan = await open_api(db_url, tmp_path / "replica")
    try:
        yield other
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_two_replicas_never_run_the_same_period(api: Api, replica: Api, calls: list[Runtime]) -> None:
    now = utcnow()
    for step in range(5):
        at = now + timedelta(seconds=61 * step)
        ran = await asyncio.gather(periodic.run_due(_rt(api), at), periodic.run_due(_rt(replica), at))
        assert sum(NAME in names for names in ran) == 1, (step, ran)
    assert len(calls) == 5
    assert {id(r) for r in calls} <= {id(_rt(api)), id(_rt(replica))}


async def test_a_failing_round_is_recorded_and_runs_again_next_period(api: Api) -> None:
    attempts: list[int] = []

    async def flaky(runtime: Runtime) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("upstream unavailable")

    periodic.register_periodic("test.flaky", every_seconds=30, run=flaky)
    try:
        runtime, now = _rt(api), utcnow()
        assert "test.flaky" in await periodic.run_due(runtime, now)
        state = await _state(runtime, "test.flaky")
        assert state.failures == 1 and state.last_error == "RuntimeError: upstream unavailable"
        assert "test.flaky" in await periodic.run_due(runtime, now + timedelta(seconds=31))
        state = await _state(runtime, "test.flaky")
        assert (state.runs, state.failures, state.last_error) == (2, 1, None)
    finally:
        periodic.unregister_periodic("test.flaky")


async def test_a_lease_left_by_a_dead_process_expires(api: Api, calls: list[Runtime]) -> None:
    runtime, now = _rt(api), utcnow()
    spec = periodic.task(NAME)
    # A process claimed the period and died before finishing: its lease blocks the task until it expires.
    assert await periodic._claim(runtime, spec, now, "dead-host:1:abc")
    assert (await _state(runtime)).running
    assert NAME not in await periodic.run_due(runtime, now + spec.every + timedelta(seconds=1))
    assert NAME in await periodic.run_due(runtime, now + spec.lease + timedelta(seconds=1))
    assert len(calls) == 1


async def test_run_now_ignores_the_schedule(api: Api, calls: list[Runtime]) -> None:
    runtime = _rt(api)
    assert await periodic.run_now(runtime, NAME)
    assert await periodic.run_now(runtime, NAME)
    assert len(calls) == 2
    with pytest.raises(KeyError, match=r"no periodic task named 'test\.unknown'"):
        await periodic.run_now(runtime, "test.unknown")


def test_names_and_periods_are_checked() -> None:
    async def noop(runtime: Runtime) -> None:
        return None

    with pytest.raises(ValueError, match="name"):
        periodic.register_periodic("Bad Name", every_seconds=60, run=noop)
    with pytest.raises(ValueError, match="at most once per"):
        periodic.register_periodic("test.fast", every_seconds=0.1, run=noop)


async def test_the_scheduler_loop_of_a_running_app_runs_due_tasks(db_url: str, tmp_path: Path) -> None:
    ran = asyncio.Event()

    async def tick(runtime: Runtime) -> None:
        ran.set()

    periodic.register_periodic("test.loop", every_seconds=3600, run=tick)
    api, client, lifespan = await open_api(db_url, tmp_path, scheduler=True, scheduler_tick_seconds=0.05)
    try:
        assert _rt(api).scheduler is not None
        await asyncio.wait_for(ran.wait(), timeout=30)
        state = await _state(_rt(api), "test.loop")
        assert state.next_due_at is not None and state.next_due_at > utcnow() + timedelta(seconds=3000)
    finally:
        periodic.unregister_periodic("test.loop")
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert _rt(api).scheduler is None
