"""Benchmark: live experiments at 1M units across 5 arms, through the real service on a real database.

The app runs in process (``create_app``, migrations and bootstrap as in production) on a fresh SQLite file, and on
PostgreSQL when one answers at PROMPTOPS_TEST_POSTGRES_URL (``--pg``). It prints:

1. **Resolve latency** (``GET /api/v1/prompts/{name}?label=production&unit=...`` through the ASGI app, one
   request at a time, every request a new unit): p50/p95 without an experiment on the label, with a running A/B
   experiment over 5 arms (each answer queues an exposure), and with a 5-arm bandit (a new unit costs one
   primary-key read of its exposure).
2. **Exposures**: ``--units`` (default 1,000,000) units assigned and queued by the resolve path's own service
   calls (``experiments.assignment_for`` + the exposure recorder, without HTTP), written in bulk: units/s.
3. **Outcome events**: one conversion event per unit (1M) through ``POST /api/v1/experiments/{id}/events`` in
   batches of 1,000: events/s.
4. **Results**: the time ``GET /api/v1/experiments/{id}/results`` takes over those 1M exposures and outcomes.
5. **Statistics by simulation**: the false-positive rate of the always-valid mSPRT in A/A experiments that are
   looked at 20 times each (vs the stated alpha 0.05), and its power in A/B experiments with a known effect.

    .venv/bin/python bench/experiments.py [--units 1000000] [--pg] [--json bench/results/experiments.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from promptops.app import create_app
from promptops.config import Settings
from promptops.experiments import service as experiments
from promptops.experiments import stats
from promptops.experiments.models import Experiment

KEY = "po_bench000_" + "E" * 40
PROMPT = "bench/exp"
ARMS = 5
PG_URL = os.environ.get("PROMPTOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _pg(sql: str) -> None:
    """Run ``sql`` on the server's maintenance database (PG_URL's); the bench's own database is made and dropped
    there, never PG_URL's database itself."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Bench:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        settings = Settings(
            database_url=database_url,
            data_dir=data_dir,
            bootstrap_admin_key=KEY,
            bootstrap_admin_password="bench-admin-password",
            log_level="WARNING",
            scheduler=False,
            web_dir=data_dir / "no-web",
        )
        self.app = create_app(settings)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=600,
        )

    async def __aenter__(self) -> Bench:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self._lifespan.__aexit__(None, None, None)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = await self.http.request(method, path, **kwargs)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    async def setup(self, name: str) -> list[int]:
        await self.call(
            "POST", "/api/v1/prompts", json={"name": name, "template": "v1", "labels": ["production"]}
        )
        for n in range(2, ARMS + 1):
            await self.call("POST", f"/api/v1/prompts/{name}/versions", json={"template": f"v{n}"})
        return list(range(1, ARMS + 1))

    async def experiment(self, name: str, mode: str = "ab") -> str:
        body: dict[str, Any] = {
            "name": f"bench {mode}",
            "prompt": name,
            "arms": [{"version": v} for v in range(1, ARMS + 1)],
            "metrics": [{"name": "conversion"}],
            "mode": mode,
        }
        created = await self.call("POST", "/api/v1/experiments", json=body)
        await self.call("POST", f"/api/v1/experiments/{created['id']}/start")
        return str(created["id"])

    async def resolve_latency(self, name: str, count: int, prefix: str) -> dict[str, float]:
        times = []
        for i in range(count):
            started = time.perf_counter()
            r = await self.http.get(
                f"/api/v1/prompts/{name}", params={"label": "production", "unit": f"{prefix}{i}"}
            )
            times.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                raise RuntimeError(r.text)
        return {"p50_ms": round(pct(times, 0.5), 3), "p95_ms": round(pct(times, 0.95), 3), "n": count}


