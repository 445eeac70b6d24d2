"""Tracing with the SDK against a real server: runs land in batches through ``POST /api/v1/runs/batch``, the
decorator, a full queue drops (counted) instead of blocking, retries after the server comes back store each
run once, and a process that exits without flushing still delivers its runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from promptops_sdk import PromptOps

from tests.sdk.support import client, create_prompt, sdk_runs
from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess


def test_traces_land_as_runs_in_batches(served: ServerProcess, tmp_path: Path) -> None:
    create_prompt(
        served,
        name="sdk/traced",
        template="Summarise {{ doc }}",
        variables=[{"name": "doc"}],
        modelConfig={"provider": "openai", "model": "gpt-4o-mini"},
        labels=["production"],
    )
    with client(served, tmp_path, batch_size=10, flush_interval=5.0) as po:
        prompt = po.get_prompt("sdk/traced", label="production")
        for n in range(25):
            with po.trace(prompt=prompt, input=prompt.to_openai_messages(doc=f"d{n}"), trace_id=f"t{n}") as t:
                t.record(output=f"summary {n}", input_tokens=100, output_tokens=20, finish_reason="stop")
        with pytest.raises(ValueError), po.trace(prompt=prompt, input="boom", model="other-model"):
            raise ValueError("the app failed")
        assert po.flush(30)
        assert po.stats.sent == 26 and po.stats.dropped == 0 and po.stats.failed == 0
        assert po.stats.batches >= 3  # 10 + 10 + ... (batch_size), not one request per run

    runs = sdk_runs(served)
    assert len(runs) == 26
    ok = [r for r in runs if r["status"] == "ok"]
    assert {r["traceId"] for r in ok} == {f"t{n}" for n in range(25)}
    first = next(r for r in ok if r["traceId"] == "t0")
    assert first["versionId"] == prompt.version_id and first["promptId"] == prompt.prompt_id
    assert first["model"] == "gpt-4o-mini" and first["provider"] == "openai"  # from the prompt's model config
    assert first["input"] == {"messages": [{"role": "user", "content": "Summarise d0"}]}
    assert first["output"] == "summary 0" and first["inputTokens"] == 100 and first["costUsd"] > 0
    assert first["latencyMs"] >= 0 and first["actorId"].startswith("key_")
    failed = next(r for r in runs if r["status"] == "error")
    assert failed["errorClass"] == "ValueError" and failed["errorMessage"] == "the app failed"
    assert failed["model"] == "other-model" and failed["input"] == {"prompt": "boom"}


def test_traced_decorator_records_sync_and_async_calls(served: ServerProcess, po: PromptOps) -> None:
    @po.traced(model="fn-model")
    def answer(question: str) -> str:
        return f"answer to {question}"

    @po.traced(model="async-model", capture_input=False)
    async def answer_async(question: str) -> str:
        await asyncio.sleep(0)
        if question == "bad":
            raise RuntimeError("no answer")
        return question.upper()

    assert answer("why") == "answer to why"
    assert asyncio.run(answer_async("hey")) == "HEY"
    with pytest.raises(RuntimeError):
        asyncio.run(answer_async("bad"))
    assert po.flush(30)
    runs = {(r["model"], r["status"]): r for r in sdk_runs(served)}
    assert runs[("fn-model", "ok")]["output"] == "answer to why"
    assert runs[("fn-model", "ok")]["input"]["prompt"].startswith("{")  # the arguments, as JSON
    assert runs[("async-model", "ok")]["output"] == "HEY" and runs[("async-model", "ok")]["input"] == {}
    assert runs[("async-model", "error")]["errorClass"] == "RuntimeError"


def test_a_full_queue_drops_and_counts_and_retries_deliver_each_run_once(
    served: ServerProcess, tmp_path: Path
) -> None:
    served.kill()  # the sender can only retry now
    with client(served, tmp_path, max_queue=20, batch_size=5, retry_backoff=0.05, max_retries=200) as po:
        for n in range(1000):
            with po.trace(input=f"call {n}", model="m") as t:
                t.record(output="x")
        # the app was never held up: 1000 traces returned while nothing could be sent
        assert po.stats.enqueued + po.stats.dropped == 1000
        assert po.stats.enqueued <= 20 + 5 and po.stats.dropped >= 1000 - 25
        assert po.flush(0.2) is False
        served.start()
        assert po.flush(60)
        assert po.stats.retries > 0 and po.stats.failed == 0
        assert po.stats.sent == po.stats.enqueued
    runs = sdk_runs(served)
    assert len(runs) == po.stats.enqueued  # each queued run stored exactly once
    assert len({r["id"] for r in runs}) == len(runs)


def test_runs_are_sent_when_the_process_exits(served: ServerProcess, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from promptops_sdk import PromptOps
        po = PromptOps({served.url!r}, {ADMIN_KEY!r}, cache_dir=False, flush_interval=60)
        for n in range(7):
            with po.trace(input="exit " + str(n), model="exit-model") as t:
                t.record(output="done")
        print(po.stats.enqueued)
        # no flush, no close: the atexit hook sends the queued runs
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
    assert len(sdk_runs(served, model="exit-model")) == 7


def test_tracing_can_be_turned_off(served: ServerProcess, tmp_path: Path) -> None:
    with client(served, tmp_path, tracing=False) as po:
        with po.trace(input="x", model="off-model"):
            pass
        assert po.flush(5) and po.stats.enqueued == 0
    assert sdk_runs(served, model="off-model") == []
