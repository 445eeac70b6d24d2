"""The optimizer's acceptance scenario end to end: wall time and model calls of one ``optimize`` run.

    .venv/bin/python bench/optimize.py [--budget 300] [--seed 0] [--database-url URL]

A real ``promptops serve`` on a fresh SQLite database (bootstrapped with the example prompts and the example
sentiment dataset) optimizes ``sentiment/zero-shot@production`` on ``sentiment/reviews`` with the embedded
local model (Gemma 3 270M) as the target, through the REST API exactly as ``promptops optimize`` does. Prints
the trajectory, the wall time, the model calls used against the budget and the held-out (validation)
accuracy of the starting prompt and of the winner.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
from server import HEADERS, serve


def score(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "  -  "


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with (
        serve(args.database_url, "promptops-bench-opt-") as (base, _),
        httpx.Client(base_url=base, headers=HEADERS, timeout=60) as api,
    ):
        started = time.perf_counter()
        r = api.post(
            "/api/v1/optimizations",
            json={
                "prompt": "sentiment/zero-shot@production",
                "dataset": "sentiment/reviews",
                "budget": args.budget,
                "seed": args.seed,
            },
        )
        r.raise_for_status()
        optimization: dict[str, Any] = r.json()
        while optimization["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.2)
            optimization = api.get(f"/api/v1/optimizations/{optimization['id']}").json()
        wall = time.perf_counter() - started

    print(f"optimization {optimization['id']}: {optimization['status']}")
    if optimization.get("error"):
        print("error:", optimization["error"])
    print(f"{'round':>5}  {'strategy':<18} {'status':<10} {'train':>6} {'val':>6} {'calls':>5} {'tokens':>6}")
    for row in optimization["trajectory"]:
        print(
            f"{row['round']:>5}  {row['strategy']:<18} {row['status']:<10} {score(row['trainScore']):>6} "
            f"{score(row['valScore']):>6} {row['calls']:>5} {row['tokens'] or 0:>6}"
        )
    report = optimization["report"]
    spec = optimization["spec"]
    print()
    print(
        f"target             local/gemma-3-270m, {spec['trainCases']} train / {spec['valCases']} held-out cases"
    )
    print(f"wall time          {wall:.1f} s (model load included)")
    print(f"model calls        {optimization['callsUsed']} of a budget of {optimization['budget']}")
    if optimization["status"] == "completed":
        baseline, winner = report["baseline"], report["winner"]
        print(f"held-out baseline  {baseline['valScore']:.2f} (zero-shot)")
        print(
            f"held-out winner    {winner['valScore']:.2f} ({winner['strategy']}, version {winner.get('version')})"
        )
        print(
            f"improvement        {report['improvementPoints']:+.1f} points, stopped: {report['stopReason']}"
        )
        print(f"per call           {1000 * wall / max(1, optimization['callsUsed']):.0f} ms (wall / calls)")


if __name__ == "__main__":
    main()
