"""OpenAIProvider against a real HTTP server speaking the OpenAI / Azure OpenAI wire format."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from promptops.providers.base import (
    ContextTooLong,
    ModelRequest,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderUnavailable,
    Usage,
)
from promptops.providers.openai_adapter import OpenAIProvider
from tests.support.adapter_support import (
    WEATHER_TOOL,
    adapter_fixtures,
    assert_key_hidden,
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

WRONG_KEY = "sk-Wr0ngKeyQ7v9XkLmN2pR4sT6uV8wY"

Build = Callable[..., OpenAIProvider]

shared_server, server, build = adapter_fixtures(OpenAIProvider, "openai", path="/v1")


def chat(text: str = "What is the weather like in Paris today", **fields: Any) -> ModelRequest:
    return ModelRequest(model="gpt-test", messages=[{"role": "user", "content": text}], **fields)


# --- happy paths ----------------------------------------------------------------------------------------------


async def test_complete_chat_returns_text_usage_and_model(server: FakeLLMServer, build: Build) -> None:
    request = chat()
    response = await build().complete(request)

    expected = reply_for("What is the weather like in Paris today")
    assert response.text == expected
    assert response.usage == Usage(words("What is the weather like in Paris today"), words(expected))
    assert response.model == "gpt-test"
    assert response.finish_reason == "stop"
    assert response.tool_calls is None
    sent = server.requests_to("/v1/chat/completions")[0]
    assert sent.headers["authorization"] == f"Bearer {server.api_key}"
    assert sent.body["messages"] == request.messages
    assert sent.body["stream"] is False


async def test_stream_deltas_concatenate_and_final_event_has_usage(
    server: FakeLLMServer, build: Build
) -> None:
    provider = build()
    full = await provider.complete(chat())
    deltas, final = await collect(provider, chat())

    assert len(deltas) > 1
    assert "".join(deltas) == full.text
    assert final.usage == full.usage
    assert final.usage is not None and final.usage.reported
    assert final.model == "gpt-test"
    assert final.finish_reason == "stop"
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


async def test_plain_prompt_becomes_one_user_message(server: FakeLLMServer, build: Build) -> None:
    response = await build().complete(ModelRequest(model="gpt-test", prompt="Tell me a joke"))

    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "Tell me a joke"}]
    assert response.text == reply_for("Tell me a joke")


async def test_legacy_completions_api_for_plain_prompts(server: FakeLLMServer, build: Build) -> None:
    provider = build(options={"api": "completions"})
    request = ModelRequest(model="llama-3", prompt="Once upon a time", max_tokens=50)

    response = await provider.complete(request)
    deltas, final = await collect(provider, request)

    legacy = server.requests_to("/v1/completions")
    assert len(legacy) == 2
    assert legacy[0].body["prompt"] == "Once upon a time"
    assert legacy[0].body["max_tokens"] == 50
    assert response.text == reply_for("Once upon a time")
    assert response.usage == Usage(4, words(response.text))
    assert "".join(deltas) == response.text
    assert final.usage == response.usage
    assert final.finish_reason == "stop"


async def test_legacy_api_still_sends_chat_requests_to_chat(server: FakeLLMServer, build: Build) -> None:
    await build(options={"api": "completions"}).complete(chat())

    assert [r.path for r in server.requests] == ["/v1/chat/completions"]


async def test_sampling_parameters_and_extra_are_passed(server: FakeLLMServer, build: Build) -> None:
    request = chat(temperature=0.2, max_tokens=3, top_p=0.9, stop=["\n\n"], seed=7, extra={"top_k": 40})
    response = await build().complete(request)

    body = server.requests[-1].body
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 3
    assert body["top_p"] == 0.9
    assert body["stop"] == ["\n\n"]
    assert body["seed"] == 7
    assert body["top_k"] == 40
    # The fake model honours max_tokens, as a real one would.
    assert response.usage.output_tokens == 3
    assert response.finish_reason == "length"


async def test_unset_parameters_are_not_sent(server: FakeLLMServer, build: Build) -> None:
    await build().complete(chat())

    body = server.requests[-1].body
    for name in (
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
    ):
        assert name not in body


async def test_tools_passed_through_and_tool_calls_parsed(server: FakeLLMServer, build: Build) -> None:
    server.script("openai", text="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    request = chat(tools=[WEATHER_TOOL], tool_choice="auto")

    response = await build().complete(request)

    body = server.requests[-1].body
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "auto"
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == [weather_call("call_0", "Paris")]


async def test_stream_accumulates_tool_call_deltas(server: FakeLLMServer, build: Build) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Lyon"}},
    ]
    server.script("openai", text="Checking.", tool_calls=calls)

    deltas, final = await collect(build(), chat(tools=[WEATHER_TOOL]))

    assert "".join(deltas) == "Checking."
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls is not None
    assert [json.loads(c["function"]["arguments"]) for c in final.tool_calls] == [
        {"city": "Paris"},
        {"city": "Lyon"},
    ]
    assert [c["id"] for c in final.tool_calls] == ["call_0", "call_1"]
    assert all(c["type"] == "function" and c["function"]["name"] == "get_weather" for c in final.tool_calls)


async def test_response_schema_sent_as_json_schema_response_format(
    server: FakeLLMServer, build: Build
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    server.script("openai", text='{"answer": "sunny"}')

    response = await build().complete(chat(response_schema=schema))

    assert server.requests[-1].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": False},
    }
    assert json.loads(response.text) == {"answer": "sunny"}


async def test_missing_usage_is_marked_unreported(server: FakeLLMServer, build: Build) -> None:
    provider = build()
    server.script("openai", usage=False, times=2)

    response = await provider.complete(chat())
    deltas, final = await collect(provider, chat())

    assert response.usage == Usage(0, 0, reported=False)
    assert "".join(deltas) == response.text
    assert final.usage is None
    assert final.finish_reason == "stop"


async def test_stream_usage_request_can_be_switched_off(server: FakeLLMServer, build: Build) -> None:
    deltas, final = await collect(build(options={"stream_usage": False}), chat())

    assert "stream_options" not in server.requests[-1].body
    assert "".join(deltas)
    assert final.usage is None


async def test_local_server_without_key_gets_placeholder(build: Build) -> None:
    with FakeLLMServer(api_key=None) as keyless:
        provider = build(base_url=keyless.url + "/v1", api_key=None)
        response = await provider.complete(chat())

    assert response.text
    assert keyless.requests[0].headers["authorization"] == "Bearer not-needed"


async def test_azure_uses_deployment_url_api_version_and_api_key_header(
    server: FakeLLMServer, build: Build
) -> None:
    provider = build(type="azure_openai", base_url=server.url, api_version="2024-10-21")
    request = ModelRequest(model="my-gpt4o-deployment", messages=[{"role": "user", "content": "hi there"}])

    response = await provider.complete(request)
    deltas, final = await collect(provider, request)

    assert [r.path for r in server.requests] == [
        "/openai/deployments/my-gpt4o-deployment/chat/completions"
    ] * 2
    for received in server.requests:
        assert received.query == {"api-version": "2024-10-21"}
        assert received.headers["api-key"] == server.api_key
    assert response.text == reply_for("hi there")
    assert "".join(deltas) == response.text
    assert final.usage == response.usage


# --- failures -------------------------------------------------------------------------------------------------


async def test_wrong_key_maps_to_auth_error_without_leaking_the_key(
    server: FakeLLMServer, build: Build
) -> None:
    error = await wrong_key_rejected(server, build, chat(), WRONG_KEY)

    # The server echoed a masked form of the key ("sk-Wr0*****V8wY"), as OpenAI does.
    assert "Incorrect API key provided" in error.detail


async def test_stream_auth_error_is_raised_before_any_delta(build: Build) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await collect(build(api_key=WRONG_KEY), chat())
    assert_key_hidden(caught.value, WRONG_KEY)


async def test_rate_limit_with_retry_after_is_retried(server: FakeLLMServer, build: Build) -> None:
    assert await rate_limit_retried(server, build, "openai", chat()) >= 0.1


async def test_rate_limit_exhausted_reports_retry_after(server: FakeLLMServer, build: Build) -> None:
    error = await rate_limit_exhausted(server, build, "openai", chat())

    assert error.retryable


async def test_server_error_is_retried(server: FakeLLMServer, build: Build) -> None:
    await server_error_retried(server, build, "openai", chat())


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_exhausted_map_to_unavailable(
    server: FakeLLMServer, build: Build, status: int
) -> None:
    server.script("openai", status=status, times=5)

    with pytest.raises(ProviderUnavailable) as caught:
        await build(max_retries=0).complete(chat())

    assert f"HTTP {status}" in caught.value.detail


async def test_context_length_error_maps_to_context_too_long(server: FakeLLMServer, build: Build) -> None:
    server.script("openai", error="context")

    with pytest.raises(ContextTooLong) as caught:
        await build().complete(chat())

    assert "maximum context length" in caught.value.detail
    assert caught.value.to_problem()["status"] == 422


async def test_context_error_recognised_by_code_alone(server: FakeLLMServer, build: Build) -> None:
    server.script("openai", error="context", message="Request rejected.")

    with pytest.raises(ContextTooLong):
        await build().complete(chat())


async def test_other_bad_request_and_unknown_model_map_to_bad_request(
    server: FakeLLMServer, build: Build
) -> None:
    provider = build()
    server.script("openai", error="bad_request")
    with pytest.raises(ProviderBadRequest):
        await provider.complete(chat())

    server.script("openai", error="not_found")
    with pytest.raises(ProviderBadRequest) as caught:
        await provider.complete(chat())
    assert "gpt-test" in caught.value.detail
    assert len(server.requests) == 2


async def test_slow_response_beyond_timeout_maps_to_timeout(server: FakeLLMServer, build: Build) -> None:
    await slow_answer_times_out(server, build, "openai", chat())


async def test_unreachable_endpoint_maps_to_unavailable(build: Build) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        await build(base_url=closed_port_url() + "/v1", max_retries=0).complete(chat())
    assert "could not be reached" in caught.value.detail


async def test_stream_dying_midway_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    deltas = await stream_dropped(server, build, "openai", chat(), after=3)

    assert deltas, "the chunks sent before the drop are delivered"


async def test_stream_with_invalid_chunk_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    error = await stream_failure(server, build, "openai", chat(), garbage_after=2)

    assert "ended unexpectedly" in error.detail


async def test_error_event_inside_stream_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    error = await stream_failure(server, build, "openai", chat(), error_after=2)

    assert "ended unexpectedly" in error.detail


async def test_rate_limit_before_stream_starts_is_retried(server: FakeLLMServer, build: Build) -> None:
    server.script("openai", status=429, headers={"Retry-After": "0.05"}, times=1)

    deltas, final = await collect(build(), chat())

    assert "".join(deltas)
    assert final.usage is not None
    assert len(server.requests) == 2
