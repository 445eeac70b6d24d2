"""Benchmark: cost of the provider layer and run recording per call, and the local model's speed.

1. Against a 0 ms OpenAI-compatible upstream (bench/fake_openai.py, its own process): latency of the bare
   OpenAI adapter call versus the same call through ``ModelCaller`` (connection lookup, concurrency limit,
   price, cost, and the Run committed to the database before the call returns). The difference is the
   layer's overhead. Sequential calls give per-call latency; 32 concurrent callers give calls/s.
2. The embedded local model (Gemma 3 270M via llama.cpp): a 2-shot sentiment classification, calls/s and
   latency, and generation speed in tokens/s.

    .venv/bin/python bench/providers.py [--calls 400] [--local-calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from promptops.auth.principal import system_principal
from promptops.config import Settings
from promptops.crypto import SecretBox
from promptops.db import Database
from promptops.migrate import upgrade
from promptops.providers.base import ConnectionConfig, ModelRequest
from promptops.providers.calls import CallContext, CallInput, ModelCaller, Target
from promptops.providers.openai_adapter import OpenAIProvider
from promptops.providers.schemas import ConnectionIn
from promptops.providers.service import create_connection
from promptops.runs.recorder import RunRecorder
from promptops.tenancy.models import Organization, Project

MESSAGES = [{"role": "user", "content": "Classify the sentiment: I love it."}]
FEW_SHOT = (
    "Review: The battery died after two days and support never answered.\nSentiment: negative\n\n"
    "Review: Fits perfectly and the sound is wonderful, I use it every day.\nSentiment: positive\n\n"
    "Review: {review}\nSentiment:"
)
REVIEWS = [
    "Terrible quality, broke in a week.",
    "Absolutely love it, best purchase this year.",
    "Arrived late and the box was crushed.",
    "Works great and setup took a minute.",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def setup(tmp: Path, base_url: str) -> tuple[ModelCaller, RunRecorder, CallContext, Database]:
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    settings = Settings(data_dir=tmp, provider_allowed_hosts=["127.0.0.1"])
    box = SecretBox("benchmark-master-secret-0000")
    async with db.transaction(write=True) as session:
        org = Organization(id="org_bench", name="bench")
        project = Project(id="prj_bench", org_id=org.id, name="bench", description="", settings={})
        session.add_all([org, project])
        await session.flush()
        principal = system_principal(project.id, org.id)
        await create_connection(
            session,
            principal,
            ConnectionIn(
                name="fake",
                type="openai",
                base_url=base_url,
                api_key="sk-bench-0000000000",
                max_concurrency=64,
            ),
            box,
            settings.provider_allowed_hosts,
        )
    recorder = RunRecorder(db)
    recorder.start()
    caller = ModelCaller(settings, db, box, recorder, ttl=1.0)
    return caller, recorder, CallContext(principal=principal, source="sdk"), db


async def remote(calls: int, base_url: str, tmp: Path) -> None:
    caller, recorder, ctx, db = await setup(tmp, base_url)
    target = Target("fake", "gpt-4o-mini")
    call = CallInput(messages=MESSAGES)
    bare = OpenAIProvider(ConnectionConfig(type="openai", base_url=base_url, api_key="sk-bench-0000000000"))
    request = ModelRequest(model="gpt-4o-mini", messages=MESSAGES)
    for _ in range(30):  # warm connections, caches
        await bare.complete(request)
        await caller.call(ctx, target, call)
    bare_ms, layer_ms = [], []
    for _ in range(calls):
        t = time.perf_counter()
        await bare.complete(request)
        bare_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        outcome = await caller.call(ctx, target, call)
        layer_ms.append((time.perf_counter() - t) * 1000)
        assert outcome.ok, outcome.error
    concurrent = 32
    started = time.perf_counter()
    per_worker = calls // concurrent + 1

    async def worker() -> None:
        for _ in range(per_worker):
            await caller.call(ctx, target, call)

    batches_before = recorder.batches
    await asyncio.gather(*(worker() for _ in range(concurrent)))
    elapsed = time.perf_counter() - started
    total = per_worker * concurrent
    print("\nprovider layer against a 0 ms OpenAI-compatible upstream (SQLite, run committed before return)")
    print(f"{'':<34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    print(
        f"{'bare OpenAI adapter call':<34} {pct(bare_ms, 0.5):>8.2f} {pct(bare_ms, 0.99):>8.2f} {statistics.mean(bare_ms):>8.2f}"
    )
    print(
        f"{'through ModelCaller + Run':<34} {pct(layer_ms, 0.5):>8.2f} {pct(layer_ms, 0.99):>8.2f} {statistics.mean(layer_ms):>8.2f}"
    )
    print(
        f"{'overhead (difference)':<34} {pct(layer_ms, 0.5) - pct(bare_ms, 0.5):>8.2f} "
        f"{pct(layer_ms, 0.99) - pct(bare_ms, 0.99):>8.2f} {statistics.mean(layer_ms) - statistics.mean(bare_ms):>8.2f}"
    )
    print(
        f"32 concurrent callers: {total / elapsed:.0f} calls/s, {total} runs in "
        f"{recorder.batches - batches_before} commits (group commit)"
    )
    await bare.aclose()
    await caller.aclose()
    await recorder.stop()
    await db.dispose()


async def local(calls: int, tmp: Path) -> None:
    from promptops.providers.local_adapter import LocalProvider, warm_up

    config = ConnectionConfig(type="local")
    load_s = await warm_up(config)
    provider = LocalProvider(config)
    latencies, correct = [], 0
    expected = ["negative", "positive", "negative", "positive"]
    for i in range(calls):
        review = REVIEWS[i % len(REVIEWS)]
        t = time.perf_counter()
        response = await provider.complete(
            ModelRequest(
                model="gemma-3-270m", prompt=FEW_SHOT.format(review=review), temperature=0, max_tokens=2
            )
        )
        latencies.append((time.perf_counter() - t) * 1000)
        correct += expected[i % len(expected)] in response.text.lower()
    t = time.perf_counter()
    long = await provider.complete(
        ModelRequest(
            model="gemma-3-270m",
            prompt="Write a short story about a lighthouse keeper.",
            temperature=0,
            max_tokens=128,
        )
    )
    gen_s = time.perf_counter() - t
    print("\nlocal model (Gemma 3 270M Q4_K_M, llama.cpp in process)")
    print(
        f"load {load_s * 1000:.0f} ms; 2-shot classification: {1000 / statistics.mean(latencies):.1f} calls/s, "
        f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms, {correct}/{calls} correct"
    )
    print(
        f"generation: {long.usage.output_tokens} tokens in {gen_s:.2f} s = {long.usage.output_tokens / gen_s:.0f} tokens/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--local-calls", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_openai.py")), str(port)])
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                httpx.post(f"{base_url}/chat/completions", json={}, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(remote(args.calls, base_url, Path(tmp)))
    finally:
        server.terminate()
        server.wait(timeout=10)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(local(args.local_calls, Path(tmp)))


if __name__ == "__main__":
    main()
