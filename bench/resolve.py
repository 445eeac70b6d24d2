"""Benchmark: resolve-by-label throughput and latency of one server worker under wrk on loopback.

Starts ``promptops serve`` (1 worker) on a fresh database, then drives
``GET /api/v1/prompts/sentiment/few-shot@production`` with wrk (C load generator, separate process) and
prints requests/s, p50/p95/p99/max latency and errors (connect/read/write errors, non-2xx answers and
requests slower than wrk's 5 s timeout) for SQLite, and PostgreSQL when one answers at
PROMPTOPS_TEST_POSTGRES_URL, each in three modes (see MODES) and at 8 and 64 connections:
- cached: the default 1 s resolve and API key caches;
- uncached: resolve cache off, so every request reads the prompt from the database (what a cache miss costs);
- no cache: both caches off, so every request also verifies its API key against the database.
wrk starts all connections at once, and the first requests of a run wait behind that burst: max latency
includes it; p99 over a 15 s run does not.

    make bench            # or: .venv/bin/python bench/resolve.py [--duration 10] [--connections 8,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from server import free_port

KEY = "po_bench000_" + "B" * 40
PATH = "/api/v1/prompts/sentiment/few-shot@production"
PG_URL = os.environ.get("PROMPTOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f %.3f %d\\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


# (row label, resolve cache TTL, API key cache TTL). "uncached" is what every resolve-cache miss costs (a new
# prompt, a label move, a deploy): the prompt is read from the database; "no cache" also verifies the API key
# against the database on every request.
MODES = (("cached", 1.0, 1.0), ("uncached", 0.0, 1.0), ("no cache", 0.0, 0.0))


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found; installing it from Debian's packages ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is required (apt-get install wrk)")
    return found


def postgres_database() -> str | None:
    import asyncpg

    base, _, maintenance = PG_URL.rpartition("/")
    name = f"promptops_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{base}/{maintenance}", timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except Exception as exc:
        print(f"PostgreSQL not reachable at {PG_URL} ({exc}); skipping its rows")
        return None
    return f"{base}/{name}"


def drop_postgres(url: str) -> None:
    import asyncpg

    base, _, name = url.rpartition("/")
    _, _, maintenance = PG_URL.rpartition("/")

    async def drop() -> None:
        conn = await asyncpg.connect(f"{base}/{maintenance}", timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def start_server(
    database_url: str | None, data_dir: Path, cache_ttl: float, key_ttl: float, port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PROMPTOPS_DATA_DIR": str(data_dir),
        "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
        "PROMPTOPS_LOG_LEVEL": "WARNING",
        "PROMPTOPS_RESOLVE_CACHE_TTL_SECONDS": str(cache_ttl),
        "PROMPTOPS_API_KEY_CACHE_TTL_SECONDS": str(key_ttl),
        "PROMPTOPS_PORT": str(port),
    }
    if database_url:
        env["PROMPTOPS_DATABASE_URL"] = database_url
    else:
        env.pop("PROMPTOPS_DATABASE_URL", None)
    promptops = Path(sys.executable).with_name("promptops")
    proc = subprocess.Popen(
        [str(promptops), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe nobody reads: a full pipe would block the server mid-run.
        stderr=(data_dir.parent / f"server-{port}.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = httpx.get(
                f"http://127.0.0.1:{port}{PATH}", headers={"Authorization": f"Bearer {KEY}"}, timeout=2
            )
            if r.status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            sys.exit(f"server exited: {(data_dir.parent / f'server-{port}.log').read_text()}")
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not become ready")


def run_wrk(wrk: str, port: int, duration: int, connections: int, script: Path) -> dict[str, float]:
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        "-H",
        f"Authorization: Bearer {KEY}",
        f"http://127.0.0.1:{port}{PATH}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    requests, duration_us, p50, p95, p99, pmax, errors = line.split()[1:]
    return {
        "rps": int(requests) / (int(duration_us) / 1e6),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(pmax),
        "errors": int(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per row")
    parser.add_argument(
        "--connections", default="8,64", help="concurrent keep-alive connections, comma-separated runs"
    )
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    wrk = ensure_wrk()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(LUA)
        pg = postgres_database()
        databases: list[tuple[str, str | None]] = [("sqlite", None)] + ([("postgresql", pg)] if pg else [])
        try:
            for db_name, url in databases:
                data_dir = Path(tmp) / f"data-{db_name}"
                for label, ttl, key_ttl in MODES:
                    port = free_port()
                    proc = start_server(url, data_dir, ttl, key_ttl, port)
                    try:
                        run_wrk(wrk, port, 2, max(connections), script)  # warm-up
                        for count in connections:
                            result = run_wrk(wrk, port, args.duration, count, script)
                            rows.append((db_name, label, count, result))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=20)
        finally:
            if pg:
                drop_postgres(pg)
    print()
    print(
        f"resolve-by-label, 1 server worker, wrk 1 thread, {args.duration}s per row, "
        f"{os.cpu_count()} cores shared by server and load generator"
    )
    print(
        f"{'database':<11} {'mode':<9} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>7}"
    )
    for db_name, label, count, r in rows:
        print(
            f"{db_name:<11} {label:<9} {count:>5} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p95']:>8.2f} "
            f"{r['p99']:>8.2f} {r['max']:>8.1f} {r['errors']:>7}"
        )


if __name__ == "__main__":
    main()