async def run(database_url: str, units: int, samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"units": units, "arms": ARMS}
    with tempfile.TemporaryDirectory(prefix="bench-exp-") as tmp:
        async with Bench(database_url, Path(tmp)) as bench:
            runtime = bench.app.state.runtime
            await bench.setup(PROMPT)
            await bench.setup(PROMPT + "-bandit")
            await bench.resolve_latency(PROMPT, 300, "warm-")  # warm caches and code paths
            out["resolve_without_experiment"] = await bench.resolve_latency(PROMPT, samples, "plain-")
            exp_id = await bench.experiment(PROMPT)
            await bench.resolve_latency(PROMPT, 300, "warm2-")
            out["resolve_with_ab_experiment"] = await bench.resolve_latency(PROMPT, samples, "ab-")
            await bench.experiment(PROMPT + "-bandit", mode="bandit")
            await bench.resolve_latency(PROMPT + "-bandit", 300, "warm3-")
            out["resolve_with_bandit"] = await bench.resolve_latency(PROMPT + "-bandit", samples, "bandit-")
            print(
                f"  resolve p50/p95 (ms): none {out['resolve_without_experiment']}, "
                f"A/B {out['resolve_with_ab_experiment']}, bandit {out['resolve_with_bandit']}",
                flush=True,
            )

            # exposures: the resolve path's own service calls, without HTTP
            async with runtime.db.transaction() as session:
                row = await session.get(Experiment, exp_id)
                assert row is not None
                project_id, prompt_id = row.project_id, row.prompt_id
            await runtime.exposures.flush()
            started = time.perf_counter()
            arms: list[str] = []
            for i in range(units):
                found = await experiments.assignment_for(
                    runtime.db, project_id, prompt_id, "production", f"u{i}", runtime.exposures.pending_arm
                )
                assert found is not None
                runtime.exposures.record(found.experiment_id, found.unit_hash, found.arm.name)
                arms.append(found.arm.name)
                if i % 20_000 == 19_999:
                    await asyncio.sleep(0)  # let the recorder's task write
            await runtime.exposures.flush()
            seconds = time.perf_counter() - started
            out["exposures"] = {
                "count": units,
                "seconds": round(seconds, 2),
                "per_second": round(units / seconds),
            }
            print(f"  exposures: {units:,} in {seconds:.1f} s ({units / seconds:,.0f}/s)", flush=True)

            # outcome events: one conversion event per unit, A/A (every arm converts at 10%)
            rng = random.Random(1)
            started = time.perf_counter()
            batch: list[dict[str, Any]] = []
            for i in range(units):
                batch.append(
                    {"unit": f"u{i}", "metric": "conversion", "value": 1 if rng.random() < 0.10 else 0}
                )
                if len(batch) == 1000 or i == units - 1:
                    await bench.call("POST", f"/api/v1/experiments/{exp_id}/events", json={"events": batch})
                    batch = []
            seconds = time.perf_counter() - started
            out["events"] = {
                "count": units,
                "seconds": round(seconds, 2),
                "per_second": round(units / seconds),
            }
            print(f"  events: {units:,} in {seconds:.1f} s ({units / seconds:,.0f}/s)", flush=True)

            times = []
            for _ in range(3):
                started = time.perf_counter()
                found_results = await bench.call("GET", f"/api/v1/experiments/{exp_id}/results")
                times.append(time.perf_counter() - started)
            out["results_seconds"] = round(min(times), 3)
            conversion = next(m for m in found_results["metrics"] if m["name"] == "conversion")
            out["results_check"] = {
                "exposures": found_results["exposures"],
                "srm_mismatch": found_results["sampleRatio"]["mismatch"],
                "significant_arms_in_this_aa_run": sum(c["significant"] for c in conversion["comparisons"]),
            }
            print(
                f"  results over {found_results['exposures']:,} exposures: {min(times):.2f} s "
                f"(SRM mismatch {found_results['sampleRatio']['mismatch']})",
                flush=True,
            )
            # the units of the latency runs on this experiment were exposed too
            assert found_results["exposures"] == units + 300 + samples, found_results["exposures"]
            del arms
    return out


def simulate(
    experiments_count: int, peeks: int, units_per_arm: int, control: float, treatment: float, seed: int
) -> float:
    """Share of simulated two-arm experiments (conversion rates ``control``/``treatment``) in which the mSPRT
    declared a difference at any of ``peeks`` equally spaced looks."""
    rng = np.random.default_rng(seed)
    step = units_per_arm // peeks
    hits = 0
    for _ in range(experiments_count):
        a = np.cumsum(rng.random(units_per_arm) < control)
        b = np.cumsum(rng.random(units_per_arm) < treatment)
        for k in range(1, peeks + 1):
            n = k * step
            ka, kb = float(a[n - 1]), float(b[n - 1])
            c = stats.compare(stats.Summary(n, ka, ka), stats.Summary(n, kb, kb), alpha=0.05)
            if c.significant:
                hits += 1
                break
    return hits / experiments_count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=3000, help="resolves timed per mode")
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (PROMPTOPS_TEST_POSTGRES_URL)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()

    figures: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="bench-exp-db-") as tmp:
            print(f"SQLite, {args.units:,} units over {ARMS} arms", flush=True)
            figures["sqlite"] = asyncio.run(run(f"sqlite:///{tmp}/bench.db", args.units, args.samples))
    if args.pg:
        print(f"PostgreSQL, {args.units:,} units over {ARMS} arms", flush=True)
        name = f"promptops_bench_exp_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
        try:
            figures["postgresql"] = asyncio.run(
                run(f"{PG_URL.rpartition('/')[0]}/{name}", args.units, args.samples)
            )
        finally:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    print(f"Statistics by simulation ({args.simulations} experiments each, 20 looks, 10,000 units per arm):")
    started = time.perf_counter()
    aa = simulate(args.simulations, 20, 10_000, 0.10, 0.10, seed=1)
    ab = simulate(args.simulations, 20, 10_000, 0.10, 0.12, seed=2)
    small = simulate(args.simulations, 20, 10_000, 0.10, 0.11, seed=3)
    figures["simulation"] = {
        "experiments": args.simulations,
        "looks": 20,
        "units_per_arm": 10_000,
        "alpha": 0.05,
        "aa_false_positive_rate": aa,
        "ab_power_10_to_12_percent": ab,
        "ab_power_10_to_11_percent": small,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"  A/A false-positive rate (alpha 0.05, peeking 20 times): {aa:.3f}")
    print(f"  A/B power, 10% -> 12% conversion: {ab:.3f}; 10% -> 11%: {small:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
