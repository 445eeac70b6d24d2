"""The wrappers around the official ``openai`` and ``anthropic`` clients, calling the fake provider server
(real wire formats over a socket) and recording runs on a real PromptOps server: plain and streamed answers,
sync and async clients, attribution with ``promptops_prompt=`` and failed calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from promptops_sdk import Prompt, PromptOps

from tests.sdk.support import create_prompt, sdk_runs
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


def registry_prompt(served: ServerProcess, po: PromptOps) -> Prompt:
    create_prompt(
        served,
        name="sdk/wrapped",
        kind="chat",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about {{ topic }}"},
        ],
        variables=[{"name": "topic"}],
        labels=["production"],
    )
    return po.get_prompt("sdk/wrapped", label="production")


def by_output(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["output"]): r for r in runs}


def test_openai_calls_are_recorded(served: ServerProcess, po: PromptOps, fake: FakeLLMServer) -> None:
    prompt = registry_prompt(served, po)
    oai = po.wrap_openai(openai.OpenAI(base_url=fake.url + "/v1", api_key=DEFAULT_KEY, max_retries=0))
    messages = prompt.to_openai_messages(topic="owls")
    answer = oai.chat.completions.create(
        model="gpt-4o-mini", messages=messages, temperature=0.1, promptops_prompt=prompt
    )
    assert answer.choices[0].message.content == "You said: Tell me about owls"
    assert "promptops_prompt" not in fake.requests[-1].body  # stripped before the call

    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream this please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == "You said: stream this please"

    fake.script("openai", error="server", times=1)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "fail"}])
    assert po.flush(30)

    runs = sdk_runs(served)
    assert len(runs) == 3
    plain = by_output(runs)["You said: Tell me about owls"]
    assert plain["versionId"] == prompt.version_id and plain["provider"] == "openai"
    assert plain["model"] == "gpt-4o-mini" and plain["params"] == {"temperature": 0.1}
    assert plain["input"] == {"messages": messages} and plain["finishReason"] == "stop"
    assert (plain["inputTokens"] == fake.requests[0].body and False) or plain["inputTokens"] > 0
    assert plain["costUsd"] > 0  # priced from the catalog
    stream_run = by_output(runs)["You said: stream this please"]
    assert (
        stream_run["ttftMs"] is not None
        and stream_run["outputTokens"] == 5
        and stream_run["versionId"] is None
    )
    failed = next(r for r in runs if r["status"] == "error")
    assert failed["errorClass"] == "InternalServerError" and failed["output"] is None


def test_anthropic_calls_are_recorded(served: ServerProcess, po: PromptOps, fake: FakeLLMServer) -> None:
    prompt = registry_prompt(served, po)
    claude = po.wrap_anthropic(anthropic.Anthropic(base_url=fake.url, api_key=DEFAULT_KEY, max_retries=0))
    rendered = prompt.render(topic="bees")
    assert isinstance(rendered, list)
    answer = claude.messages.create(
        model="claude-haiku-4-5",
        system=rendered[0]["content"],
        messages=rendered[1:],
        max_tokens=50,
        promptops_prompt=prompt,
    )
    assert answer.content[0].text == "You said: Tell me about bees"
    with claude.messages.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "stream bees"}],
        max_tokens=50,
        stream=True,
    ) as stream:
        events = list(stream)
    assert any(e.type == "message_stop" for e in events)
    assert po.flush(30)
    runs = by_output(sdk_runs(served))
    plain = runs["You said: Tell me about bees"]
    assert (
        plain["provider"] == "anthropic" and plain["versionId"] == prompt.version_id and plain["costUsd"] > 0
    )
    assert plain["input"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert plain["params"] == {"max_tokens": 50} and plain["finishReason"] == "end_turn"
    assert plain["inputTokens"] > 0 and plain["outputTokens"] == 6
    streamed = runs["You said: stream bees"]
    assert streamed["ttftMs"] is not None and streamed["outputTokens"] == 4 and streamed["inputTokens"] > 0


def test_async_openai_client_is_recorded(served: ServerProcess, po: PromptOps, fake: FakeLLMServer) -> None:
    async def main() -> None:
        oai = po.wrap_openai(
            openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key=DEFAULT_KEY, max_retries=0)
        )
        answer = await oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "async hello"}]
        )
        assert answer.choices[0].message.content == "You said: async hello"
        stream = await oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(parts) == "You said: async stream"

    asyncio.run(main())
    assert po.flush(30)
    runs = by_output(sdk_runs(served))
    assert set(runs) == {"You said: async hello", "You said: async stream"}
    assert runs["You said: async stream"]["ttftMs"] is not None
