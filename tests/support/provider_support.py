"""Shared helpers of the tests that call the fake OpenAI-compatible server through the app.

Test modules import the fixtures ``shared_fake_fixture`` and ``fake_fixture`` (registered as ``shared_fake``,
one server per module, and ``fake``, that server reset for each test) so that pytest sees them, and open the
app with :func:`provider_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api, open_api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer


@pytest.fixture(scope="module", name="shared_fake")
def shared_fake_fixture() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture(name="fake")
def fake_fixture(shared_fake: FakeLLMServer) -> FakeLLMServer:
    """The module's fake server, with no requests recorded and nothing scripted."""
    shared_fake.reset()
    return shared_fake


async def add_fake_connection(api: Api, fake: FakeLLMServer, name: str = "fake") -> None:
    """A provider connection ``name`` (OpenAI wire format, no retries) to the fake server."""
    r = await api.post(
        "/api/v1/providers",
        json={
            "name": name,
            "type": "openai",
            "baseUrl": fake.url + "/v1",
            "apiKey": DEFAULT_KEY,
            "maxRetries": 0,
        },
    )
    assert r.status_code == 201, r.text


@asynccontextmanager
async def provider_app(
    db_url: str,
    tmp_path: Path,
    fake: FakeLLMServer | None = None,
    connection: str = "fake",
    **settings: Any,
) -> AsyncIterator[Api]:
    """The app with loopback provider URLs allowed (the fake server runs on 127.0.0.1), closed afterwards.

    With ``fake``, a connection named ``connection`` to it is made first.
    """
    api, client, lifespan = await open_api(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"], **settings)
    try:
        if fake is not None:
            await add_fake_connection(api, fake, connection)
        yield api
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
