"""The capture gateway through the official ``openai`` and ``anthropic`` clients, against a real fake upstream
(tests/support/fake_llm_server.py), on SQLite and PostgreSQL: wire formats (JSON, SSE, tools), routing,
errors in each provider's shape, attribution, recording, limits and tenant isolation."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import openai
import pytest

from tests.gateway.support import (
    anthropic_client,
    drained,
    gateway_app,
    gateway_runs,
    openai_client,
    transport,
)
from tests.support.app import ADMIN_KEY, Api
from tests.support.fake_llm_server import FakeLLMServer, reply_for
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)
from tests.support.tenancy import make_project_b

SYSTEM = "You are a terse assistant for order 12345."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat(text: str, system: str = SYSTEM) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


async def test_openai_chat_json_and_stream_are_passed_through_and_recorded(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        client = openai_client(api)
        raw = await client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini", messages=chat("hello there gateway"), temperature=0.2, n=1
        )
        answer = raw.parse()
        assert answer.choices[0].message.content == reply_for("hello there gateway")
        assert answer.system_fingerprint == "fp_fake"  # an upstream-only field survives the pass-through
        assert answer.usage is not None and answer.usage.prompt_tokens > 0
        run_id = raw.headers["x-promptops-run-id"]
        sent = fake.requests_to("/chat/completions")[-1]
        assert sent.body["model"] == "gpt-4o-mini" and sent.body["n"] == 1 and sent.body["temperature"] == 0.2
        assert sent.headers["authorization"] == f"Bearer {fake.api_key}"  # the connection's key, not ours

        stream = await client.chat.completions.create(
            model="fake/gpt-4o-mini",
            messages=chat("stream me some words"),
            stream=True,
            stream_options={"include_usage": True},
        )
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
        assert "".join(parts) == reply_for("stream me some words") and len(parts) > 2
        assert usage is not None

        runs = await gateway_runs(api)
        assert [r.status for r in runs] == ["ok", "ok"]
        first, second = runs
        assert first.id == run_id
        assert (first.provider, first.provider_type, first.model) == ("fake", "openai", "gpt-4o-mini")
        assert first.output == reply_for("hello there gateway")
        assert first.input_tokens == answer.usage.prompt_tokens and not first.usage_estimated
        assert first.input["messages"][0]["content"] == SYSTEM and first.params["temperature"] == 0.2
        assert first.cost_usd > 0  # catalog price of gpt-4o-mini
        assert second.output == "".join(parts) and second.ttft_ms is not None and second.ttft_ms > 0
        assert second.output_tokens == usage.completion_tokens
        assert first.fingerprint and first.fingerprint == second.fingerprint  # same system text


async def test_tool_calls_json_and_stream(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        client = openai_client(api)
        fake.script("openai", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], times=2)
        answer = await client.chat.completions.create(
            model="fake/gpt-4o-mini", messages=chat("weather in Paris?"), tools=[WEATHER_TOOL]
        )
        call = answer.choices[0].message.tool_calls[0]
        assert answer.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
            "city": "Paris"
        }
        assert fake.requests_to("/chat/completions")[-1].body["tools"] == [WEATHER_TOOL]

        stream = await client.chat.completions.create(
            model="fake/gpt-4o-mini", messages=chat("weather in Paris?"), tools=[WEATHER_TOOL], stream=True
        )
        arguments = ""
        async for chunk in stream:
            for part in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                arguments += part.function.arguments or ""
        assert json.loads(arguments) == {"city": "Paris"}
        runs = await gateway_runs(api)
        assert [r.finish_reason for r in runs] == ["tool_calls", "tool_calls"]
        for run in runs:
            assert run.tool_calls is not None
            assert json.loads(run.tool_calls[0]["function"]["arguments"]) == {"city": "Paris"}


async def test_anthropic_messages_json_stream_and_translation(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        claude = anthropic_client(api)
        message = await claude.messages.create(
            model="claude/claude-gateway-test",
            max_tokens=100,
            system="Answer briefly.",
            messages=[{"role": "user", "content": "hello anthropic wire"}],
        )
        assert message.content[0].text == reply_for("hello anthropic wire")
        sent = fake.requests_to("/v1/messages")[-1]
        assert sent.headers["x-api-key"] == fake.api_key and sent.body["model"] == "claude-gateway-test"

        async with claude.messages.stream(
            model="claude/claude-gateway-test",
            max_tokens=100,
            messages=[{"role": "user", "content": "stream through anthropic"}],
        ) as stream:
            text = "".join([piece async for piece in stream.text_stream])
        assert text == reply_for("stream through anthropic")

        # An Anthropic client calling an OpenAI-wire connection: translated both ways by the provider layer.
        translated = await claude.messages.create(
            model="fake/gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "cross the wires"}]
        )
        assert translated.content[0].text == reply_for("cross the wires")
        assert translated.stop_reason == "end_turn" and translated.usage.output_tokens > 0
        # ... and an OpenAI client calling the Anthropic connection, streamed.
        client = openai_client(api)
        stream = await client.chat.completions.create(
            model="claude/claude-gateway-test", messages=chat("openai to anthropic"), stream=True
        )
        parts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        assert "".join(parts) == reply_for("openai to anthropic")

        runs = await gateway_runs(api)
        assert len(runs) == 4 and all(r.status == "ok" for r in runs)
        assert [r.provider for r in runs] == ["claude", "claude", "fake", "claude"]
        assert runs[0].input["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert runs[1].output == text and runs[1].output_tokens > 0 and runs[1].ttft_ms is not None


async def test_completions_embeddings_and_models(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        client = openai_client(api)
        done = await client.completions.create(
            model="fake/gpt-3.5-turbo-instruct", prompt="complete this line"
        )
        assert done.choices[0].text
        vectors = await client.embeddings.create(model="fake/text-embedding-3-small", input=["a b", "c d"])
        assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 8
        # an alias a connection declares routes a model name the application already uses
        r = await api.post(
            "/api/v1/providers",
            json={
                "name": "aliased",
                "type": "openai",
                "baseUrl": fake.url + "/v1",
                "apiKey": fake.api_key,
                "options": {"aliases": {"gpt-4o": "gpt-4o-mini"}},
                "maxConcurrency": 1,  # calls in a row each get the one permit back (none leaks)
            },
        )
        assert r.status_code == 201, r.text
        for stream in (False, True, False):
            answer = await client.chat.completions.with_raw_response.create(
                model="gpt-4o", messages=chat("via alias"), stream=stream
            )
            assert answer.status_code == 200
        aliased = await client.chat.completions.create(model="gpt-4o", messages=chat("via alias"))
        assert aliased.choices[0].message.content == reply_for("via alias")
        assert fake.requests_to("/chat/completions")[-1].body["model"] == "gpt-4o-mini"
        models = await client.models.list()
        ids = {m.id for m in models.data}
        assert {"local/gemma-3-270m", "fake/*", "claude/*", "gpt-4o"} <= ids
        runs = await gateway_runs(api)
        assert [r.input.get("prompt") or r.input.get("texts") for r in runs[:2]] == [
            "complete this line",
            ["a b", "c d"],
        ]
        assert {(r.provider, r.model) for r in runs[2:]} == {("aliased", "gpt-4o-mini")} and len(runs) == 6


async def test_errors_come_in_each_providers_shape(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake, gateway_max_body_bytes=2048) as api:
        viewer = (await api.make_key("Viewer"))["key"]
        with pytest.raises(openai.AuthenticationError) as denied:
            await openai_client(api, key="po_wrong000_" + "B" * 40).chat.completions.create(
                model="fake/m", messages=chat("x")
            )
        assert denied.value.code == "invalid_credentials"
        with pytest.raises(openai.PermissionDeniedError) as forbidden:
            await openai_client(api, key=viewer).chat.completions.create(model="fake/m", messages=chat("x"))
        assert forbidden.value.code == "permission_denied"
        with pytest.raises(openai.NotFoundError) as missing:
            await openai_client(api).chat.completions.create(model="nope/model", messages=chat("x"))
        assert missing.value.code == "model_not_found" and missing.value.param == "model"
        with pytest.raises(openai.APIStatusError) as too_big:
            await openai_client(api).chat.completions.create(model="fake/m", messages=chat("x" * 5000))
        assert too_big.value.status_code == 413 and too_big.value.code == "payload_too_large"
        fake.script("openai", status=500)
        with pytest.raises(openai.InternalServerError) as upstream:
            await openai_client(api).chat.completions.create(model="fake/m", messages=chat("x"))
        assert upstream.value.body["type"] == "server_error"  # type: ignore[index]

        with pytest.raises(anthropic.PermissionDeniedError) as a_forbidden:
            await anthropic_client(api, key=viewer).messages.create(
                model="claude/c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert a_forbidden.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
        with pytest.raises(anthropic.NotFoundError) as a_missing:
            await anthropic_client(api).messages.create(
                model="nope/model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert a_missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        fake.script("anthropic", error="overloaded")
        with pytest.raises(anthropic.APIStatusError) as a_upstream:
            await anthropic_client(api).messages.create(
                model="claude/c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert a_upstream.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]

        runs = await gateway_runs(api)  # the two upstream failures are recorded as failed runs
        assert [(r.provider, r.status) for r in runs] == [("fake", "error"), ("claude", "error")]
        assert runs[0].error_class == "upstream_500"


async def test_rate_limit_answers_429_with_retry_after(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake, gateway_rate_limit_per_minute=2) as api:
        client = openai_client(api)
        for _ in range(2):
            await client.chat.completions.create(model="fake/gpt-4o-mini", messages=chat("hi"))
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="fake/gpt-4o-mini", messages=chat("hi"))
        assert limited.value.code == "rate_limit_exceeded"
        assert int(limited.value.response.headers["retry-after"]) >= 1
        with pytest.raises(anthropic.RateLimitError) as a_limited:
            await anthropic_client(api).messages.create(
                model="claude/c", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert a_limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_monthly_budget_answers_429(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake, gateway_monthly_budget_usd=0.0000001) as api:
        client = openai_client(api)
        await client.chat.completions.create(model="fake/gpt-4o-mini", messages=chat("spend some money"))
        await drained(api)
        with pytest.raises(openai.RateLimitError) as broke:
            await client.chat.completions.create(model="fake/gpt-4o-mini", messages=chat("more"))
        assert broke.value.code == "budget_exceeded" and broke.value.type == "insufficient_quota"
        assert int(broke.value.response.headers["retry-after"]) > 0


async def test_attribution_by_header_metadata_and_fingerprint(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        r = await api.get("/api/v1/prompts/sentiment/few-shot")
        assert r.status_code == 200, r.text
        prompt_id = r.json()["prompt"]["id"] if "prompt" in r.json() else r.json()["id"]
        client = openai_client(api)
        await client.chat.completions.create(
            model="fake/gpt-4o-mini",
            messages=chat("by header"),
            extra_headers={"X-PromptOps-Prompt": "sentiment/few-shot@1"},
        )
        await client.chat.completions.create(
            model="fake/gpt-4o-mini",
            messages=chat("by metadata"),
            metadata={"promptops_prompt": "sentiment/few-shot@1", "team": "support"},
        )
        assert fake.requests_to("/chat/completions")[-1].body["metadata"] == {"team": "support"}
        for order in (111, 2222):  # differs only in numbers: one fingerprint
            await client.chat.completions.create(
                model="fake/gpt-4o-mini", messages=chat("x", system=f"Summarise   order {order} politely.")
            )
        raw = await client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini",
            messages=chat("unknown prompt"),
            extra_headers={"X-PromptOps-Prompt": "no/such-prompt@production"},
        )
        assert "not attributed" in raw.headers["x-promptops-warning"]

        runs = await gateway_runs(api)
        assert [r.prompt_id for r in runs] == [prompt_id, prompt_id, None, None, None]
        assert runs[0].version_id and runs[0].fingerprint is None
        assert runs[2].fingerprint == runs[3].fingerprint != runs[4].fingerprint

        listing = await api.get("/api/v1/gateway/prompts")
        assert listing.status_code == 200, listing.text
        top = listing.json()["items"][0]
        assert top["fingerprint"] == runs[2].fingerprint and top["runs"] == 2
        assert top["sampleText"] == "Summarise   order 2222 politely."
        assert top["firstSeen"] <= top["lastSeen"]
        viewer = (await api.make_key("Viewer"))["key"]
        assert (await api.get("/api/v1/gateway/prompts", viewer)).status_code == 200  # run:read


async def test_a_key_cannot_route_to_another_projects_connection(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        project_b = await make_project_b(api)
        with pytest.raises(openai.NotFoundError):
            await openai_client(api, key=project_b["key"]).chat.completions.create(
                model="fake/gpt-4o-mini", messages=chat("steal")
            )
        models = await openai_client(api, key=project_b["key"]).models.list()
        assert not any(m.id.startswith(("fake/", "claude/")) for m in models.data)
        assert fake.requests_to("/chat/completions") == []
        listing = await api.get("/api/v1/gateway/prompts", project_b["key"])
        assert listing.json()["items"] == []


async def test_response_cache_is_opt_in(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        client = openai_client(api)
        asked = {"X-PromptOps-Cache": "60"}
        first = await client.chat.completions.create(
            model="fake/gpt-4o-mini", messages=chat("cache me"), extra_headers=asked
        )
        second = await client.chat.completions.with_raw_response.create(
            model="fake/gpt-4o-mini", messages=chat("cache me"), extra_headers=asked
        )
        assert second.headers["x-promptops-cache"] == "hit"
        assert second.parse().choices[0].message.content == first.choices[0].message.content
        await client.chat.completions.create(model="fake/gpt-4o-mini", messages=chat("cache me"))
        assert len(fake.requests_to("/chat/completions")) == 2  # the hit did not reach the upstream
        runs = await gateway_runs(api)
        assert [r.cached for r in runs] == [False, True, False] and runs[1].cost_usd == 0


async def test_session_and_raw_http_errors_are_wire_shaped(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api, transport(api) as http:
        r = await http.post("/v1/chat/completions", json={"model": "fake/m", "messages": []})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await http.post("/v1/messages", headers={"x-api-key": ADMIN_KEY}, content=b"{not json", timeout=5)
        assert r.status_code == 400 and r.json()["type"] == "error"
        assert r.json()["error"]["type"] == "invalid_request_error"
        r = await http.post("/v1/chat/completions", headers=Api.auth(ADMIN_KEY), json={"messages": []})
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"


async def test_fallbacks_serve_the_call_when_the_model_fails(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        client = openai_client(api)
        fake.script("openai", status=503, times=10)  # the OpenAI-wire upstream is down (every retry too)
        raw = await client.chat.completions.with_raw_response.create(
            model="fake/m", messages=chat("hello"), extra_body={"fallbacks": ["claude/c"]}
        )
        answer = raw.parse()
        assert answer.choices[0].message.content == reply_for("hello")  # answered by the Anthropic connection
        assert raw.headers["x-promptops-fallback-from"] == "fake/m"
        assert all("fallbacks" not in r.body for r in fake.requests)  # never forwarded upstream
        runs = await gateway_runs(api)
        assert [(r.provider, r.status) for r in runs] == [("fake", "error"), ("claude", "ok")]
        assert raw.headers["x-promptops-run-id"] == runs[-1].id

        # The same by header; a caller's mistake (4xx from the upstream) is answered, not retried elsewhere.
        fake.reset()
        fake.script("openai", status=400, times=10)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(
                model="fake/m", messages=chat("bad"), extra_headers={"X-PromptOps-Fallbacks": "claude/c"}
            )
        assert not fake.requests_to("/v1/messages")

        # Every fallback is routed before any call: an unknown one is a 404 and nothing is sent.
        fake.reset()
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(
                model="fake/m", messages=chat("x"), extra_body={"fallbacks": ["nope/model"]}
            )
        assert missing.value.code == "model_not_found" and not fake.requests
        with pytest.raises(openai.BadRequestError) as invalid:
            await client.chat.completions.create(
                model="fake/m", messages=chat("x"), extra_body={"fallbacks": "a"}
            )
        assert invalid.value.param == "fallbacks"
