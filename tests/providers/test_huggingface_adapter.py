"""HuggingFaceProvider against a real HTTP server speaking TGI's native (and OpenAI-compatible) API."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fake_llm_server import FakeLLMServer, reply_for, words

from promptops.providers.base import (
    ConnectionConfig,
    ContextTooLong,
    ModelRequest,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
    Usage,
)
from promptops.providers.huggingface_adapter import HuggingFaceProvider, render_chat

WRONG_KEY = "hf_Wr0ngKeyQ7v9XkLmN2pR4sT6uV8wY"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

Build = Callable[..., HuggingFaceProvider]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def server(shared_server: FakeLLMServer) -> FakeLLMServer:
    """The module's fake server, with no requests recorded and nothing scripted."""
    shared_server.reset()
    return shared_server


@pytest.fixture
async def build(server: FakeLLMServer) -> AsyncIterator[Build]:
    """Adapters against the fake server (overrides go to ConnectionConfig); all closed after the test."""
    made: list[HuggingFaceProvider] = []

    def factory(**overrides: Any) -> HuggingFaceProvider:
        values: dict[str, Any] = {
            "type": "huggingface",
            "base_url": server.url,
            "api_key": server.api_key,
            "timeout_seconds": 5.0,
            "max_retries": 1,
        }
        values.update(overrides)
        provider = HuggingFaceProvider(ConnectionConfig(**values))
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        await provider.aclose()


PROMPT = "Write one sentence about the sea"


def prompt(**fields: Any) -> ModelRequest:
    return ModelRequest(model="tgi", prompt=PROMPT, **fields)


async def collect(provider: HuggingFaceProvider, request: ModelRequest) -> tuple[list[str], StreamEvent]:
    deltas: list[str] = []
    final: StreamEvent | None = None
    async for event in provider.stream(request):
        if event.done:
            final = event
        else:
            deltas.append(event.delta)
    assert final is not None, "the stream ended without a done event"
    return deltas, final


def assert_key_hidden(error: ProviderError, key: str) -> None:
    """Neither the key nor any 5-character piece of it may reach the client."""
    for text in (error.detail, str(error), json.dumps(error.to_problem())):
        leaked = [key[i : i + 5] for i in range(len(key) - 4) if key[i : i + 5] in text]
        assert not leaked, f"key fragments {leaked} in {text!r}"


# --- happy paths ----------------------------------------------------------------------------------------------


async def test_generate_returns_text_usage_and_model(server: FakeLLMServer, build: Build) -> None:
    response = await build().complete(prompt())

    expected = reply_for(PROMPT)
    assert response.text == expected
    assert response.usage == Usage(words(PROMPT), words(expected))
    assert response.model == "tgi"
    assert response.finish_reason == "stop"
    sent = server.requests_to("/generate")[0]
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"
    assert sent.body["inputs"] == PROMPT
    assert sent.body["parameters"] == {"details": True, "return_full_text": False}


async def test_serverless_list_answer_is_understood(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", serverless=True)

    response = await build().complete(prompt())

    assert response.text == reply_for(PROMPT)
    assert response.usage.reported is False
    assert response.finish_reason is None


async def test_stream_deltas_concatenate_and_final_event_has_usage(
    server: FakeLLMServer, build: Build
) -> None:
    provider = build()
    full = await provider.complete(prompt())
    deltas, final = await collect(provider, prompt())

    assert len(deltas) > 1
    assert "".join(deltas) == full.text  # the special end-of-sequence token is not part of the text
    assert final.usage == full.usage
    assert final.finish_reason == "stop"
    assert final.model == "tgi"
    assert server.requests[-1].path == "/generate_stream"


async def test_chat_is_rendered_into_one_prompt(server: FakeLLMServer, build: Build) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour"},
    ]

    response = await build().complete(ModelRequest(model="tgi", messages=messages))

    assert server.requests[-1].body["inputs"] == "system: Be brief.\nuser: Name a colour\nassistant:"
    assert response.text == reply_for("Name a colour")
    assert render_chat(messages).endswith("assistant:")


async def test_parameters_passed(server: FakeLLMServer, build: Build) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    request = prompt(
        max_tokens=3,
        temperature=0.7,
        top_p=0.9,
        stop=["\n"],
        seed=42,
        response_schema=schema,
        extra={"top_k": 10},
    )

    response = await build().complete(request)

    parameters = server.requests[-1].body["parameters"]
    assert parameters["max_new_tokens"] == 3
    assert parameters["temperature"] == 0.7
    assert parameters["top_p"] == 0.9
    assert parameters["stop"] == ["\n"]
    assert parameters["seed"] == 42
    assert parameters["top_k"] == 10
    assert parameters["grammar"] == {"type": "json", "value": schema}
    assert response.usage.output_tokens == 3
    assert response.finish_reason == "length"


async def test_values_tgi_rejects_are_left_out(server: FakeLLMServer, build: Build) -> None:
    await build().complete(prompt(temperature=0.0, top_p=1.0))

    parameters = server.requests[-1].body["parameters"]
    assert "temperature" not in parameters
    assert "top_p" not in parameters


async def test_tools_need_the_openai_route(build: Build) -> None:
    with pytest.raises(ProviderBadRequest) as caught:
        await build().complete(prompt(tools=[WEATHER_TOOL]))
    assert "api='openai'" in caught.value.detail


