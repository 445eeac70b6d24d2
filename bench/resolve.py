"""Benchmark: resolve-by-label throughput and latency of one server worker under wrk on loopback.

Starts ``promptops serve`` (1 worker) on a fresh database, then drives
``GET /api/v1/prompts/sentiment/few-shot@production`` with wrk (C load generator, separate process) and
prints requests/s and p50/p95/p99 latency for: SQLite with the default resolve cache, SQLite with the
cache off (every request authenticates and resolves against the database), and the same two on
PostgreSQL when one answers at PROMPTOPS_TEST_POSTGRES_URL.

    make bench            # or: .venv/bin/python bench/resolve.py [--duration 10] [--connections 8]
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
    database_url: str | None, data_dir: Path, cache_ttl: float, port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PROMPTOPS_DATA_DIR": str(data_dir),
        "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
        "PROMPTOPS_LOG_LEVEL": "WARNING",
        "PROMPTOPS_RESOLVE_CACHE_TTL_SECONDS": str(cache_ttl),
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
        stderr=subprocess.PIPE,
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
            sys.exit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.2)
    proc.kill()
    sys.exit("server did not become ready")


def run_wrk(wrk: str, port: int, duration: int, connections: int, script: Path) -> dict[str, float]:
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
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
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    args = parser.parse_args()
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
                for label, ttl in (("cache 1s", 1.0), ("no cache", 0.0)):
                    port = free_port()
                    proc = start_server(url, data_dir, ttl, port)
                    try:
                        run_wrk(wrk, port, 2, args.connections, script)  # warm-up
                        result = run_wrk(wrk, port, args.duration, args.connections, script)
                    finally:
                        proc.terminate()
                        proc.wait(timeout=20)
                    rows.append((db_name, label, result))
        finally:
            if pg:
                drop_postgres(pg)
    print()
    print(
        f"resolve-by-label, 1 server worker, wrk 1 thread x {args.connections} connections, {args.duration}s each, "
        f"{os.cpu_count()} cores shared by server and load generator"
    )
    print(
        f"{'database':<11} {'mode':<9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
    )
    for db_name, label, r in rows:
        print(
            f"{db_name:<11} {label:<9} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f} "
            f"{r['max']:>8.1f} {r['errors']:>7}"
        )


if __name__ == "__main__":
    main()
