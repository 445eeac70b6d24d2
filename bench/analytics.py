"""Benchmark: dashboard aggregates over 1,000,000 runs, from the rollup versus directly over ``runs``.

Fills a fresh SQLite file and a fresh PostgreSQL database (created and dropped here) with N runs over 90 days
(200 prompts with 2 versions each, 6 models, 3 sources, 3 % errors), inserting each batch of runs together with
its rollup upsert (``runs.rollup.add_runs``, the path every run takes), then times each dashboard service
function (median of 5) over 30 and 90 days, and the same usage query computed with GROUP BY over ``runs``.

    .venv/bin/python bench/analytics.py [--runs 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select

from promptops.analytics import service
from promptops.auth.principal import system_principal
from promptops.db import Database
from promptops.migrate import upgrade
from promptops.runs import rollup
from promptops.runs.models import Run, RunRollup
from promptops.tenancy.models import Organization, Project

END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 90
PROMPTS = 200
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-sonnet-4", "llama-3.1-8b", "gemma-3-270m"]
SOURCES = [("sdk", 0.5), ("eval", 0.3), ("playground", 0.2)]
BATCH = 10_000


def fake_runs(count: int, seed: int = 7) -> list[SimpleNamespace]:
    """Runs as the rollup reads them (``runs.rollup.RunLike``), in time order."""
    rng = random.Random(seed)
    span = DAYS * 86400
    sources, weights = zip(*SOURCES, strict=True)
    out = []
    for _ in range(count):
        p = rng.randrange(PROMPTS)
        v = rng.randrange(2)
        model = MODELS[(p + v) % len(MODELS)]
        tokens_in = rng.randint(50, 2000)
        tokens_out = rng.randint(5, 500)
        out.append(
            SimpleNamespace(
                project_id="prj_bench",
                prompt_id=f"prm_bench{p:04d}",
                version_id=f"ver_bench{p:04d}_{v}",
                provider=model.split("-")[0],
                model=model,
                source=rng.choices(sources, weights)[0],
                status="error" if rng.random() < 0.03 else "ok",
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_usd=(tokens_in * 0.15 + tokens_out * 0.6) / 1e6,
                latency_ms=rng.lognormvariate(6.2, 0.8),
                created_at=END - timedelta(seconds=rng.uniform(0, span)),
            )
        )
    # in the order they happen, as a recorder sees them
    return sorted(out, key=lambda run: run.created_at)


async def fill(db: Database, runs: list[SimpleNamespace]) -> float:
    """Insert every run and its rollup in batches (one transaction each); seconds taken."""
    async with db.transaction(write=True) as session:
        session.add(Organization(id="org_bench", name="bench"))
        await session.flush()
        session.add(Project(id="prj_bench", org_id="org_bench", name="bench", description="", settings={}))
    started = time.perf_counter()
    for offset in range(0, len(runs), BATCH):
        batch = runs[offset : offset + BATCH]
        rows = [
            {
                **vars(r),
                "id": f"run_{offset + i:020d}",
                "provider_type": "openai",
                "params": {},
                "input": {"prompt": "x"},
                "output": "y",
            }
            for i, r in enumerate(batch)
        ]
        async with db.transaction(write=True) as session:
            await session.execute(insert(Run.__table__), rows)
            await rollup.add_runs(session, batch)
    return time.perf_counter() - started


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def usage(principal: Any, win: service.Window, group: str, session: Any) -> Any:
    return await service.usage(session, principal, win, group_by=group)


async def top(principal: Any, win: service.Window, by: str, session: Any) -> Any:
    return await service.top(session, principal, win, by=by, metric="cost")


async def quality(principal: Any, win: service.Window, session: Any) -> Any:
    return await service.quality(session, principal, win)


async def direct(principal: Any, win: service.Window, group: str, session: Any) -> Any:
    return await rollup.usage_buckets_from_runs(session, principal, win.query(group_by=group))


async def measure(db: Database, label: str, runs: list[SimpleNamespace]) -> list[tuple[str, str, float]]:
    seconds = await fill(db, runs)
    principal = system_principal("prj_bench", "org_bench")
    async with db.transaction() as session:
        rollup_rows = (await session.execute(select(func.count()).select_from(RunRollup))).scalar_one()
    print(
        f"[{label}] inserted {len(runs):,} runs + rollup in {seconds:.1f} s ({len(runs) / seconds:,.0f} runs/s); "
        f"{rollup_rows:,} rollup rows (hour + day)"
    )
    results = []
    for days in (30, 90):
        since, until = END - timedelta(days=days), END
        day = service.window(since, until, "day")
        whole = service.window(since, until, "hour", max_buckets=None)
        cases: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = []
        for group in ("none", "prompt", "model"):
            cases.append((f"usage day groupBy={group}", partial(usage, principal, day, group)))
        if days == 30:
            cases.append(
                (
                    "usage hour groupBy=model",
                    partial(usage, principal, service.window(since, until, "hour"), "model"),
                )
            )
        for by in ("prompt", "model"):
            cases.append((f"top by={by} metric=cost", partial(top, principal, whole, by)))
        cases.append(("quality day", partial(quality, principal, day)))
        for group in ("prompt", "model"):
            cases.append((f"DIRECT over runs groupBy={group}", partial(direct, principal, day, group)))
        for name, fn in cases:

            async def once(fn: Any = fn) -> None:
                async with db.transaction() as session:
                    await fn(session)

            results.append((f"{days} d", name, await timed(once)))
    return results


def report(label: str, results: list[tuple[str, str, float]]) -> None:
    print(f"\n{label}: median of 5, ms")
    print(f"{'range':<6} {'query':<36} {'ms':>9}")
    for rng, name, ms in results:
        print(f"{rng:<6} {name:<36} {ms:>9.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="maintenance database"
    )
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = fake_runs(args.runs)
    print(f"generated {len(runs):,} runs in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        try:
            report("SQLite", await measure(db, "SQLite", runs))
        finally:
            await db.dispose()

    if args.skip_pg:
        return
    base, _, maintenance = args.pg.rpartition("/")
    name = f"promptops_bench_analytics_{random.randrange(10**6)}"
    conn = await asyncpg.connect(f"{base}/{maintenance}")
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        pg_url = f"{base}/{name}"
        await asyncio.to_thread(upgrade, pg_url)
        db = Database(pg_url)
        try:
            report("PostgreSQL", await measure(db, "PostgreSQL", runs))
        finally:
            await db.dispose()
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
