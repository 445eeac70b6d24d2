"""The provider layer through its public face: connections, playground (JSON and SSE), runs, cache, fallback.

A real HTTP server speaking the OpenAI and Anthropic wire formats stands in for the providers; the local
model is the real Gemma 3 270M.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.app import ADMIN_KEY, Api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

CANARY = DEFAULT_KEY  # the fake server's key: it must never leave the encrypted column


@pytest.fixture
async def papi(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with loopback allowed for provider URLs (the fake server runs on 127.0.0.1)."""
    async with provider_app(db_url, tmp_path) as api:
        yield api


async def connect(api: Api, fake: FakeLLMServer, name: str = "openai-test", **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "type": "openai",
        "baseUrl": fake.url + "/v1",
        "apiKey": CANARY,
        "maxRetries": 0,
        **extra,
    }
    r = await api.post("/api/v1/providers", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_connection_crud_never_returns_the_key(papi: Api, fake: FakeLLMServer) -> None:
    created = await connect(papi, fake)
    assert created["hasApiKey"] is True and created["apiKeyHint"] == CANARY[-4:] and "apiKey" not in created
    listed = (await papi.get("/api/v1/providers")).json()
    assert [c["name"] for c in listed] == ["local", "openai-test"] and listed[0]["builtIn"] is True
    r = await papi.patch(
        "/api/v1/providers/openai-test", json={"maxConcurrency": 3, "allowedModels": ["gpt-4o-mini"]}
    )
    assert r.status_code == 200 and r.json()["maxConcurrency"] == 3
    r = await papi.post("/api/v1/providers", json={"name": "openai-test", "type": "openai"})
    assert r.status_code == 409 and r.json()["code"] == "connection_exists"
    r = await papi.post("/api/v1/providers", json={"name": "local", "type": "openai"})
    assert r.status_code == 422
    viewer = (await papi.make_key("Viewer"))["key"]
    assert (await papi.get("/api/v1/providers", viewer)).status_code == 403
    r = await papi.delete("/api/v1/providers/openai-test")
    assert r.status_code == 204
    events = (await papi.get("/api/prompt/audit", params={"eventType": "ProviderConnectionCreated"})).json()[
        "events"
    ]
    assert events and events[0]["data"]["hasApiKey"] is True


async def test_ssrf_guard_without_allow_list(api: Api) -> None:
    for url in (
        "http://127.0.0.1:9/v1",
        "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",
    ):
        r = await api.post("/api/v1/providers", json={"name": "evil", "type": "openai", "baseUrl": url})
        assert r.status_code == 422 and r.json()["code"] == "unsafe_base_url", (url, r.text)


async def test_cost_is_usage_times_catalog_price(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    body = {
        "template": "Say hello to {{ who }} please",
        "variables": {"who": "Ada"},
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini", "params": {"temperature": 0.2}}],
    }
    r = await papi.post("/api/v1/playground/run", json=body)
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["status"] == "ok" and result["text"].startswith("You said: Say hello to Ada")
    usage = result["usage"]
    assert usage["estimated"] is False and usage["inputTokens"] == 5
    expected = (usage["inputTokens"] * 0.15 + usage["outputTokens"] * 0.60) / 1_000_000
    assert result["costUsd"] == pytest.approx(expected)
    sent = fake.requests_to("/chat/completions")[0]
    assert (
        sent.body["temperature"] == 0.2 and sent.body["messages"][0]["content"] == "Say hello to Ada please"
    )
    run = (await papi.get(f"/api/v1/runs/{result['runId']}")).json()
    assert (
        run["costUsd"] == pytest.approx(expected) and run["status"] == "ok" and run["source"] == "playground"
    )
    assert run["input"] == {"prompt": "Say hello to Ada please"} and run["latencyMs"] > 0
    # a project price override changes the cost of later calls
    r = await papi.put(
        "/api/v1/models/prices",
        json={"provider": "openai-test", "model": "gpt-4o-mini", "inputPer1M": 1000, "outputPer1M": 2000},
    )
    assert r.status_code == 200
    again = (await papi.post("/api/v1/playground/run", json=body)).json()["results"][0]
    assert again["costUsd"] == pytest.approx(
        (usage["inputTokens"] * 1000 + usage["outputTokens"] * 2000) / 1e6
    )


async def test_streaming_records_usage_and_time_to_first_token(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    body = {
        "messages": [{"role": "user", "content": "stream these few words back"}],
        "stream": True,
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}],
    }
    r = await papi.post("/api/v1/playground/run", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert events[0][0] == "start" and events[-1][0] == "end"
    deltas = "".join(d["text"] for e, d in events if e == "delta")
    result = next(d for e, d in events if e == "result")
    assert (
        result["status"] == "ok"
        and deltas == result["text"]
        and len([e for e, _ in events if e == "delta"]) > 2
    )
    assert result["usage"]["estimated"] is False and result["usage"]["outputTokens"] > 0
    assert result["ttftMs"] is not None and result["ttftMs"] <= result["latencyMs"]
    run = (await papi.get(f"/api/v1/runs/{result['runId']}")).json()
    assert (
        run["ttftMs"] == pytest.approx(result["ttftMs"], abs=0.01)
        and run["outputTokens"] == result["usage"]["outputTokens"]
    )


async def test_upstream_dying_mid_call_gives_clear_error_and_failed_run(
    papi: Api, fake: FakeLLMServer
) -> None:
    await connect(papi, fake)
    fake.script("openai", break_after=2)
    body = {
        "template": "one two three four five six",
        "stream": True,
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}],
    }
    events = sse((await papi.post("/api/v1/playground/run", json=body)).text)
    result = next(d for e, d in events if e == "result")
    assert result["status"] == "error" and result["error"]["code"] == "provider_unavailable"
    run = (await papi.get(f"/api/v1/runs/{result['runId']}")).json()
    assert run["status"] == "error" and run["errorClass"] == "provider_unavailable"
    # not streaming: a 500 upstream is a problem response naming the failed run
    fake.script("openai", error="server", times=1)
    r = await papi.post("/api/v1/playground/run", json={**body, "stream": False})
    assert r.status_code == 502 and r.json()["code"] == "provider_unavailable" and r.json()["runId"]
    fake.script("openai", error="rate_limit", headers={"Retry-After": "7"}, times=1)
    r = await papi.post("/api/v1/playground/run", json={**body, "stream": False})
    assert (
        r.status_code == 429 and r.json()["code"] == "provider_rate_limited" and r.json()["retryAfter"] == 7
    )
    failed = (await papi.get("/api/v1/runs", params={"status": "error"})).json()["items"]
    assert len(failed) == 3


