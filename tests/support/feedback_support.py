"""Shared helpers of the feedback tests: an app that may call the fake provider, and runs made through it.

Test modules import the fixtures ``fake_llm_fixture`` and ``fapi_fixture`` (registered as ``fake_llm`` and
``fapi``) so that pytest sees them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import provider_app

EXAMPLE = "sentiment/few-shot"
FAKE_TARGET = {"provider": "fake", "model": "gpt-4o-mini"}


@pytest.fixture(scope="module", name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture(name="fapi")
async def fapi_fixture(db_url: str, tmp_path: Path, fake_llm: FakeLLMServer) -> AsyncIterator[Api]:
    """The app with a provider connection ``fake`` to the fake OpenAI-compatible server."""
    async with provider_app(db_url, tmp_path, fake_llm) as api:
        yield api


async def make_run(api: Api, review: str, prompt: str = EXAMPLE, key: str | None = None) -> dict[str, Any]:
    """One recorded run of ``prompt`` on the fake model: {runId, promptId, versionId, text}."""
    kwargs: dict[str, Any] = {} if key is None else {"key": key}
    r = await api.post(
        "/api/v1/playground/run",
        json={"prompt": prompt, "variables": {"review": review}, "models": [FAKE_TARGET]},
        **kwargs,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    result = body["results"][0]
    assert result["status"] == "ok", result
    return {
        "runId": result["runId"],
        "promptId": body["promptId"],
        "versionId": body["versionId"],
        "text": result["text"],
    }


async def audit_events(api: Api, event_type: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.get("/api/prompt/audit", params={"eventType": event_type, "limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["events"])
