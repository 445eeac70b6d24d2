"""Capture gateway benchmark: PromptOps' gateway side by side with LiteLLM's proxy, against the same 0 ms
OpenAI-compatible upstream and under the same load, in one run.

    .venv/bin/python bench/gateway.py [--duration 10] [--latency-duration 5] [--connections 64]
                                      [--postgres] [--skip-litellm] [--skip-durability] [--profile]

Processes, each its own: the upstream (bench/gateway/upstream.py, a bare ASGI app on uvicorn that answers
every chat completion at once), the load generator (wrk, C, one thread, bench/gateway/load.lua POSTs one
chat completion per request) and the servers under test. Targets:

1. direct: wrk straight to the upstream. This is also the check that neither the upstream nor the load
   generator is the bottleneck of the other rows (their CPU use is printed).
2. PromptOps: ``promptops gateway`` (1 process) on a fresh database, model ``fake/gpt-4o-mini`` through a
   provider connection to the upstream, authenticated by a PromptOps API key; every call is recorded as a
   run through the gateway's outbox. After the load the runs in the database are counted against the 200
   answers the load generator got.
3. LiteLLM: ``litellm[proxy]==1.100.5`` in its own venv (bench/.litellm-venv, created on first use with
   uv), a config.yaml routing ``gpt-4o-mini`` to ``openai/gpt-4o-mini`` at the upstream, a master key, no
   database, callbacks and logging off, as many worker processes as our gateway.

Per target: a warm-up (not counted), then ``--rounds`` rounds (default 3, the targets interleaved) of latency
with 1 connection (the added latency of one call, no queueing) and throughput with N connections (default
64; wrk keeps each connection busy, so this is the maximum requests/s; latency there is mostly queueing).
The best round counts: other work on a shared machine only ever slows a round down. "Added" = the target's
percentile minus direct's. The CPU time each server spends per answered request is printed too: unlike
requests/s it hardly depends on what else runs on the machine.

Durability: the gateway under 64 concurrent clients (httpx, each request carries a unique marker), killed
with SIGKILL mid-load and started again on the same port; then every marker answered 200 must be in the
database exactly once (recorded vs acknowledged; goal 100 %).

Prints a table and writes the figures to bench/results/gateway.json. ``--profile`` adds a throughput pass
with the gateway's app under cProfile (bench/gateway/profiled.py) and prints where its report is.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eval import cpu_seconds, wait_http
from resolve import drop_postgres, ensure_wrk, postgres_database
from server import HEADERS, free_port, serve, wait_ready
from sqlalchemy import text

from promptops.config import normalize_database_url
from promptops.db import Database

HERE = Path(__file__).resolve().parent
PARTS = HERE / "gateway"
RESULTS = HERE / "results" / "gateway.json"
LITELLM_SPEC = "litellm[proxy]==1.100.5"
LITELLM_VENV = HERE / ".litellm-venv"
LITELLM_KEY = "sk-litellm-bench-0000000000"
MODEL = "gpt-4o-mini"
CONNECTION = "fake"
CONTENT = "Classify the sentiment of this review: the product arrived on time and works as described."
MARKER = re.compile(r"durability-(\d+)-end")
BIN = Path(sys.executable).parent
UPSTREAM = [sys.executable, "-m", "uvicorn", "--app-dir", str(PARTS), "upstream:app", "--host", "127.0.0.1"]
UPSTREAM += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
UPSTREAM += ["--lifespan", "on", "--backlog", "4096"]
# Settings every PromptOps process of the bench gets: the upstream is on loopback (the SSRF guard refuses
# it unless allowed), no example data, quiet logs, and no per-key rate limit in the way of the load.
PROMPTOPS_ENV = {
    "PROMPTOPS_PROVIDER_ALLOWED_HOSTS": "127.0.0.1",
    "PROMPTOPS_LOAD_EXAMPLES": "false",
    "PROMPTOPS_LOG_LEVEL": "warning",
    "PROMPTOPS_GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
}


@dataclass
class Target:
    name: str
    url: str
    model: str
    auth: str
    pid: int | None
    results: dict[str, Any] = field(default_factory=dict)


def chat_body(model: str, content: str = CONTENT) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(wrk: str, target: Target, connections: int, seconds: int, upstream_pid: int) -> dict[str, Any]:
    """One wrk run against ``target``: counts, latency percentiles (ms), and the CPU share (1.0 = one core)
    that the load generator, the server under test and the upstream used during it."""
    env = {**os.environ, "BENCH_BODY": chat_body(target.model), "BENCH_AUTH": target.auth}
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(PARTS / "load.lua"), target.url]
    cpu = {"loadgen": children_cpu(), "server": _cpu(target.pid), "upstream": _cpu(upstream_pid)}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
    wall = time.perf_counter() - started
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line.split(" ", 1)[1])
    seconds_measured = raw["duration_us"] / 1e6
    after = {"loadgen": children_cpu(), "server": _cpu(target.pid), "upstream": _cpu(upstream_pid)}
    used: dict[str, float] = {}
    for name, before in cpu.items():
        end = after[name]
        if before is not None and end is not None:
            used[name] = end - before
    return {
        "connections": connections,
        "seconds": round(seconds_measured, 3),
        "ok": raw["ok"],
        "non_200": raw["non_200"],
        "socket_errors": raw["connect_errors"] + raw["read_errors"] + raw["write_errors"],
        "timeouts": raw["timeouts"],
        "rps": round(raw["ok"] / seconds_measured, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "cpu": {name: round(seconds / wall, 2) for name, seconds in used.items()},
        # CPU time per answered request: unlike requests/s, it barely moves when other work shares the cores.
        "cpu_ms_per_request": {
            name: round(seconds * 1000 / raw["ok"], 3) for name, seconds in used.items() if raw["ok"]
        },
    }


def _cpu(pid: int | None) -> float | None:
    """CPU seconds of ``pid`` and its child processes (uvicorn's workers when there are several)."""
    if pid is None:
        return None
    total = cpu_seconds(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if total is None or not children.exists():
        return total
    return total + sum(_cpu(int(child)) or 0.0 for child in children.read_text().split())


def warm_up(wrk: str, target: Target, args: argparse.Namespace, upstream_pid: int) -> None:
    print(f"[{target.name}] warm-up {args.warmup}s at {args.connections} connections", flush=True)
    target.results["warmup"] = run_wrk(wrk, target, args.connections, args.warmup, upstream_pid)


def measure_round(wrk: str, target: Target, args: argparse.Namespace, upstream_pid: int, n: int) -> None:
    print(
        f"[round {n}] {target.name}: 1 connection {args.latency_duration}s, "
        f"{args.connections} connections {args.duration}s",
        flush=True,
    )
    c1 = run_wrk(wrk, target, 1, args.latency_duration, upstream_pid)
    load = run_wrk(wrk, target, args.connections, args.duration, upstream_pid)
    target.results.setdefault("rounds", []).append({"c1": c1, "load": load})


def keep_best(target: Target) -> None:
    """Other work on a shared machine only ever slows a round down, so each figure is the best round's: the
    1-connection round with the lowest p50 and the throughput round with the most requests/s."""
    rounds = target.results["rounds"]
    answered = [r for r in rounds if r["c1"]["ok"]] or rounds  # a run without answers has no latency
    target.results["c1"] = min((r["c1"] for r in answered), key=lambda r: r["p50_ms"])
    target.results["load"] = max((r["load"] for r in rounds), key=lambda r: r["rps"])


def all_runs(target: Target) -> list[dict[str, Any]]:
    return [target.results["warmup"]] + [r[k] for r in target.results["rounds"] for k in ("c1", "load")]


def acknowledged(target: Target) -> int:
    """200 answers the load generator got from ``target`` in all its runs."""
    return sum(int(run["ok"]) for run in all_runs(target))


# --- PromptOps ------------------------------------------------------------------------------------------


def promptops_database(upstream: str, database_url: str | None) -> tuple[str, Path]:
    """A migrated database with the bootstrap admin key and a connection ``fake`` to the upstream, made
    through the REST API of a ``promptops serve`` that is stopped again before the benchmark."""
    with serve(database_url, prefix="promptops-bench-gateway-") as (base, tmp):
        created = httpx.post(
            base + "/api/v1/providers",
            headers=HEADERS,
            timeout=30,
            json={
                "name": CONNECTION,
                "type": "openai",
                "baseUrl": upstream,
                "apiKey": "sk-bench",
                "maxRetries": 0,
                "maxConcurrency": 1000,
            },
        )
        if created.status_code != 201:
            raise SystemExit(f"creating the provider connection failed: {created.status_code} {created.text}")
    return database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}", tmp


def start_gateway(
    database_url: str, tmp: Path, port: int, log_name: str, workers: int = 1, profile: Path | None = None
) -> subprocess.Popen[bytes]:
    """``promptops gateway`` on ``port`` (or, with ``profile``, its app under cProfile: gateway/profiled.py)."""
    command = [str(BIN / "promptops"), "gateway", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--database-url", database_url, "--workers", str(workers)]
    if profile is not None:
        command = [sys.executable, str(PARTS / "profiled.py"), str(port), str(profile)]
    env = {
        **os.environ,
        **PROMPTOPS_ENV,
        "PROMPTOPS_DATA_DIR": str(tmp / "data"),
        "PROMPTOPS_DATABASE_URL": database_url,
    }
    with (tmp / log_name).open("ab") as log:
        # Its own process group, so that kill -9 reaches uvicorn's worker processes too (--workers > 1).
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful stop; cProfile then writes its file
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _recorded(database_url: str, markers: bool) -> list[str]:
    db = Database(normalize_database_url(database_url))
    try:
        async with db.transaction() as session:
            if markers:
                query = (
                    "SELECT CAST(input AS TEXT) FROM runs WHERE source = 'gateway' "
                    "AND CAST(input AS TEXT) LIKE '%durability-%'"
                )
                return [row[0] for row in (await session.execute(text(query))).all()]
            count = (
                await session.execute(text("SELECT count(*) FROM runs WHERE source = 'gateway'"))
            ).scalar()
            return [str(count)]
    finally:
        await db.dispose()


def recorded_count(database_url: str) -> int:
    return int(asyncio.run(_recorded(database_url, markers=False))[0])


def wait_drained(database_url: str, at_least: int, timeout: float = 60) -> tuple[int, float]:
    """Runs in the database once the outbox has drained (the count reaches ``at_least`` and stays put for
    a second), and how long that took after the load stopped."""
    started = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        count = recorded_count(database_url)
        if count != last:
            last, since = count, time.monotonic()
        elif count >= at_least and time.monotonic() - since >= 1.0:
            break
        time.sleep(0.2)
    return last, round(since - started, 2)


async def durability_load(
    url: str, model: str, seconds_before: float, seconds_after: float, restart: Any
) -> dict[str, Any]:
    """64 clients send requests with unique markers; after ``seconds_before`` the gateway is killed and
    ``restart()`` starts it again; the load goes on ``seconds_after`` more. Returns what the clients saw."""
    acked: set[int] = set()
    failures: Counter[str] = Counter()
    counter = iter(range(10**9))
    stopping = asyncio.Event()
    timings: dict[str, float] = {}
    headers = {"Authorization": HEADERS["Authorization"], "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(10.0)) as client:

        async def worker() -> None:
            while not stopping.is_set():
                i = next(counter)
                body = chat_body(model, f"{CONTENT} [durability-{i}-end]")
                try:
                    r = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)  # the gateway is down: do not spin while it restarts
                    continue
                if r.status_code == 200:
                    acked.add(i)
                else:
                    failures[f"HTTP {r.status_code}"] += 1
                    await asyncio.sleep(0.05)

        async def chaos() -> None:
            await asyncio.sleep(seconds_before)
            timings["acked_before_kill"] = len(acked)
            started = time.monotonic()
            await asyncio.to_thread(restart)
            timings["restart_s"] = round(time.monotonic() - started, 2)
            mark = len(acked)
            await asyncio.sleep(seconds_after)
            timings["acked_after_restart"] = len(acked) - mark
            stopping.set()

        await asyncio.gather(chaos(), *(worker() for _ in range(64)))
    return {"acked": acked, "sent": next(counter), "failures": dict(failures), **timings}


def durability(database_url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    procs = [start_gateway(database_url, tmp, port, "gateway-durability.log", args.workers)]

    def kill_and_restart() -> None:
        os.killpg(procs[-1].pid, signal.SIGKILL)
        procs[-1].wait(timeout=30)
        procs.append(start_gateway(database_url, tmp, port, "gateway-durability.log", args.workers))

    try:
        seen = asyncio.run(
            durability_load(
                url, f"{CONNECTION}/{MODEL}", args.kill_after, args.after_restart, kill_and_restart
            )
        )
        acked: set[int] = seen.pop("acked")
        wait_drained(database_url, 0)
        rows = asyncio.run(_recorded(database_url, markers=True))
    finally:
        stop(procs[-1])
    stored = Counter(int(m.group(1)) for row in rows for m in [MARKER.search(row)] if m)
    recorded = set(stored)
    return {
        **seen,
        "acknowledged": len(acked),
        "recorded_of_acknowledged": len(acked & recorded),
        "lost": len(acked - recorded),
        "recorded_not_acknowledged": len(recorded - acked),
        "stored_twice": sum(1 for n in stored.values() if n > 1),
        "recorded_pct": round(100 * len(acked & recorded) / len(acked), 3) if acked else None,
    }


def profile_gateway(
    wrk: str, database_url: str, tmp: Path, args: argparse.Namespace, upstream_pid: int
) -> str:
    port = free_port()
    out = tmp / "gateway.prof"
    proc = start_gateway(database_url, tmp, port, "gateway-profile.log", profile=out)
    target = Target(
        "profile",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        f"{CONNECTION}/{MODEL}",
        HEADERS["Authorization"],
        proc.pid,
    )
    try:
        run_wrk(wrk, target, args.connections, args.duration, upstream_pid)
    finally:
        stop(proc)
    if not out.exists():
        return "(no profile written: the gateway did not exit cleanly)"
    report = tmp / "gateway-profile.txt"
    with report.open("w") as f:
        stats = pstats.Stats(str(out), stream=f)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats("promptops/", 40)
        stats.sort_stats("cumulative").print_stats(40)
    return str(report)


# --- LiteLLM ---------------------------------------------------------------------------------------------


def ensure_litellm() -> Path:
    """bench/.litellm-venv with ``litellm[proxy]`` at the pinned version (created with uv on first use)."""
    python = LITELLM_VENV / "bin" / "python"
    version = LITELLM_SPEC.split("==")[1]
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"]
    if python.exists() and subprocess.run(probe, capture_output=True, text=True).stdout.strip() == version:
        return LITELLM_VENV
    found = shutil.which("uv")
    uv = [found] if found else [sys.executable, "-m", "uv"]
    if not found and importlib.util.find_spec("uv") is None:
        raise SystemExit(
            "uv is needed to create bench/.litellm-venv (pip install uv), or pass --skip-litellm"
        )
    print(f"creating {LITELLM_VENV} with {LITELLM_SPEC} ...", flush=True)
    subprocess.run([*uv, "venv", "--quiet", "--python", "3.11", str(LITELLM_VENV)], check=True)
    subprocess.run([*uv, "pip", "install", "--quiet", "--python", str(python), LITELLM_SPEC], check=True)
    return LITELLM_VENV


def start_litellm(venv: Path, upstream: str, tmp: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    config = tmp / "litellm.yaml"
    config.write_text(  # JSON is YAML
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": upstream,
                            "api_key": "sk-bench",
                        },
                    }
                ],
                "litellm_settings": {
                    "telemetry": False,
                    "callbacks": [],
                    "success_callback": [],
                    "failure_callback": [],
                    "turn_off_message_logging": True,
                    "num_retries": 0,
                },
                "general_settings": {
                    "master_key": LITELLM_KEY,
                    "disable_spend_logs": True,
                    "disable_error_logs": True,
                },
            },
            indent=2,
        )
    )
    env = {
        **os.environ,
        # Offline and quiet: the bundled price map and header config instead of downloads (and the URLs it
        # would fetch them from pointed at a closed loopback port), no telemetry, error logs only.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
        "LITELLM_MODEL_COST_MAP_URL": "http://127.0.0.1:9/cost.json",
        "LITELLM_ANTHROPIC_BETA_HEADERS_URL": "http://127.0.0.1:9/headers.json",
        "LITELLM_BLOG_POSTS_URL": "http://127.0.0.1:9/rss.xml",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "HOME": str(tmp),
    }
    command = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", str(workers), "--telemetry", "False"]
    with (tmp / "litellm.log").open("ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=tmp)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/liveliness", proc, timeout=180)
    probe = httpx.post(
        url + "/v1/chat/completions",
        content=chat_body(MODEL),
        headers={"Authorization": f"Bearer {LITELLM_KEY}", "Content-Type": "application/json"},
        timeout=60,
    )
    if probe.status_code != 200:
        raise SystemExit(f"LiteLLM does not answer a chat completion: {probe.status_code} {probe.text[:500]}")
    return proc


