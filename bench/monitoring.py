"""Benchmark: the monitoring endpoints over 10,000,000 runs' worth of data, on SQLite and PostgreSQL.

What is generated (30 days ending at the next whole hour; 20 prompts x 3 versions, 2 models, 4 production
sources; prompt 0 carries a quarter of all traffic):

* ``run_rollups``: exactly the rows the recorder's write path (``runs.rollup.add_runs``) leaves for N runs
  (default 10M): per hour and per day, runs, errors (3 %), tokens, cost, latency sum and the 16-bucket latency
  histogram, drawn with numpy (Poisson counts, multinomial histograms) and bulk-inserted. Writing 10M full run
  rows through the recorder would take hours on a shared 2-core machine and the charts never read them.
* ``runs``: ``--table-runs`` full rows (default 500,000: input, output, tokens, latency) with the same
  distribution, inserted in batches, for the drift check, which reads at most 2,000 runs per window by index.
* ``monitoring_online_rollups`` for a 10 % online-evaluation sample, and ``--feedback`` feedback records.

The prompts, versions and label moves are made through the REST API of an in-process app; every timing is one
REST request through it (httpx, ASGI), median and p95 of ``--repeat`` requests.

    .venv/bin/python bench/monitoring.py [--runs 10000000] [--table-runs 500000] [--skip-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from sqlalchemy import func, insert, select

from promptops.app import create_app
from promptops.config import Settings
from promptops.feedback.models import Feedback
from promptops.migrate import upgrade
from promptops.monitoring.models import OnlineEvalRollup
from promptops.runs.models import LATENCY_BOUNDS_MS, LATENCY_BUCKETS, Run, RunRollup

KEY = "po_bench000_" + "M" * 40
PG_URL = os.environ.get("PROMPTOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DAYS = 30
PROMPTS = 20
VERSIONS = 3
MODELS = ("gpt-4o-mini", "claude-3-5-haiku")
SOURCES = ("sdk", "gateway", "playground", "experiment")
SOURCE_SHARE = (0.5, 0.35, 0.05, 0.1)
LABELS = ("positive", "negative", "neutral")
INSERT_BATCH = 5000
RESULTS = Path(__file__).parent / "results" / "monitoring.json"


def latency_probabilities(median_ms: float, sigma: float = 0.6) -> np.ndarray:
    """P(latency in each histogram bucket) for a log-normal latency."""
    from scipy.stats import lognorm

    edges = np.array([0.0, *LATENCY_BOUNDS_MS, np.inf])
    cdf = lognorm.cdf(edges, s=sigma, scale=median_ms)
    return np.diff(cdf)


def prompt_weights() -> np.ndarray:
    weights = np.ones(PROMPTS)
    weights[0] = (PROMPTS - 1) / 3  # prompt 0: a quarter of all traffic
    return weights / weights.sum()


def rollup_rows(
    project_id: str,
    ids: dict[tuple[int, int], tuple[str, str]],
    total_runs: int,
    end_hour: int,
    seed: int = 1,
) -> tuple[list[dict[str, Any]], int]:
    """Hour and day rows of ``run_rollups`` for ``total_runs`` runs over the last DAYS days; (rows, runs drawn)."""
    rng = np.random.default_rng(seed)
    hours = DAYS * 24
    keys = [
        (p, v, m, s)
        for p in range(PROMPTS)
        for v in range(VERSIONS)
        for m in range(len(MODELS))
        for s in range(len(SOURCES))
    ]
    share = np.array([prompt_weights()[p] / VERSIONS / len(MODELS) * SOURCE_SHARE[s] for p, v, m, s in keys])
    lam = total_runs * share / hours
    probs = {m: latency_probabilities(250.0 if m == 0 else 600.0) for m in range(len(MODELS))}
    hour_rows: list[dict[str, Any]] = []
    days: dict[tuple[Any, ...], dict[str, Any]] = {}
    drawn = 0
    for h in range(hours):
        hour = end_hour - hours + h
        counts = rng.poisson(lam)
        for (p, v, m, s), n in zip(keys, counts, strict=True):
            if n == 0:
                continue
            n = int(n)
            drawn += n
            hist = rng.multinomial(n, probs[m])
            mids = np.array([*LATENCY_BOUNDS_MS, LATENCY_BOUNDS_MS[-1] * 2]) * 0.75
            tokens_in, tokens_out = n * 400, n * 60
            row = {
                "project_id": project_id,
                "prompt_id": ids[(p, v)][0],
                "version_id": ids[(p, v)][1],
                "provider": "openai" if m == 0 else "anthropic",
                "model": MODELS[m],
                "source": SOURCES[s],
                "runs": n,
                "errors": int(rng.binomial(n, 0.03)),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_usd": (tokens_in * 0.15 + tokens_out * 0.6) / 1e6,
                "latency_ms_sum": float((hist * mids).sum()),
                **{f"lat_{i}": int(c) for i, c in enumerate(hist)},
            }
            hour_rows.append({**row, "grain": 1, "bucket": hour})
            day_key = (hour - hour % 24, p, v, m, s)
            acc = days.get(day_key)
            if acc is None:
                days[day_key] = {**row, "grain": 24, "bucket": hour - hour % 24}
            else:
                for name in ("runs", "errors", "input_tokens", "output_tokens", "cost_usd", "latency_ms_sum"):
                    acc[name] += row[name]
                for i in range(LATENCY_BUCKETS):
                    acc[f"lat_{i}"] += row[f"lat_{i}"]
    return hour_rows + list(days.values()), drawn


def online_rows(
    project_id: str, ids: dict[tuple[int, int], tuple[str, str]], total_runs: int, end_hour: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(2)
    hours = DAYS * 24
    rows: list[dict[str, Any]] = []
    days: dict[tuple[Any, ...], dict[str, Any]] = {}
    weights = prompt_weights()
    for h in range(hours):
        hour = end_hour - hours + h
        for (p, v), (prompt_id, version_id) in ids.items():
            scored = int(rng.poisson(total_runs * 0.1 * weights[p] / VERSIONS / hours))
            if not scored:
                continue
            passed = int(rng.binomial(scored, 0.85))
            row = {
                "project_id": project_id,
                "prompt_id": prompt_id,
                "version_id": version_id,
                "scored": scored,
                "passed": passed,
                "score_sum": passed + 0.3 * (scored - passed),
                "failed": 0,
            }
            rows.append({**row, "grain": 1, "bucket": hour})
            key = (hour - hour % 24, p, v)
            acc = days.setdefault(
                key,
                {**row, "grain": 24, "bucket": hour - hour % 24, "scored": 0, "passed": 0, "score_sum": 0.0},
            )
            acc["scored"] += scored
            acc["passed"] += passed
            acc["score_sum"] += row["score_sum"]
    return rows + list(days.values())


def table_runs(
    project_id: str, ids: dict[tuple[int, int], tuple[str, str]], count: int, end: datetime
) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(3)
    weights = list(prompt_weights())
    span = DAYS * 86400
    batch: list[dict[str, Any]] = []
    for i in range(count):
        p = rng.choices(range(PROMPTS), weights)[0]
        v = rng.randrange(VERSIONS)
        m = rng.randrange(len(MODELS))
        at = end - timedelta(seconds=rng.uniform(1, span))
        ok = rng.random() >= 0.03
        text = " ".join(
            rng.choice(("parcel", "late", "refund", "box", "courier", "thanks", "broken", "fast"))
            for _ in range(rng.randint(5, 30))
        )
        batch.append(
            {
                "id": f"run_bench{i:014d}",
                "project_id": project_id,
                "prompt_id": ids[(p, v)][0],
                "version_id": ids[(p, v)][1],
                "provider": "openai" if m == 0 else "anthropic",
                "provider_type": "openai",
                "model": MODELS[m],
                "params": {},
                "input": {"prompt": f"Classify: {text}"},
                "output": rng.choice(LABELS) if ok else None,
                "input_tokens": 400,
                "output_tokens": 60,
                "usage_estimated": False,
                "cost_usd": 0.000126,
                "latency_ms": rng.lognormvariate(5.5, 0.6),
                "status": "ok" if ok else "error",
                "source": rng.choices(SOURCES, SOURCE_SHARE)[0],
                "cached": False,
                "attempt": 1,
                "created_at": at,
            }
        )
        if len(batch) == INSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def setup(api: httpx.AsyncClient) -> dict[tuple[int, int], tuple[str, str]]:
    """20 prompts with 3 versions each through the REST API; production moved v1 -> v2 -> v3."""
    ids: dict[tuple[int, int], tuple[str, str]] = {}
    for p in range(PROMPTS):
        name = f"bench/p{p:02d}"
        r = await api.post(
            "/api/v1/prompts",
            json={"name": name, "template": "Classify: {{ text }}", "labels": ["production"]},
        )
        r.raise_for_status()
        ids[(p, 0)] = (r.json()["prompt"]["id"], r.json()["version"]["id"])
        for v in range(1, VERSIONS):
            r = await api.post(
                f"/api/v1/prompts/{name}/versions", json={"template": f"Classify v{v + 1}: {{{{ text }}}}"}
            )
            r.raise_for_status()
            ids[(p, v)] = (ids[(p, 0)][0], r.json()["id"] if "id" in r.json() else r.json()["version"]["id"])
            r = await api.put(f"/api/v1/prompts/{name}/labels/production", json={"version": v + 1})
            r.raise_for_status()
    return ids


async def bulk(db: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        async with db.transaction(write=True) as session:
            await session.execute(insert(table), rows[start : start + INSERT_BATCH])


async def timed(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], repeat: int
) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        r = await api.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


async def measure(url: str, label: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        bootstrap_admin_key=KEY,
        bootstrap_admin_password="bench-password-123",
        bootstrap_admin_email="bench@localhost",
        scheduler=False,
        web_dir=data_dir / "no-web",
    )
    app = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        db = app.state.runtime.db
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=600,
        ) as api:
            ids = await setup(api)
            project_id = (await api.get("/api/v1/auth/me")).json()["projectId"]
            now = datetime.now(UTC)
            end_hour = int(now.timestamp() // 3600) + 1
            end = datetime.fromtimestamp(end_hour * 3600, UTC)
            started = time.perf_counter()
            rows, drawn = rollup_rows(project_id, ids, args.runs, end_hour)
            await bulk(db, RunRollup.__table__, rows)
            online = online_rows(project_id, ids, args.runs, end_hour)
            await bulk(db, OnlineEvalRollup.__table__, online)
            fill_rollups = time.perf_counter() - started
            started = time.perf_counter()
            for batch in table_runs(project_id, ids, args.table_runs, now - timedelta(minutes=1)):
                async with db.transaction(write=True) as session:
                    await session.execute(insert(Run.__table__), batch)
            fill_runs = time.perf_counter() - started
            rng = random.Random(4)
            feedback = [
                {
                    "id": f"fbk_bench{i:014d}",
                    "project_id": project_id,
                    "prompt_id": ids[(0, i % VERSIONS)][0],
                    "version_id": ids[(0, i % VERSIONS)][1],
                    "user": "",
                    "source": "human",
                    "score": float(rng.randint(1, 5)),
                    "rubric": {},
                    "tags": [],
                    "notes": "",
                    "created_at": now - timedelta(seconds=rng.uniform(1, DAYS * 86400)),
                }
                for i in range(args.feedback)
            ]
            await bulk(db, Feedback.__table__, feedback)
            async with db.transaction() as session:
                stored = (await session.execute(select(func.count()).select_from(RunRollup))).scalar_one()
            print(
                f"[{label}] {drawn:,} runs in the rollup ({stored:,} rollup rows) + online rollup in {fill_rollups:.1f} s; "
                f"{args.table_runs:,} rows in runs in {fill_runs:.1f} s; {args.feedback:,} feedback records",
                flush=True,
            )
            prompt = "/api/v1/monitoring/prompts/bench/p00"
            cases = [
                (
                    "series hour, 7 days, production",
                    prompt,
                    {"bucket": "hour", "from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()},
                ),
                (
                    "series day, 30 days, production",
                    prompt,
                    {"bucket": "day", "from": (end - timedelta(days=30)).isoformat(), "to": end.isoformat()},
                ),
                (
                    "series hour, 7 days, every version",
                    prompt,
                    {
                        "bucket": "hour",
                        "label": "*",
                        "from": (end - timedelta(days=7)).isoformat(),
                        "to": end.isoformat(),
                    },
                ),
                ("metric volume, 1 h", f"{prompt}/metrics/volume", {"windowMinutes": 60}),
                ("metric latency_p95_ms, 24 h", f"{prompt}/metrics/latency_p95_ms", {"windowMinutes": 1440}),
                (
                    "metric online_eval_pass_rate, 24 h",
                    f"{prompt}/metrics/online_eval_pass_rate",
                    {"windowMinutes": 1440},
                ),
                ("metric feedback_mean, 7 d", f"{prompt}/metrics/feedback_mean", {"windowMinutes": 7 * 1440}),
                ("drift 1 d vs 7 d", f"{prompt}/drift", {"windowMinutes": 1440, "baselineMinutes": 7 * 1440}),
                ("drift 1 h vs 24 h", f"{prompt}/drift", {"windowMinutes": 60, "baselineMinutes": 1440}),
            ]
            results = {}
            print(f"\n{label}: ms per request (median, p95 of {args.repeat})")
            for name, path, params in cases:
                repeat = max(3, args.repeat // 3) if "drift" in name else args.repeat
                median, p95 = await timed(api, path, params, repeat)
                results[name] = {"median_ms": round(median, 1), "p95_ms": round(p95, 1)}
                print(f"  {name:<40} {median:>9.1f} {p95:>9.1f}", flush=True)
            return {
                "runs_in_rollup": drawn,
                "rollup_rows": stored,
                "runs_table_rows": args.table_runs,
                "feedback_rows": args.feedback,
                "fill_rollups_s": round(fill_rollups, 1),
                "fill_runs_s": round(fill_runs, 1),
                "requests": results,
            }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000_000)
    parser.add_argument("--table-runs", type=int, default=500_000)
    parser.add_argument("--feedback", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"args": vars(args), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            out["sqlite"] = await measure(
                f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "SQLite", args, Path(tmp)
            )
    if not args.skip_pg:
        base, _, maintenance = PG_URL.rpartition("/")
        name = f"promptops_bench_monitoring_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(f"{base}/{maintenance}")
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            with tempfile.TemporaryDirectory() as tmp:
                out["postgresql"] = await measure(f"{base}/{name}", "PostgreSQL", args, Path(tmp))
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