async def test_response_cache_hit_costs_nothing(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    body = {
        "template": "cache me",
        "cache": {"ttlSeconds": 60},
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}],
    }
    first = (await papi.post("/api/v1/playground/run", json=body)).json()["results"][0]
    second = (await papi.post("/api/v1/playground/run", json=body)).json()["results"][0]
    assert first["cached"] is False and first["costUsd"] > 0
    assert second["cached"] is True and second["costUsd"] == 0 and second["text"] == first["text"]
    assert len(fake.requests_to("/chat/completions")) == 1
    run = (await papi.get(f"/api/v1/runs/{second['runId']}")).json()
    assert run["cached"] is True and run["costUsd"] == 0
    # without the cache option the call goes upstream again
    await papi.post("/api/v1/playground/run", json={**body, "cache": None})
    assert len(fake.requests_to("/chat/completions")) == 2


async def test_fallback_chain_and_side_by_side(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    r = await papi.post(
        "/api/v1/providers",
        json={"name": "claude", "type": "anthropic", "baseUrl": fake.url, "apiKey": CANARY, "maxRetries": 0},
    )
    assert r.status_code == 201, r.text
    fake.script("openai", error="unavailable", times=5)
    body = {
        "template": "fallback please",
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}],
        "fallbacks": [{"provider": "claude", "model": "claude-haiku-4-5"}],
    }
    r = await papi.post("/api/v1/playground/run", json=body)
    result = r.json()["results"][0]
    assert result["status"] == "ok" and result["provider"] == "claude"
    assert result["fallbackFrom"] == "openai-test/gpt-4o-mini"
    assert result["costUsd"] == pytest.approx(
        (result["usage"]["inputTokens"] * 1.0 + result["usage"]["outputTokens"] * 5.0) / 1e6
    )
    runs = (await papi.get("/api/v1/runs")).json()["items"]
    assert [(r["provider"], r["status"], r["attempt"]) for r in runs] == [
        ("claude", "ok", 2),
        ("openai-test", "error", 1),
    ]
    # the cost range keeps the paid answer and leaves out the failed, free attempt
    paid = (await papi.get("/api/v1/runs", params={"minCostUsd": 1e-9})).json()["items"]
    assert [r["provider"] for r in paid] == ["claude"]
    free = (await papi.get("/api/v1/runs", params={"maxCostUsd": 0})).json()["items"]
    assert [r["provider"] for r in free] == ["openai-test"]
    assert (await papi.get("/api/v1/runs", params={"minCostUsd": -1})).status_code == 422
    fake.reset()
    both = {
        "template": "compare",
        "models": [
            {"provider": "openai-test", "model": "gpt-4o-mini"},
            {"provider": "claude", "model": "claude-haiku-4-5"},
        ],
    }
    results = (await papi.post("/api/v1/playground/run", json=both)).json()["results"]
    assert [(x["index"], x["provider"], x["status"]) for x in results] == [
        (0, "openai-test", "ok"),
        (1, "claude", "ok"),
    ]


