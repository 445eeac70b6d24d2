"""AnthropicProvider against a real HTTP server speaking the Anthropic Messages wire format."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from promptops.providers.anthropic_adapter import (
    AnthropicProvider,
    convert_messages,
    convert_tool_choice,
    convert_tools,
)
from promptops.providers.base import (
    ContextTooLong,
    ModelRequest,
    ProviderBadRequest,
    ProviderUnavailable,
    Usage,
)
from tests.support.adapter_support import (
    WEATHER_TOOL,
    adapter_fixtures,
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

WRONG_KEY = "sk-ant-api03-Wr0ngKeyQ7v9XkLmN2pR4sT6uV8wY"

Build = Callable[..., AnthropicProvider]

shared_server, server, build = adapter_fixtures(AnthropicProvider, "anthropic")


def chat(text: str = "What is the weather like in Paris today", **fields: Any) -> ModelRequest:
    return ModelRequest(model="claude-test", messages=[{"role": "user", "content": text}], **fields)


# --- happy paths ----------------------------------------------------------------------------------------------


async def test_complete_returns_text_usage_and_model(server: FakeLLMServer, build: Build) -> None:
    response = await build().complete(chat())

    expected = reply_for("What is the weather like in Paris today")
    assert response.text == expected
    assert response.usage == Usage(words("What is the weather like in Paris today"), words(expected))
    assert response.model == "claude-test"
    assert response.finish_reason == "stop"
    sent = server.requests_to("/v1/messages")[0]
    assert sent.headers["x-api-key"] == server.api_key
    assert sent.headers["anthropic-version"]
    assert sent.body["max_tokens"] == 1024  # the API requires it; the adapter supplies a default


async def test_stream_deltas_concatenate_and_final_event_has_usage(build: Build) -> None:
    provider = build()
    full = await provider.complete(chat())
    deltas, final = await collect(provider, chat())

    assert len(deltas) > 1
    assert "".join(deltas) == full.text
    assert final.usage == full.usage
    assert final.model == "claude-test"
    assert final.finish_reason == "stop"
    assert final.tool_calls is None


async def test_plain_prompt_becomes_one_user_message(server: FakeLLMServer, build: Build) -> None:
    response = await build().complete(ModelRequest(model="claude-test", prompt="Tell me a joke"))

    assert server.requests[-1].body["messages"] == [{"role": "user", "content": "Tell me a joke"}]
    assert "system" not in server.requests[-1].body
    assert response.text == reply_for("Tell me a joke")


async def test_system_messages_joined_and_conversation_mapped(server: FakeLLMServer, build: Build) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]

    await build().complete(ModelRequest(model="claude-test", messages=messages))

    body = server.requests[-1].body
    assert body["system"] == "You are terse.\n\nAnswer in English."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


async def test_parameters_passed(server: FakeLLMServer, build: Build) -> None:
    request = chat(temperature=0.3, top_p=0.8, max_tokens=3, stop=["END"], seed=1, extra={"top_k": 5})
    response = await build().complete(request)

    body = server.requests[-1].body
    assert body["max_tokens"] == 3
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == ["END"]
    assert body["top_k"] == 5
    assert "seed" not in body  # Anthropic has no seed
    assert response.usage.output_tokens == 3
    assert response.finish_reason == "length"


async def test_stop_sequence_finish_is_normalised(server: FakeLLMServer, build: Build) -> None:
    server.script("anthropic", text="one two END three")

    response = await build().complete(chat(stop=["END"]))

    assert response.text == "one two "
    assert response.finish_reason == "stop"


async def test_response_schema_sent_as_output_format(server: FakeLLMServer, build: Build) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await build().complete(chat(response_schema=schema))

    assert server.requests[-1].body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


async def test_tools_converted_and_tool_use_parsed(server: FakeLLMServer, build: Build) -> None:
    server.script(
        "anthropic",
        text="Let me check.",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
    )
    request = chat(
        tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )

    response = await build().complete(request)

    body = server.requests[-1].body
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert response.text == "Let me check."
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [weather_call("toolu_0", "Paris")]


async def test_stream_accumulates_tool_use_input(server: FakeLLMServer, build: Build) -> None:
    server.script(
        "anthropic", text="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Lyon", "days": 2}}]
    )

    deltas, final = await collect(build(), chat(tools=[WEATHER_TOOL]))

    assert deltas == []
    assert final.finish_reason == "tool_calls"
    assert final.tool_calls is not None and len(final.tool_calls) == 1
    call = final.tool_calls[0]
    assert call["id"] == "toolu_0"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Lyon", "days": 2}


async def test_missing_usage_is_marked_unreported(server: FakeLLMServer, build: Build) -> None:
    provider = build()
    server.script("anthropic", usage=False, times=2)

    response = await provider.complete(chat())
    deltas, final = await collect(provider, chat())

    assert response.usage == Usage(0, 0, reported=False)
    assert "".join(deltas) == response.text
    assert final.usage is None


# --- failures -------------------------------------------------------------------------------------------------


async def test_wrong_key_maps_to_auth_error_without_leaking_the_key(
    server: FakeLLMServer, build: Build
) -> None:
    error = await wrong_key_rejected(server, build, chat(), WRONG_KEY)

    assert "invalid x-api-key" in error.detail


async def test_rate_limit_with_retry_after_is_retried(server: FakeLLMServer, build: Build) -> None:
    await rate_limit_retried(server, build, "anthropic", chat())


async def test_rate_limit_exhausted_reports_retry_after(server: FakeLLMServer, build: Build) -> None:
    await rate_limit_exhausted(server, build, "anthropic", chat())


async def test_server_error_is_retried(server: FakeLLMServer, build: Build) -> None:
    await server_error_retried(server, build, "anthropic", chat(), headers={"Retry-After": "0.05"})


async def test_overloaded_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    server.script("anthropic", error="overloaded", times=5)

    with pytest.raises(ProviderUnavailable) as caught:
        await build(max_retries=0).complete(chat())

    assert "529" in caught.value.detail and "Overloaded" in caught.value.detail


async def test_prompt_too_long_maps_to_context_too_long(server: FakeLLMServer, build: Build) -> None:
    server.script("anthropic", error="context")

    with pytest.raises(ContextTooLong) as caught:
        await build().complete(chat())

    assert "prompt is too long" in caught.value.detail


async def test_unknown_model_maps_to_bad_request(server: FakeLLMServer, build: Build) -> None:
    server.script("anthropic", error="not_found")

    with pytest.raises(ProviderBadRequest) as caught:
        await build().complete(chat())

    assert "claude-test" in caught.value.detail


async def test_slow_response_beyond_timeout_maps_to_timeout(server: FakeLLMServer, build: Build) -> None:
    await slow_answer_times_out(server, build, "anthropic", chat())


async def test_stream_dying_midway_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    deltas = await stream_dropped(server, build, "anthropic", chat(), after=5)

    assert deltas


async def test_overloaded_error_event_inside_stream_maps_to_unavailable(
    server: FakeLLMServer, build: Build
) -> None:
    error = await stream_failure(server, build, "anthropic", chat(), error_after=4)

    assert "overloaded_error" in error.detail


async def test_stream_with_invalid_event_maps_to_unavailable(server: FakeLLMServer, build: Build) -> None:
    error = await stream_failure(server, build, "anthropic", chat(), garbage_after=4)

    assert "ended unexpectedly" in error.detail


# --- translation helpers --------------------------------------------------------------------------------------


def test_tool_choice_conversion() -> None:
    assert convert_tool_choice("auto") == {"type": "auto"}
    assert convert_tool_choice("required") == {"type": "any"}
    assert convert_tool_choice("none") == {"type": "none"}
    assert convert_tool_choice(None) is None
    assert convert_tool_choice({"type": "any"}) == {"type": "any"}


def test_anthropic_shaped_tools_pass_through() -> None:
    native = {"name": "lookup", "input_schema": {"type": "object"}}
    assert convert_tools([native]) == [native]


def test_images_and_consecutive_turns() -> None:
    system, turns = convert_messages(
        [
            {"role": "user", "content": "first"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {"role": "assistant", "content": ""},
        ]
    )
    assert system is None
    assert turns == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first"},
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            ],
        }
    ]
