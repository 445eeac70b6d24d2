"""The Python SDK's figures against a real ``promptops serve`` (SQLite, this machine):

- ``get_prompt`` from the memory cache: p50/p99 per call (microseconds, no network);
- a cold fetch (memory cache cleared: one HTTP request per prompt plus one per include);
- local ``render`` of the fetched prompt;
- with the server stopped, a restarted client: the first ``get_prompt`` (from the disk copy) and the next ones;
- trace overhead per call (``with po.trace(...) as t: t.record(...)`` in the app's thread) and the background
  sender's throughput (runs stored per second through ``POST /api/v1/runs/batch``).

Run: ``.venv/bin/python bench/sdk.py`` (``--runs N`` traces for the sender figure, default 20000).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from promptops_sdk import PromptOps
from server import HEADERS, KEY, serve

PROMPT = "support/reply"  # an example prompt every fresh server has (chat, label production)
VARIABLES = {"product": "Acme", "customer_name": "Dana", "message": "How do I export my data?"}


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def timed(calls: int, action: object) -> list[int]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        action()  # type: ignore[operator]
        samples.append(time.perf_counter_ns() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20_000, help="traces sent for the throughput figure")
    args = parser.parse_args()
    cache_dir = Path(tempfile.mkdtemp(prefix="promptops-sdk-bench-")) / "cache"

    with serve(prefix="promptops-bench-sdk-") as (base, _tmp):
        # a prompt with an include as well, so the cold fetch shows the include request
        httpx.post(
            f"{base}/api/v1/prompts",
            headers=HEADERS,
            json={"name": "bench/tone", "template": "Be concise.", "labels": ["production"]},
        ).raise_for_status()
        httpx.post(
            f"{base}/api/v1/prompts",
            headers=HEADERS,
            json={
                "name": "bench/answer",
                "template": '{% include "bench/tone@production" %} Answer: {{ q }}',
                "variables": [{"name": "q"}],
                "labels": ["production"],
            },
        ).raise_for_status()
        po = PromptOps(
            base, KEY, cache_dir=cache_dir, cache_ttl=3600, max_queue=args.runs + 10, batch_size=500
        )
        for name in (PROMPT, "bench/answer"):
            po.get_prompt(name, label="production")  # warm the server's caches and the disk copy

        def cold(name: str) -> None:
            po.invalidate()
            po.get_prompt(name, label="production")

        cold_plain = timed(50, lambda: cold(PROMPT))
        cold_include = timed(50, lambda: cold("bench/answer"))
        po.get_prompt(PROMPT, label="production")
        hits = timed(100_000, lambda: po.get_prompt(PROMPT, label="production"))
        prompt = po.get_prompt(PROMPT, label="production")
        renders = timed(20_000, lambda: prompt.render(**VARIABLES))
        print(f"server: {base} (SQLite), prompt {PROMPT!r} (chat) and 'bench/answer' (text with one include)")
        p50, p99 = percentiles(hits)
        print(
            f"get_prompt cached:           p50 {p50:8.2f} µs   p99 {p99:8.2f} µs   ({len(hits)} calls, no network)"
        )
        for label, samples in (
            ("get_prompt cold (1 request)", cold_plain),
            ("cold with 1 include (2 req.)", cold_include),
        ):
            p50, p99 = percentiles(samples)
            print(f"{label + ':':29s}p50 {p50 / 1000:8.2f} ms   p99 {p99 / 1000:8.2f} ms")
        p50, p99 = percentiles(renders)
        print(f"render (local):              p50 {p50:8.2f} µs   p99 {p99:8.2f} µs")

        def one_trace() -> None:
            with po.trace(prompt=prompt, input="hello") as t:
                t.record(output="hi", input_tokens=12, output_tokens=3)

        started = time.perf_counter()
        overhead = timed(args.runs, one_trace)
        queued_in = time.perf_counter() - started
        p50, p99 = percentiles(overhead)
        print(
            f"trace overhead per call:     p50 {p50:8.2f} µs   p99 {p99:8.2f} µs   ({args.runs} traces queued in {queued_in:.2f} s)"
        )
        flushed = po.flush(300)
        elapsed = time.perf_counter() - started
        stored = httpx.get(
            f"{base}/api/v1/analytics/usage",
            headers=HEADERS,
            params={"groupBy": "source", "bucket": "day", "source": "sdk"},
        ).json()["totals"]["runs"]
        print(
            f"sender throughput:           {po.stats.sent / elapsed:8.0f} runs/s   "
            f"({po.stats.sent} sent in {po.stats.batches} batches, {elapsed:.2f} s to flush; stored {stored}; "
            f"dropped {po.stats.dropped}, failed {po.stats.failed}, flushed {flushed})"
        )
        po.close()

    # the server is stopped now: a restarted app (new client, empty memory) is served from the disk copies
    restarted = PromptOps(base, KEY, cache_dir=cache_dir, cache_ttl=3600, timeout=2.0, tracing=False)
    started = time.perf_counter_ns()
    first = restarted.get_prompt(PROMPT, label="production")
    first_us = (time.perf_counter_ns() - started) / 1000
    hits = timed(10_000, lambda: restarted.get_prompt(PROMPT, label="production"))
    text = first.render(**VARIABLES)
    p50, p99 = percentiles(hits)
    print(
        f"server stopped, restarted client: first get_prompt {first_us / 1000:.2f} ms from {first.source!r} "
        f"(connection refused, then the disk copy; renders {len(text)} messages); then p50 {p50:.2f} µs, "
        f"p99 {p99:.2f} µs from memory"
    )
    restarted.close(0)
    started = time.perf_counter_ns()
    no_copy = PromptOps(base, KEY, cache_dir=cache_dir / "empty", timeout=2.0, tracing=False)
    fallback = no_copy.get_prompt("bench/new", fallback="Hello {{ name }}")
    print(
        f"server stopped, no disk copy: get_prompt(fallback=...) {(time.perf_counter_ns() - started) / 1e6:.2f} ms "
        f"-> source {fallback.source!r}"
    )
    no_copy.close(0)


if __name__ == "__main__":
    main()
