"""Evaluation engine overhead per case, side by side with promptfoo, against the same 0 ms OpenAI-compatible
upstream and the same cases at concurrency 32.

    .venv/bin/python bench/eval.py [--cases 2000] [--concurrency 32] [--database-url URL]

Both tools render the same template for every case, call the same upstream (which answers at once) and check
the answer with a `contains` assertion, so the time measured is each tool's own work per case: rendering,
the HTTP call, scoring and storing the result. For PromptOps the evaluation is a durable background job that
stores every case result and every model call (a Run) in the database (checked after each run). promptfoo runs in memory and writes
one JSON report at the end (its cache is disabled so every case calls the upstream).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from server import free_port

HERE = Path(__file__).resolve().parent
KEY = "po_bench000_" + "B" * 40
TEMPLATE = "Classify the sentiment of this review: {{ review }}"


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def reviews(n: int) -> list[str]:
    return [
        f"review {i}: the product arrived on time and works as described, item {i % 97}" for i in range(n)
    ]


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) used so far by process ``pid`` (Linux /proc; None elsewhere). On a busy
    machine it moves much less than wall time, so it is printed beside the rate."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_pages(api: httpx.Client, path: str, params: dict[str, Any]) -> int:
    """How many items a paged list endpoint returns in all."""
    total, cursor = 0, None
    while True:
        page = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        page.raise_for_status()
        body = page.json()
        total += len(body["items"])
        cursor = body.get("nextCursor")
        if not cursor:
            return total


def bench_promptops(
    upstream: str, cases: list[str], concurrency: int, tmp: Path, database_url: str | None
) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "PROMPTOPS_DATA_DIR": str(tmp / "data"),
        "PROMPTOPS_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
        "PROMPTOPS_PROVIDER_ALLOWED_HOSTS": "127.0.0.1",
        "PROMPTOPS_LOAD_EXAMPLES": "false",
        "PROMPTOPS_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "promptops"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "server.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", server)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)

        def ok(r: httpx.Response) -> Any:
            if r.status_code >= 300:
                raise SystemExit(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
            return r.json()

        ok(
            api.post(
                "/api/v1/providers",
                json={
                    "name": "fake",
                    "type": "openai",
                    "baseUrl": upstream,
                    "apiKey": "sk-bench",
                    "maxRetries": 0,
                },
            )
        )
        ok(
            api.post(
                "/api/v1/prompts",
                json={"name": "bench/sentiment", "template": TEMPLATE, "variables": [{"name": "review"}]},
            )
        )
        dataset = [
            {"id": f"c{i}", "input": {"review": text}, "expected": "positive"} for i, text in enumerate(cases)
        ]
        ok(api.post("/api/v1/datasets", json={"name": "bench/reviews", "cases": dataset}))
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        run = ok(
            api.post(
                "/api/v1/evals",
                json={
                    "prompts": ["bench/sentiment"],
                    "dataset": "bench/reviews",
                    "models": [{"provider": "fake", "model": "gpt-4o-mini"}],
                    "scorers": [{"type": "contains"}],
                    "concurrency": concurrency,
                },
            )
        )
        while run["status"] not in ("completed", "failed", "cancelled"):
            # The job's own start and finish times are what is measured; polling more often than this only
            # adds API work to the server while it runs the job.
            time.sleep(0.1)
            run = ok(api.get(f"/api/v1/evals/{run['id']}"))
        wall = time.perf_counter() - started
        cpu_after = cpu_seconds(server.pid)
        cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
        if run["status"] != "completed" or run["summary"][0]["passed"] != len(cases):
            raise SystemExit(
                f"promptops evaluation did not pass every case: {run['status']} {run['summary']}"
            )
        job = (
            datetime.fromisoformat(run["finishedAt"]) - datetime.fromisoformat(run["startedAt"])
        ).total_seconds()
        # What was measured must have stored everything: one result per case, one run per model call.
        results = count_pages(api, f"/api/v1/evals/{run['id']}/results", {"limit": 500})
        runs = count_pages(api, "/api/v1/runs", {"traceId": run["id"], "limit": 200})
        if results != len(cases) or runs != len(cases):
            raise SystemExit(f"promptops stored {results} results and {runs} runs for {len(cases)} cases")
        return {"wall_s": wall, "job_s": job, "cases": len(cases), "cpu_s": cpu}
    finally:
        server.terminate()
        server.wait(timeout=30)


def bench_promptfoo(upstream: str, cases: list[str], concurrency: int, tmp: Path) -> dict[str, Any]:
    binary = HERE / "promptfoo" / "node_modules" / ".bin" / "promptfoo"
    if not binary.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE / "promptfoo", check=True)
    work = tmp / "promptfoo"
    work.mkdir()

    def config(n: int) -> Path:
        with (work / f"cases-{n}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["review"])
            writer.writerows([c] for c in cases[:n])
        path = work / f"config-{n}.yaml"
        path.write_text(
            json.dumps(
                {
                    "prompts": [TEMPLATE],
                    "providers": [
                        {
                            "id": "openai:chat:gpt-4o-mini",
                            "config": {"apiBaseUrl": upstream, "apiKey": "sk-bench"},
                        }
                    ],
                    "defaultTest": {"assert": [{"type": "contains", "value": "positive"}]},
                    "tests": f"file://cases-{n}.csv",
                }
            )
        )
        return path

    env = {
        **os.environ,
        # promptfoo needs Node >= 22: package.json installs one into node_modules/.bin (see its README)
        "PATH": f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PROMPTFOO_CONFIG_DIR": str(work / ".promptfoo"),
        "HOME": str(work),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_CACHE_ENABLED": "false",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "OPENAI_API_KEY": "sk-bench",
    }

    def run(n: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds of promptfoo's processes) of one evaluation of ``n`` cases."""
        out = work / f"out-{n}.json"
        command = [
            str(binary.parent / "node"),
            str(binary),
            "eval",
            "-c",
            str(config(n)),
            "--no-cache",
            "--max-concurrency",
            str(concurrency),
            "--no-progress-bar",
            "--no-table",
            "-o",
            str(out),
        ]
        started = time.perf_counter()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        if not out.exists():
            raise SystemExit(
                f"promptfoo failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}"
            )
        stats = json.loads(out.read_text())["results"]["stats"]
        if stats["successes"] != n:
            raise SystemExit(f"promptfoo did not pass every case: {stats}")
        return elapsed, cpu

    startup, startup_cpu = run(1)
    wall, cpu = run(len(cases))
    return {"wall_s": wall, "startup_s": startup, "cases": len(cases), "cpu_s": cpu - startup_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", help="PostgreSQL URL for PromptOps (default: a fresh SQLite file)")
    parser.add_argument("--skip-promptfoo", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="promptops-bench-eval-"))
    port = free_port()
    upstream_proc = subprocess.Popen([sys.executable, str(HERE / "fake_openai.py"), str(port)])
    upstream = f"http://127.0.0.1:{port}/v1"
    try:
        wait_http(f"http://127.0.0.1:{port}/", upstream_proc)
        cases = reviews(args.cases)
        ours = bench_promptops(upstream, cases, args.concurrency, tmp, args.database_url)
        n = ours["cases"]
        print(f"cases: {n}, concurrency: {args.concurrency}, upstream: 0 ms OpenAI-compatible server")
        print(
            f"PromptOps  job {ours['job_s']:.2f} s → {n / ours['job_s']:.0f} cases/s, "
            f"{ours['job_s'] * 1000 / n:.2f} ms/case; request→completed {ours['wall_s']:.2f} s "
            f"(every case result and model call stored in {'PostgreSQL' if args.database_url else 'SQLite'})"
        )
        if ours["cpu_s"] is not None:
            print(
                f"PromptOps  server CPU {ours['cpu_s']:.2f} s → {ours['cpu_s'] * 1000 / n:.2f} ms/case (incl. progress polls)"
            )
        if not args.skip_promptfoo:
            theirs = bench_promptfoo(upstream, cases, args.concurrency, tmp)
            net = theirs["wall_s"] - theirs["startup_s"]
            print(
                f"promptfoo  wall {theirs['wall_s']:.2f} s ({n / theirs['wall_s']:.0f} cases/s); minus its 1-case "
                f"run ({theirs['startup_s']:.2f} s start-up) {net:.2f} s → {n / net:.0f} cases/s, "
                f"{net * 1000 / n:.2f} ms/case"
            )
            print(
                f"promptfoo  CPU {theirs['cpu_s']:.2f} s net of its start-up → "
                f"{theirs['cpu_s'] * 1000 / n:.2f} ms/case"
            )
            print(f"PromptOps / promptfoo: {net / ours['job_s']:.2f}x the cases per second", end="")
            if ours["cpu_s"]:
                print(f", {theirs['cpu_s'] / ours['cpu_s']:.2f}x less CPU per case")
            else:
                print()
    finally:
        upstream_proc.terminate()
        upstream_proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
