"""Helpers of the gateway tests: the app with a fake upstream, the official clients bound to it, and reading
the runs the gateway recorded (once its outbox drained)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from sqlalchemy import select

from promptops.gateway.service import Gateway
from promptops.runs.models import Run
from tests.support.app import ADMIN_KEY, Api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.provider_support import provider_app


@asynccontextmanager
async def gateway_app(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, **settings: Any
) -> AsyncIterator[Api]:
    """The app with an OpenAI-wire connection ``fake`` and an Anthropic connection ``claude`` to ``fake``."""
    async with provider_app(db_url, tmp_path, fake, **settings) as api:
        r = await api.post(
            "/api/v1/providers",
            json={
                "name": "claude",
                "type": "anthropic",
                "baseUrl": fake.url,
                "apiKey": DEFAULT_KEY,
                "maxRetries": 0,
            },
        )
        assert r.status_code == 201, r.text
        yield api


def transport(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://testserver")


def openai_client(api: Api, key: str = ADMIN_KEY, **kwargs: Any) -> openai.AsyncOpenAI:
    """The official OpenAI client, pointed at the gateway (in process), with no retries of its own."""
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=key, http_client=transport(api), max_retries=0, **kwargs
    )


def anthropic_client(api: Api, key: str = ADMIN_KEY) -> anthropic.AsyncAnthropic:
    # This anthropic SDK is built on httpx2 (a fork of httpx) and refuses httpx objects.
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api.app), base_url="http://testserver")
    return anthropic.AsyncAnthropic(
        base_url="http://testserver", api_key=key, http_client=http, max_retries=0
    )


def gateway(api: Api) -> Gateway:
    gw: Gateway = api.app.state.gateway
    return gw


async def drained(api: Api, timeout: float = 10.0) -> None:
    gw = gateway(api)
    deadline = asyncio.get_running_loop().time() + timeout
    while gw.outbox.depth:
        assert asyncio.get_running_loop().time() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.01)


async def gateway_runs(api: Api) -> list[Run]:
    """Every gateway run stored, oldest first (after the outbox drained)."""
    await drained(api)
    async with api.app.state.runtime.db.transaction() as session:
        rows = await session.execute(
            select(Run).where(Run.source == "gateway").order_by(Run.created_at, Run.id)
        )
        return list(rows.scalars())
