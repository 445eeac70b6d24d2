"""What the remote adapter tests share: fixtures, helpers and the failure scenarios all of them go through.

pytest only looks for fixtures in conftest files and test modules, so the fixtures here are made by a function
and assigned in each test module::

    shared_server, server, build = adapter_fixtures(OpenAIProvider, "openai", path="/v1")
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from promptops.providers.base import (
    ConnectionConfig,
    ConnectionType,
    ModelRequest,
    Provider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
)
from tests.support.fake_llm_server import FakeLLMServer

AdapterT = TypeVar("AdapterT", bound=Provider)
# ``build``: the fixture's factory, ``build(**ConnectionConfig overrides) -> adapter``.
Build = Callable[..., Provider]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def weather_call(call_id: str, city: str) -> dict[str, Any]:
    """A ``WEATHER_TOOL`` call in the OpenAI shape every adapter reports tool calls in."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }


def adapter_fixtures(
    adapter: Callable[[ConnectionConfig], AdapterT], connection_type: ConnectionType, path: str = ""
) -> tuple[Any, Any, Any]:
    """The ``shared_server``, ``server`` and ``build`` fixtures for the tests of one adapter class.

    ``shared_server`` is one fake server per test module; ``path`` is what the adapter's base URL adds to the
    server's URL.
    """

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
    async def build(server: FakeLLMServer) -> AsyncIterator[Callable[..., AdapterT]]:
        """Adapters against the fake server (overrides go to ConnectionConfig); all closed after the test."""
        made: list[AdapterT] = []

        def factory(**overrides: Any) -> AdapterT:
            values: dict[str, Any] = {
                "type": connection_type,
                "base_url": server.url + path,
                "api_key": server.api_key,
                "timeout_seconds": 5.0,
                "max_retries": 1,
            }
            values.update(overrides)
            provider = adapter(ConnectionConfig(**values))
            made.append(provider)
            return provider

        yield factory
        for provider in made:
            await provider.aclose()

    return shared_server, server, build


async def collect(provider: Provider, request: ModelRequest) -> tuple[list[str], StreamEvent]:
    deltas: list[str] = []
    final: StreamEvent | None = None
    async for event in provider.stream(request):
        if event.done:
            final = event
        else:
            deltas.append(event.delta)
    assert final is not None, "the stream ended without a done event"
    return deltas, final


def key_fragments(key: str, text: str) -> list[str]:
    """The 5-character pieces of ``key`` that occur in ``text``."""
    return [key[i : i + 5] for i in range(len(key) - 4) if key[i : i + 5] in text]


def assert_key_hidden(error: ProviderError, key: str) -> None:
    """Neither the key nor any 5-character piece of it may reach the client."""
    for text in (error.detail, str(error), json.dumps(error.to_problem())):
        leaked = key_fragments(key, text)
        assert not leaked, f"key fragments {leaked} in {text!r}"


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` for a port nothing listens on any more: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- failure scenarios every remote adapter goes through ----------------------------------------------------
# Each scripts the fake server for one ``family`` ("openai", "anthropic", "tgi"), runs ``request`` through
# an adapter from ``build`` and checks what all adapters must do; the test adds what is particular to its
# adapter.


async def wrong_key_rejected(
    server: FakeLLMServer, build: Build, request: ModelRequest, key: str
) -> ProviderError:
    """A rejected key is an auth error, not retried, and no piece of the key reaches the client."""
    with pytest.raises(ProviderAuthError) as caught:
        await build(api_key=key).complete(request)

    assert_key_hidden(caught.value, key)
    assert caught.value.to_problem()["code"] == "provider_auth_failed"
    assert len(server.requests) == 1  # a 401 is not retried
    return caught.value


async def rate_limit_retried(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest
) -> float:
    """One 429 with ``Retry-After: 0.1``, then success; returns the seconds the call took."""
    server.script(family, status=429, headers={"Retry-After": "0.1"}, times=1)

    started = time.monotonic()
    response = await build(max_retries=2).complete(request)

    assert response.text
    assert len(server.requests) == 2
    return time.monotonic() - started


async def rate_limit_exhausted(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest
) -> ProviderRateLimited:
    """429s beyond the retries: the error reports the upstream's Retry-After as ``retryAfter``."""
    server.script(family, status=429, headers={"Retry-After": "0.1"}, times=5)

    with pytest.raises(ProviderRateLimited) as caught:
        await build(max_retries=1).complete(request)

    assert len(server.requests) == 2
    assert caught.value.extra["retryAfter"] == pytest.approx(0.1)
    assert caught.value.to_problem()["retryAfter"] == pytest.approx(0.1)
    return caught.value


async def server_error_retried(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest, **script: Any
) -> None:
    """One 500 (with ``script``'s extra fields), then success on the retry."""
    server.script(family, status=500, times=1, **script)

    response = await build(max_retries=1).complete(request)

    assert response.text
    assert len(server.requests) == 2


async def slow_answer_times_out(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest
) -> None:
    """An answer 3 s away with a 0.5 s timeout: a timeout error, well before the answer would come."""
    server.script(family, delay=3.0)

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await build(timeout_seconds=0.5, max_retries=0).complete(request)

    assert time.monotonic() - started < 2.0


async def stream_dropped(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest, after: int
) -> list[str]:
    """The connection drops after ``after`` stream events: unavailable, not retried; returns the deltas."""
    server.script(family, break_after=after)
    deltas: list[str] = []

    with pytest.raises(ProviderUnavailable) as caught:
        async for event in build().stream(request):
            deltas.append(event.delta)

    assert "ended unexpectedly" in caught.value.detail
    assert len(server.requests) == 1  # a started stream is never retried
    return deltas


async def stream_failure(
    server: FakeLLMServer, build: Build, family: str, request: ModelRequest, **script: Any
) -> ProviderUnavailable:
    """A stream that goes wrong midway as ``script`` says (``error_after``, ``garbage_after``)."""
    server.script(family, **script)

    with pytest.raises(ProviderUnavailable) as caught:
        await collect(build(), request)

    return caught.value
