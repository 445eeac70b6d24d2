"""``POST /api/prompt/refine`` with raw template ``text`` (an editor selection, e.g. from the VS Code extension):
a proposal comes back and nothing is saved. SQLite and PostgreSQL; model calls go to a real HTTP server speaking
the OpenAI wire format (scripted answers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

FAKE = {"provider": "fake", "model": "gpt-fake"}
VERBOSE = "Is the sentiment of the following review positive or negative?\n\nReview: {{ review }}\nSentiment:"


@pytest.fixture
async def oapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        yield api


async def prompt_count(api: Api) -> int:
    r = await api.get("/api/v1/prompts", params={"limit": 200})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def refined_events(api: Api) -> list[dict[str, Any]]:
    r = await api.get("/api/prompt/audit", params={"eventType": "PromptRefined", "limit": 200})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def test_raw_text_with_a_note_is_proposed_and_nothing_is_saved(oapi: Api, fake: FakeLLMServer) -> None:
    before = await prompt_count(oapi)
    fake.script("openai", text="<prompt>I think the prompt is fine.</prompt>")  # critique-and-edit: junk
    r = await oapi.post(
        "/api/prompt/refine",
        json={"text": VERBOSE, "feedback": "Too chatty - answer with one word", "model": FAKE},
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["versionId"] is None and out["version"] is None and out["parentId"] == "unsaved"
    assert out["promptId"].startswith("inline:")
    assert out["strategy"] == "tighten-format"
    assert "Answer with exactly one word." in out["prompt"] and "{{ review }}" in out["prompt"]
    assert "+Answer with exactly one word." in out["diff"] and "(your text)" in out["diff"]
    assert out["modelConfig"]["params"]["max_tokens"] == 4
    assert "Winner: tighten-format" in out["rationale"]
    assert out["feedbackUsed"]["notes"] == 1 and out["scores"] is None
    assert len(fake.requests) == 1  # the critique call went to the model asked for
    assert await prompt_count(oapi) == before
    assert await refined_events(oapi) == []


async def test_raw_text_with_a_dataset_is_scored_on_its_cases(oapi: Api, fake: FakeLLMServer) -> None:
    before = await prompt_count(oapi)
    r = await oapi.post(
        "/api/prompt/refine",
        json={
            "text": "Review: {{ review }}\nSentiment:",
            "feedback": "Use the reviewer's words",
            "dataset": "sentiment/reviews@1",
            "model": FAKE,
            "strategies": ["counter-examples", "apply-notes"],
            "scorers": [{"type": "icontains"}],
            "maxCases": 6,
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    scores = out["scores"]
    assert scores["cases"] == 6 and scores["model"] == "fake/gpt-fake"
    assert 0.0 <= scores["parent"]["score"] <= 1.0
    tried = {c["strategy"]: c for c in out["candidates"] if c["applied"]}
    assert "apply-notes" in tried and all(c["score"] is not None for c in tried.values())
    best = max(tried.values(), key=lambda c: c["score"])
    assert scores["refined"]["score"] == best["score"]
    assert "Parent inline (your text)" in out["rationale"]
    assert out["versionId"] is None
    # parent + each applied candidate, 6 cases each: all answered by the fake model
    assert len(fake.requests) == 6 * (1 + len(tried))
    assert await prompt_count(oapi) == before and await refined_events(oapi) == []


@pytest.mark.parametrize(
    "body",
    [
        {"feedback": "answer with one word"},  # neither prompt nor text
        {"prompt": "sentiment/zero-shot", "text": VERBOSE, "feedback": "x"},  # both
        {"text": VERBOSE, "accept": {"template": VERBOSE}},  # nothing to save raw text on
        {"text": VERBOSE, "useFeedback": True},
        {"text": VERBOSE, "evalRunId": "evr_x"},
        {"text": "", "feedback": "answer with one word"},
        {"text": "x" * 100_001, "feedback": "answer with one word"},
    ],
)
async def test_raw_text_requests_that_are_refused(oapi: Api, body: dict[str, Any]) -> None:
    r = await oapi.post("/api/prompt/refine", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_raw_text_without_any_feedback_is_a_clear_422(oapi: Api) -> None:
    r = await oapi.post("/api/prompt/refine", json={"text": VERBOSE})
    assert r.status_code == 422 and r.json()["code"] == "no_feedback"


async def test_raw_text_refine_needs_the_optimize_permission(oapi: Api) -> None:
    r = await oapi.post(
        "/api/prompt/refine",
        json={"text": VERBOSE, "feedback": "answer with one word"},
        key="po_nope",
    )
    assert r.status_code == 401