async def test_bad_targets_are_clear_4xx(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake, allowedModels=["gpt-4o-mini"])
    r = await papi.post(
        "/api/v1/playground/run",
        json={"template": "x", "models": [{"provider": "openai-test", "model": "gpt-4o"}]},
    )
    assert r.status_code == 422 and r.json()["code"] == "model_not_allowed"
    r = await papi.post(
        "/api/v1/playground/run", json={"template": "x", "models": [{"provider": "nope", "model": "m"}]}
    )
    assert r.status_code == 404 and r.json()["code"] == "connection_not_found"
    r = await papi.post("/api/v1/playground/run", json={"template": "x", "prompt": "a/b"})
    assert r.status_code == 422
    r = await papi.post("/api/v1/playground/run", json={"prompt": "sentiment/few-shot", "variables": {}})
    assert r.status_code == 422 and r.json()["code"] == "missing_variables"
    viewer = (await papi.make_key("Viewer"))["key"]
    r = await papi.post("/api/v1/playground/run", viewer, json={"template": "x"})
    assert r.status_code == 403


async def test_example_prompt_runs_on_the_local_model(papi: Api) -> None:
    body = {
        "prompt": "sentiment/few-shot@production",
        "variables": {"review": "Terrible quality, broke in a week."},
    }
    r = await papi.post("/api/v1/playground/run", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    result = out["results"][0]
    assert (result["provider"], result["model"]) == ("local", "gemma-3-270m")
    assert "negative" in result["text"].lower() and result["costUsd"] == 0
    assert result["usage"]["estimated"] is False and result["usage"]["inputTokens"] > 20
    run = (await papi.get(f"/api/v1/runs/{result['runId']}")).json()
    assert run["promptId"] == out["promptId"] and run["versionId"] == out["versionId"]
    listed = (await papi.get("/api/v1/runs", params={"prompt": "sentiment/few-shot"})).json()["items"]
    assert [x["id"] for x in listed] == [result["runId"]]


async def test_canary_key_never_leaves_the_encrypted_column(
    papi: Api, fake: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptops.logging import configure_logging

    configure_logging("DEBUG", json=True)
    seen: list[str] = []
    seen.append(
        (
            await papi.post(
                "/api/v1/providers",
                json={
                    "name": "canary",
                    "type": "openai",
                    "baseUrl": fake.url + "/v1",
                    "apiKey": CANARY,
                    "maxRetries": 0,
                },
            )
        ).text
    )
    seen.append((await papi.patch("/api/v1/providers/canary", json={"apiKey": CANARY})).text)
    fake.script("openai", error="auth", times=1)  # the upstream echoes the key (masked) in its 401
    r = await papi.post(
        "/api/v1/playground/run",
        json={"template": "hi", "models": [{"provider": "canary", "model": "gpt-4o-mini"}]},
    )
    assert r.status_code == 502 and r.json()["code"] == "provider_auth_failed"
    seen.append(r.text)
    seen.append(
        (
            await papi.post(
                "/api/v1/playground/run",
                json={
                    "template": "hi",
                    "stream": True,
                    "models": [{"provider": "canary", "model": "gpt-4o-mini"}],
                },
            )
        ).text
    )
    for path in ("/api/v1/providers", "/api/v1/providers/canary", "/api/v1/runs", "/api/prompt/audit"):
        seen.append((await papi.get(path)).text)
    seen.append(capsys.readouterr().err)
    fragments = {CANARY[i : i + 8] for i in range(0, len(CANARY) - 8)}
    for blob in seen:
        assert not any(f in blob for f in fragments), blob[:500]
    engine = papi.app.state.runtime.db.engine
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        for table in tables:
            rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
            dump = json.dumps([list(map(str, row)) for row in rows])
            assert not any(f in dump for f in fragments), table
    # and the key does reach the provider, which is the point
    assert any(r.headers.get("authorization") == f"Bearer {CANARY}" for r in fake.requests)
    assert ADMIN_KEY  # the admin key is checked elsewhere


async def test_per_connection_concurrency_limit(papi: Api, fake: FakeLLMServer) -> None:
    import asyncio
    import time

    await connect(papi, fake, maxConcurrency=1)
    fake.script("openai", delay=0.3, times=2)
    body = {"template": "slow", "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}]}
    started = time.perf_counter()
    first, second = await asyncio.gather(
        papi.post("/api/v1/playground/run", json=body), papi.post("/api/v1/playground/run", json=body)
    )
    elapsed = time.perf_counter() - started
    assert first.status_code == second.status_code == 200
    assert elapsed >= 0.6  # the second call waited for the first: one at a time on this connection


async def test_bad_target_fails_before_any_model_is_called(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    body = {
        "template": "x",
        "models": [{"provider": "openai-test", "model": "gpt-4o-mini"}, {"provider": "nope", "model": "m"}],
    }
    r = await papi.post("/api/v1/playground/run", json=body)
    assert r.status_code == 404 and r.json()["code"] == "connection_not_found"
    r = await papi.post("/api/v1/playground/run", json={**body, "stream": True})
    assert r.status_code == 404
    assert fake.requests == [] and (await papi.get("/api/v1/runs")).json()["items"] == []
    for messages in (
        [{"role": "wizard", "content": "x"}],
        [{"role": "user", "content": "x", "name": "n"}],
        [],
    ):
        r = await papi.post("/api/v1/playground/run", json={"messages": messages})
        assert r.status_code == 422 and r.json()["code"] == "validation_error", messages
    r = await papi.post(
        "/api/v1/providers", json={"name": "mine", "type": "local", "options": {"model_path": "/etc/passwd"}}
    )
    assert r.status_code == 422
    r = await papi.patch("/api/v1/providers/local", json={"maxConcurrency": 1})
    assert r.status_code == 422 and r.json()["code"] == "builtin_connection"
    r = await papi.put(
        "/api/v1/models/prices",
        json={"provider": "openai", "model": "gpt-4o", "inputPer1M": 1, "outputPer1M": 2},
    )
    assert r.json()["contextWindow"] == 128000


async def test_an_answer_cut_by_the_token_limit_says_so(papi: Api, fake: FakeLLMServer) -> None:
    await connect(papi, fake)
    model = {"provider": "openai-test", "model": "gpt-4o-mini"}
    body = {"template": "Tell me about {{ who }}", "variables": {"who": "Ada Lovelace and her work"}}
    r = await papi.post(
        "/api/v1/playground/run", json={**body, "models": [{**model, "params": {"max_tokens": 3}}]}
    )
    assert r.status_code == 200, r.text
    cut = r.json()["results"][0]
    assert cut["finishReason"] == "length" and cut["truncated"] is True
    assert cut["notice"] == "The answer was cut at max_tokens=3; raise params.max_tokens for a longer answer."
    assert cut["params"] == {"max_tokens": 3}
    # no limit given: the general default is used, recorded, and the answer ends by itself
    whole = (await papi.post("/api/v1/playground/run", json={**body, "models": [model]})).json()["results"][0]
    assert whole["truncated"] is False and whole["notice"] is None and whole["params"] == {"max_tokens": 1024}
    assert fake.requests_to("/chat/completions")[-1].body["max_tokens"] == 1024