# --- report ----------------------------------------------------------------------------------------------


def report(targets: list[Target], meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    direct, nan = targets[0].results, float("nan")
    print()
    print(
        f"gateway benchmark: 0 ms upstream, wrk 1 thread, latency at 1 connection ({args.latency_duration}s), "
        f"throughput at {args.connections} connections ({args.duration}s), {os.cpu_count()} cores shared"
    )
    header = (
        f"{'target':<11} {'c1 p50':>7} {'c1 p99':>7} {'+p50':>6} {'+p99':>6} │ {'req/s':>7} "
        f"{'p50':>7} {'p99':>7} {'+p50':>7} {'+p99':>7} {'errors':>6} │ {'ms/req':>6} "
        f"{'srv':>5} {'up':>5} {'gen':>5}"
    )
    print(header)
    print("─" * len(header))
    figures: dict[str, Any] = {}
    stalled: list[str] = []
    for t in targets:
        c1, load = t.results["c1"], t.results["load"]
        added = {
            "c1_p50_ms": round(c1["p50_ms"] - direct["c1"]["p50_ms"], 3),
            "c1_p99_ms": round(c1["p99_ms"] - direct["c1"]["p99_ms"], 3),
            "load_p50_ms": round(load["p50_ms"] - direct["load"]["p50_ms"], 3),
            "load_p99_ms": round(load["p99_ms"] - direct["load"]["p99_ms"], 3),
        }
        errors = sum(r["non_200"] + r["socket_errors"] + r["timeouts"] for r in all_runs(t))
        cpu, per_request = load["cpu"], load["cpu_ms_per_request"]
        own = per_request.get(
            "server", per_request.get("upstream", nan)
        )  # direct: the upstream is the server
        print(
            f"{t.name:<11} {c1['p50_ms']:>7.2f} {c1['p99_ms']:>7.2f} {added['c1_p50_ms']:>6.2f} "
            f"{added['c1_p99_ms']:>6.2f} │ {load['rps']:>7.0f} {load['p50_ms']:>7.2f} {load['p99_ms']:>7.2f} "
            f"{added['load_p50_ms']:>7.2f} {added['load_p99_ms']:>7.2f} {errors:>6} │ {own:>6.2f} "
            f"{cpu.get('server', nan):>5.2f} {cpu.get('upstream', nan):>5.2f} {cpu.get('loadgen', nan):>5.2f}"
        )
        figures[t.name] = {**t.results, "added": added, "errors": errors, "server_cpu_ms_per_request": own}
        if any(run["ok"] == 0 for run in all_runs(t)):
            stalled.append(t.name)
    print(
        "(latencies in ms; c1 = 1 connection; +p50/+p99 = minus direct's; ms/req = CPU time the server under "
        "test spent per answered request; srv/up/gen = cores used during the throughput run by the server, "
        "the upstream and the load generator)"
    )
    for name in stalled:
        print(f"WARNING: {name} answered no request at all in at least one run (it stopped answering)")
    ours, theirs = figures.get("promptops"), figures.get("litellm")
    if (
        ours
        and theirs
        and ours["load"]["rps"]
        and ours["server_cpu_ms_per_request"] == ours["server_cpu_ms_per_request"]
    ):
        ratio = ours["load"]["rps"] / theirs["load"]["rps"]
        cpu_ratio = theirs["server_cpu_ms_per_request"] / ours["server_cpu_ms_per_request"]
        figures["promptops_vs_litellm_rps"] = round(ratio, 2)
        figures["litellm_vs_promptops_cpu_per_request"] = round(cpu_ratio, 2)
        print(
            f"PromptOps / LiteLLM requests/s: {ratio:.2f}x (goal >= 6x); LiteLLM spends {cpu_ratio:.2f}x "
            f"the CPU per request that PromptOps does"
        )
    if ours:
        print(f"PromptOps added p50 at 1 connection: {ours['added']['c1_p50_ms']:.2f} ms (goal <= 1 ms)")
    if "recorded" in meta:
        rec = meta["recorded"]
        verdict = "every call recorded" if rec["complete"] else "MISMATCH"
        print(
            f"PromptOps recorded {rec['runs']} runs for {rec['acknowledged']} acknowledged calls "
            f"({rec['runs'] - rec['acknowledged']:+d}; the calls in flight when wrk stops, at most "
            f"{rec['in_flight_at_stop_max']}, are recorded but not counted by wrk): {verdict}; outbox drained "
            f"{rec['drain_s']} s after the load"
        )
    if "durability" in meta:
        d = meta["durability"]
        print(
            f"durability (kill -9 after {args.kill_after}s of load, restart took {d.get('restart_s')} s): "
            f"{d['recorded_of_acknowledged']}/{d['acknowledged']} acknowledged calls recorded "
            f"({d['recorded_pct']} %), lost {d['lost']}, stored twice {d['stored_twice']}, "
            f"recorded but not acknowledged {d['recorded_not_acknowledged']}, client errors {d['failures']}"
        )
    if "profile" in meta:
        print(f"profile of the gateway under load: {meta['profile']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of the throughput run")
    parser.add_argument("--latency-duration", type=int, default=5, help="seconds of the 1-connection run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up (not counted)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target (best one kept)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of LiteLLM (= our gateway's)"
    )
    parser.add_argument("--postgres", action="store_true", help="PromptOps on PostgreSQL instead of SQLite")
    parser.add_argument(
        "--kill-after", type=float, default=4, help="durability: seconds of load before kill -9"
    )
    parser.add_argument(
        "--after-restart", type=float, default=4, help="durability: seconds of load after restart"
    )
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--skip-durability", action="store_true")
    parser.add_argument("--profile", action="store_true", help="add a pass with the gateway under cProfile")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()
    wrk = ensure_wrk()
    venv = None if args.skip_litellm else ensure_litellm()
    os.environ.update(PROMPTOPS_ENV)  # also for the `promptops serve` that creates the connection
    tmp = Path(tempfile.mkdtemp(prefix="promptops-bench-gateway-"))
    pg_url = postgres_database() if args.postgres else None
    if args.postgres and pg_url is None:
        raise SystemExit("PostgreSQL is not reachable")
    up_port = free_port()
    upstream_base = f"http://127.0.0.1:{up_port}/v1"
    with (tmp / "upstream.log").open("ab") as log:
        upstream = subprocess.Popen([*UPSTREAM, "--port", str(up_port)], stdout=log, stderr=log)
    meta: dict[str, Any] = {}
    targets: list[Target] = []
    data: Path | None = None
    gateway: subprocess.Popen[bytes] | None = None
    litellm: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{up_port}/", upstream)
        targets.append(Target("direct", upstream_base + "/chat/completions", MODEL, "Bearer sk-bench", None))
        database_url, data = promptops_database(upstream_base, pg_url)
        port = free_port()
        gateway = start_gateway(database_url, data, port, "gateway.log", args.workers)
        ours = Target(
            "promptops",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            f"{CONNECTION}/{MODEL}",
            HEADERS["Authorization"],
            gateway.pid,
        )
        targets.append(ours)
        if venv is not None:
            port = free_port()
            litellm = start_litellm(venv, upstream_base, tmp, port, args.workers)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            targets.append(Target("litellm", url, MODEL, f"Bearer {LITELLM_KEY}", litellm.pid))
        for target in targets:
            warm_up(wrk, target, args, upstream.pid)
        for n in range(1, args.rounds + 1):  # interleaved, so that a busy spell hits every target alike
            for target in targets:
                measure_round(wrk, target, args, upstream.pid, n)
        for target in targets:
            keep_best(target)
        runs, drain = wait_drained(database_url, acknowledged(ours))
        in_flight = sum(run["connections"] for run in all_runs(ours))  # at most one per connection per run
        acked = acknowledged(ours)
        meta["recorded"] = {
            "runs": runs,
            "acknowledged": acked,
            "in_flight_at_stop_max": in_flight,
            "complete": acked <= runs <= acked + in_flight,
            "drain_s": drain,
        }
        stop(gateway)
        stop(litellm)
        gateway = litellm = None

        if not args.skip_durability:
            print("[durability] 64 clients, kill -9 mid-load, restart ...", flush=True)
            meta["durability"] = durability(database_url, data, args)
        if args.profile:
            print("[profile] gateway under cProfile ...", flush=True)
            meta["profile"] = profile_gateway(wrk, database_url, data, args, upstream.pid)
    finally:
        stop(gateway)
        stop(litellm)
        upstream.terminate()
        upstream.wait(timeout=10)
        if pg_url:
            drop_postgres(pg_url)

    figures = report(targets, meta, args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    setup = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_generator": "wrk -t1 (bench/gateway/load.lua)",
        "connections": args.connections,
        "duration_s": args.duration,
        "latency_duration_s": args.latency_duration,
        "warmup_s": args.warmup,
        "database": "postgresql" if args.postgres else "sqlite",
        "workers": args.workers,
        "litellm": None if args.skip_litellm else LITELLM_SPEC,
        # uvicorn with uvloop for all three; LiteLLM's own install has no httptools, so its uvicorn parses with h11
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta.pop("profile", None)
    args.output.write_text(json.dumps({"setup": setup, "targets": figures, **meta}, indent=2) + "\n")
    print(f"figures written to {args.output}")
    shutil.rmtree(tmp, ignore_errors=True)
    if not args.profile and data is not None:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
