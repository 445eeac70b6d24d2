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
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

KEY = "po_bench000_" + "O" * 40
HEADERS = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


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

    tmp = Path(tempfile.mkdtemp(prefix="promptops-bench-opt-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PROMPTOPS_DATA_DIR": str(tmp / "data"),
        "PROMPTOPS_DATABASE_URL": args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
        "PROMPTOPS_LOG_LEVEL": "warning",
    }
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "promptops"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_ready(base, server)
        with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as api:
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
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

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