async def test_openai_route_for_chat_with_tools(server: FakeLLMServer, build: Build) -> None:
    provider = build(options={"api": "openai"})
    server.script("openai", text="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    request = ModelRequest(
        model="tgi", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER_TOOL]
    )

    response = await provider.complete(request)
    deltas, final = await collect(
        provider, ModelRequest(model="tgi", messages=[{"role": "user", "content": "hi"}])
    )

    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/v1/chat/completions"]
    assert server.requests[0].body["tools"] == [WEATHER_TOOL]
    assert server.requests[0].headers["authorization"] == f"Bearer {server.api_key}"
    assert response.tool_calls == [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert "".join(deltas) == reply_for("hi")
    assert final.usage is not None and final.usage.reported


async def test_openai_route_keeps_plain_prompts_on_generate(server: FakeLLMServer, build: Build) -> None:
    await build(options={"api": "openai"}).complete(prompt())

    assert [r.path for r in server.requests] == ["/generate"]


async def test_missing_usage_is_marked_unreported(server: FakeLLMServer, build: Build) -> None:
    provider = build()
    server.script("tgi", usage=False, times=2)

    response = await provider.complete(prompt())
    deltas, final = await collect(provider, prompt())

    assert response.usage.reported is False
    assert "".join(deltas) == response.text
    assert final.usage is not None and final.usage.reported is False


async def test_missing_base_url_is_a_bad_request() -> None:
    with pytest.raises(ProviderBadRequest):
        HuggingFaceProvider(ConnectionConfig(type="huggingface"))


# --- failures -------------------------------------------------------------------------------------------------


async def test_wrong_key_maps_to_auth_error_without_leaking_the_key(
    server: FakeLLMServer, build: Build
) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await build(api_key=WRONG_KEY).complete(prompt())

    assert "Invalid credentials" in caught.value.detail
    assert_key_hidden(caught.value, WRONG_KEY)
    assert caught.value.to_problem()["code"] == "provider_auth_failed"
    assert len(server.requests) == 1  # not retried


async def test_rate_limit_with_retry_after_is_retried(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=429, headers={"Retry-After": "0.1"}, times=1)

    started = time.monotonic()
    response = await build(max_retries=2).complete(prompt())

    assert response.text
    assert len(server.requests) == 2
    assert time.monotonic() - started >= 0.1


async def test_rate_limit_exhausted_reports_retry_after(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=429, headers={"Retry-After": "0.1"}, times=5)

    with pytest.raises(ProviderRateLimited) as caught:
        await build(max_retries=1).complete(prompt())

    assert len(server.requests) == 2
    assert caught.value.extra["retryAfter"] == pytest.approx(0.1)
    assert caught.value.to_problem()["retryAfter"] == pytest.approx(0.1)


async def test_retry_after_too_long_is_reported_not_waited(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=429, headers={"Retry-After": "120"}, times=5)

    with pytest.raises(ProviderRateLimited) as caught:
        await build(max_retries=3).complete(prompt())

    assert len(server.requests) == 1
    assert caught.value.extra["retryAfter"] == 120


async def test_server_error_is_retried(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=500, times=1)

    response = await build(max_retries=1).complete(prompt())

    assert response.text
    assert len(server.requests) == 2


async def test_unavailable_exhausted(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=503, headers={"Retry-After": "0.05"}, times=5)

    with pytest.raises(ProviderUnavailable) as caught:
        await build(max_retries=2).complete(prompt())

    assert len(server.requests) == 3
    assert "currently loading" in caught.value.detail


async def test_stream_opening_is_retried(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=503, headers={"Retry-After": "0.05"}, times=1)

    deltas, final = await collect(build(), prompt())

    assert "".join(deltas) == reply_for(PROMPT)
    assert final.usage is not None
    assert len(server.requests) == 2


async def test_context_length_error_maps_to_context_too_long(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", error="context")

    with pytest.raises(ContextTooLong) as caught:
        await build().complete(prompt())

    assert "max_new_tokens" in caught.value.detail
    assert len(server.requests) == 1


async def test_input_tokens_from_prefill_when_asked_for(server: FakeLLMServer, build: Build) -> None:
    response = await build().complete(prompt(extra={"decoder_input_details": True}))

    assert server.requests[-1].body["parameters"]["decoder_input_details"] is True
    assert response.usage == Usage(words(PROMPT), words(reply_for(PROMPT)))


async def test_generation_failure_is_retried(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=424, error="server", headers={"Retry-After": "0.05"}, times=5)

    with pytest.raises(ProviderUnavailable) as caught:
        await build(max_retries=1).complete(prompt())

    assert "CUDA out of memory" in caught.value.detail
    assert len(server.requests) == 2


async def test_validation_error_maps_to_bad_request(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", error="bad_request")

    with pytest.raises(ProviderBadRequest):
        await build().complete(prompt())


async def test_slow_response_beyond_timeout_maps_to_timeout(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", delay=3.0)

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await build(timeout_seconds=0.5, max_retries=0).complete(prompt())

    assert time.monotonic() - started < 2.0


async def test_unreachable_endpoint_maps_to_unavailable(build: Build) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable) as caught:
        await build(base_url=f"http://127.0.0.1:{port}", max_retries=0).complete(prompt())
    assert "could not be reached" in caught.value.detail


async def test_stream_dying_midway_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", break_after=3)
    deltas: list[str] = []

    with pytest.raises(ProviderUnavailable) as caught:
        async for event in build().stream(prompt()):
            deltas.append(event.delta)

    assert "ended unexpectedly" in caught.value.detail
    assert deltas == ["You ", "said: ", "Write "]
    assert len(server.requests) == 1


async def test_error_event_inside_stream_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", error_after=2)

    with pytest.raises(ProviderUnavailable) as caught:
        await collect(build(), prompt())

    assert "CUDA out of memory" in caught.value.detail


async def test_stream_with_invalid_event_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", garbage_after=2)

    with pytest.raises(ProviderUnavailable) as caught:
        await collect(build(), prompt())

    assert "ended unexpectedly" in caught.value.detail
