"""OpenAI-wire streams without ``stream_options.include_usage``: the gateway asks the upstream for usage anyway,
the client receives exactly the bytes the upstream would have sent it, and the run records the upstream's
token counts (estimated only when the upstream still reports none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from promptops.gateway.streams import UsageFilter
from tests.gateway.support import gateway_app, gateway_runs, openai_client, transport
from tests.support.app import ADMIN_KEY, Api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer, reply_for, words
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)

MESSAGES = [
    {"role": "system", "content": "You answer in one short line."},
    {"role": "user", "content": "tell me about streaming usage counts"},
]
PROMPT = "complete this sentence about tokens"


async def direct(fake: FakeLLMServer, path: str, body: dict[str, Any]) -> bytes:
    """What the upstream sends a client that calls it itself."""
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            fake.url + "/v1" + path, json=body, headers={"authorization": f"Bearer {DEFAULT_KEY}"}
        )
        assert r.status_code == 200, r.text
        return r.content


async def through_gateway(api: Api, path: str, body: dict[str, Any]) -> bytes:
    async with transport(api) as http:
        r = await http.post("/v1" + path, json=body, headers=Api.auth(ADMIN_KEY), timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        return r.content


def events(raw: bytes) -> list[Any]:
    return [
        json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]"
        for line in raw.decode().split("\n")
        if line.startswith("data: ")
    ]


async def test_stream_usage_is_asked_for_and_not_shown(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        chat = {"messages": MESSAGES, "stream": True, "temperature": 0}
        expected = await direct(fake, "/chat/completions", {"model": "gpt-4o-mini", **chat})
        assert "stream_options" not in fake.requests[-1].body
        received = await through_gateway(api, "/chat/completions", {"model": "fake/gpt-4o-mini", **chat})
        assert received == expected  # byte for byte: no usage chunk, nothing else changed
        assert all(e == "[DONE]" or ("usage" not in e and e["choices"]) for e in events(received))
        sent = fake.requests[-1].body
        assert sent["stream_options"] == {"include_usage": True} and sent["model"] == "gpt-4o-mini"

        legacy = {"prompt": PROMPT, "stream": True, "stream_options": {"include_usage": False}}
        expected_legacy = await direct(fake, "/completions", {"model": "gpt-3.5-turbo-instruct", **legacy})
        received_legacy = await through_gateway(
            api, "/completions", {"model": "fake/gpt-3.5-turbo-instruct", **legacy}
        )
        assert received_legacy == expected_legacy
        assert fake.requests[-1].body["stream_options"] == {"include_usage": True}

        # The official client sees the chunks it always saw.
        stream = await openai_client(api).chat.completions.create(
            model="fake/gpt-4o-mini",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        )
        chunks = [chunk async for chunk in stream]
        assert all(c.usage is None and c.choices for c in chunks)

        runs = await gateway_runs(api)
        assert len(runs) == 3 and all(r.status == "ok" and not r.usage_estimated for r in runs)
        read = " ".join(m["content"] for m in MESSAGES)
        answer = reply_for(MESSAGES[-1]["content"])
        assert (runs[0].input_tokens, runs[0].output_tokens) == (words(read), words(answer))
        assert runs[0].output == answer
        assert (runs[1].input_tokens, runs[1].output_tokens) == (words(PROMPT), words(reply_for(PROMPT)))
        assert runs[2].input_tokens == words(read)


async def test_usage_the_client_asked_for_reaches_it(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        expected = await direct(fake, "/chat/completions", {"model": "gpt-4o-mini", **body})
        received = await through_gateway(api, "/chat/completions", {"model": "fake/gpt-4o-mini", **body})
        assert received == expected
        usage = [e for e in events(received) if e != "[DONE]" and e.get("usage")]
        assert len(usage) == 1 and usage[0]["choices"] == []
        assert not (await gateway_runs(api))[0].usage_estimated


async def test_an_upstream_without_usage_is_estimated(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        fake.script("openai", usage=False, times=2)
        body = {"messages": MESSAGES, "stream": True}
        expected = await direct(fake, "/chat/completions", {"model": "gpt-4o-mini", **body})
        received = await through_gateway(api, "/chat/completions", {"model": "fake/gpt-4o-mini", **body})
        assert received == expected
        assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
        (run,) = await gateway_runs(api)
        assert run.status == "ok" and run.usage_estimated and run.input_tokens > 0


async def test_servers_that_refuse_the_field(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        body = {"messages": MESSAGES, "stream": True}
        expected = await direct(fake, "/chat/completions", {"model": "gpt-4o-mini", **body})
        # A server that answers 400 to the field: the call is sent again as the client sent it.
        fake.reset()
        fake.script(
            "openai", error="bad_request", message="Unrecognized request argument supplied: stream_options"
        )
        received = await through_gateway(api, "/chat/completions", {"model": "fake/gpt-4o-mini", **body})
        assert received == expected
        sent = [r.body for r in fake.requests_to("/chat/completions")]
        assert len(sent) == 2 and "stream_options" in sent[0] and "stream_options" not in sent[1]
        # Any other 400 is the caller's, answered as it is (and sent once).
        fake.reset()
        fake.script("openai", error="bad_request")
        async with transport(api) as http:
            r = await http.post(
                "/v1/chat/completions", json={"model": "fake/m", **body}, headers=Api.auth(ADMIN_KEY)
            )
        assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
        assert len(fake.requests_to("/chat/completions")) == 1
        # A connection can opt out (as for the provider layer): options.stream_usage = false.
        r = await api.post(
            "/api/v1/providers",
            json={
                "name": "plain",
                "type": "openai",
                "baseUrl": fake.url + "/v1",
                "apiKey": DEFAULT_KEY,
                "options": {"stream_usage": False},
            },
        )
        assert r.status_code == 201, r.text
        fake.reset()
        assert (
            await through_gateway(api, "/chat/completions", {"model": "plain/gpt-4o-mini", **body})
            == expected
        )
        assert "stream_options" not in fake.requests[-1].body
        runs = await gateway_runs(api)
        assert [(r.provider, r.status, r.usage_estimated) for r in runs] == [
            ("fake", "ok", True),
            ("fake", "error", True),
            ("plain", "ok", True),
        ]


def _stream(chunks: list[dict[str, Any]], end: bytes = b"\n\n") -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + end for c in chunks) + b"data: [DONE]" + end


@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n"])
def test_usage_filter_at_every_split(end: bytes) -> None:
    """What include_usage adds goes, in whatever pieces the bytes arrive; everything else stays as sent."""
    content = {"id": "c", "choices": [{"index": 0, "delta": {"content": 'say "usage":null, literally'}}]}
    finish = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    sent = _stream([{**content, "usage": None}, {"usage": None, **finish}, usage], end)
    wanted = _stream([content, finish], end)
    for size in range(1, 40):
        usage_filter = UsageFilter()
        out = b"".join(usage_filter.feed(sent[i : i + size]) for i in range(0, len(sent), size))
        assert out + usage_filter.flush() == wanted, size
    kept = _stream([{"id": "x", "choices": [], "usage": None, "object": "chunk"}])  # not the usage chunk
    assert UsageFilter().feed(kept) == _stream([{"id": "x", "choices": [], "object": "chunk"}])
    unfinished = b'data: {"choices": [], "usage": {"prompt_tokens": 1}}'  # no blank line: not an event yet
    usage_filter = UsageFilter()
    assert usage_filter.feed(unfinished) == b"" and usage_filter.flush() == unfinished
