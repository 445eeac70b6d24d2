"""HuggingFaceProvider against a real HTTP server speaking TGI's native (and OpenAI-compatible) API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from promptops.providers.base import (
    ConnectionConfig,
    ContextTooLong,
    ModelRequest,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderUnavailable,
    Usage,
)
from promptops.providers.huggingface_adapter import HuggingFaceProvider, render_chat
from tests.support.adapter_support import (
    WEATHER_TOOL,
    adapter_fixtures,
    closed_port_url,
    collect,
    rate_limit_exhausted,
    rate_limit_retried,
    server_error_retried,
    slow_answer_times_out,
    stream_dropped,
    stream_failure,
    weather_call,
    wrong_key_rejected,
)
from tests.support.fake_llm_server import FakeLLMServer, reply_for, words

WRONG_KEY = "hf_Wr0ngKeyQ7v9XkLmN2pR4sT6uV8wY"

Build = Callable[..., HuggingFaceProvider]

shared_server, server, build = adapter_fixtures(HuggingFaceProvider, "huggingface")


PROMPT = "Write one sentence about the sea"


def prompt(**fields: Any) -> ModelRequest:
    return ModelRequest(model="tgi", prompt=PROMPT, **fields)


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
    assert response.tool_calls == [weather_call("call_0", "Oslo")]
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
    error = await wrong_key_rejected(server, build, prompt(), WRONG_KEY)

    assert "Invalid credentials" in error.detail


async def test_rate_limit_with_retry_after_is_retried(server: FakeLLMServer, build: Build) -> None:
    assert await rate_limit_retried(server, build, "tgi", prompt()) >= 0.1


async def test_rate_limit_exhausted_reports_retry_after(server: FakeLLMServer, build: Build) -> None:
    await rate_limit_exhausted(server, build, "tgi", prompt())


async def test_retry_after_too_long_is_reported_not_waited(server: FakeLLMServer, build: Build) -> None:
    server.script("tgi", status=429, headers={"Retry-After": "120"}, times=5)

    with pytest.raises(ProviderRateLimited) as caught:
        await build(max_retries=3).complete(prompt())

    assert len(server.requests) == 1
    assert caught.value.extra["retryAfter"] == 120


async def test_server_error_is_retried(server: FakeLLMServer, build: Build) -> None:
    await server_error_retried(server, build, "tgi", prompt())


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
    await slow_answer_times_out(server, build, "tgi", prompt())


async def test_unreachable_endpoint_maps_to_unavailable(build: Build) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await build(base_url=closed_port_url(), max_retries=0).complete(prompt())
    assert "could not be reached" in caught.value.detail


async def test_stream_dying_midway_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    deltas = await stream_dropped(server, build, "tgi", prompt(), after=3)

    assert deltas == ["You ", "said: ", "Write "]


async def test_error_event_inside_stream_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    error = await stream_failure(server, build, "tgi", prompt(), error_after=2)

    assert "CUDA out of memory" in error.detail


async def test_stream_with_invalid_event_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    error = await stream_failure(server, build, "tgi", prompt(), garbage_after=2)

    assert "ended unexpectedly" in error.detail
