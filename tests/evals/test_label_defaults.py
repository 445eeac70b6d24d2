"""Labelled cases work with what a new user sends: answers read like a person reads them, short-answer
generation defaults for label tasks, the parameters actually used recorded on every run, and the trivial
baselines (majority label, chance) reported next to every score. Against a real HTTP server speaking the
OpenAI wire format, and the seed-minimal evaluate call on the embedded local model.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

MODEL = {"provider": "fake", "model": "gpt-fake"}
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
REVIEWS = [
    ("The blender died after two uses and the shop refused a refund.", "negative"),
    ("Fast delivery, great price, and it works perfectly.", "positive"),
    ("The jacket is warm, light and looks even better than the photos.", "positive"),
    ("Terrible battery life, it barely lasts an hour.", "negative"),
    ("Friendly staff and the pizza was delicious.", "positive"),
    ("The screen cracked on day one and support ignored my emails.", "negative"),
    ("Comfortable, quiet and easy to set up. Very happy.", "positive"),
    ("The hotel room was filthy and smelled of smoke.", "negative"),
]


@pytest.fixture
async def fapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        yield api


def cases() -> list[dict[str, Any]]:
    return [{"input": text, "expected": label} for text, label in REVIEWS]


async def run_params(api: Api, run_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/v1/runs/{run_id}")
    assert r.status_code == 200, r.text
    params: dict[str, Any] = r.json()["params"]
    return params


async def test_label_answers_get_a_short_first_line_and_are_read_like_a_person(
    fapi: Api, fake: FakeLLMServer
) -> None:
    # a base model that answers and then rambles on into the next example
    fake.script("openai", text="Sentiment: Positive.\nReview: it broke\nSentiment: negative", times=8)
    r = await fapi.post(
        "/api/prompt/evaluate",
        json={"prompt": "Review: {{ review }}\nSentiment:", "testCases": cases(), "model": MODEL},
    )
    assert r.status_code == 200, r.text
    result = r.json()
    sent = [q.body for q in fake.requests_to("/chat/completions")]
    assert len(sent) == 8
    # labels negative/positive (8 characters): 9 tokens, and a stop at the end of the first line
    assert {(b["max_tokens"], tuple(b["stop"])) for b in sent} == {(9, ("\n",))}
    assert await run_params(fapi, result["cases"][0]["runId"]) == {"max_tokens": 9, "stop": ["\n"]}
    # "Sentiment: Positive." is read as positive: right on the 4 positive reviews
    assert result["score"] == 0.5 and result["passRate"] == 0.5
    scores = result["cases"][1]["scores"][0]
    assert (
        scores["details"]["predicted"] == "positive" and scores["details"]["answer"] == "Sentiment: Positive."
    )
    # ... which is exactly what always answering "negative" (the first of the tied majority) would score
    baselines = result["baselines"]
    assert baselines["trivialBaselines"] == {
        "labels": 2,
        "majorityLabel": "negative",
        "majority": 0.5,
        "chance": 0.5,
    }
    assert baselines["beatsMajority"] is False
    assert "no better than always answering 'negative'" in result["feedback"]


async def test_explicit_limits_are_kept_and_free_text_gets_the_general_limit(
    fapi: Api, fake: FakeLLMServer
) -> None:
    model = {**MODEL, "params": {"max_tokens": 50}}
    r = await fapi.post(
        "/api/prompt/evaluate",
        json={"prompt": "Review: {{ review }}\nSentiment:", "testCases": cases()[:2], "model": model},
    )
    assert r.status_code == 200, r.text
    bodies = [q.body for q in fake.requests_to("/chat/completions")]
    assert all(b["max_tokens"] == 50 and "stop" not in b for b in bodies)

    fake.reset()
    r = await fapi.post(
        "/api/prompt/evaluate",
        json={
            "prompt": "Summarise: {{ text }}",
            "testCases": [{"input": "a long text", "expected": "long"}],
            "model": MODEL,
            "scorers": [{"type": "icontains"}],
        },
    )
    assert r.status_code == 200, r.text
    body = fake.requests_to("/chat/completions")[0].body
    assert body["max_tokens"] == 1024 and "stop" not in body
    assert await run_params(fapi, r.json()["cases"][0]["runId"]) == {"max_tokens": 1024}


async def test_evaluation_runs_report_the_trivial_baselines(fapi: Api, fake: FakeLLMServer) -> None:
    r = await fapi.post(
        "/api/v1/prompts",
        json={"name": "lbl/always", "template": "{{ text }}\nLabel:", "variables": [{"name": "text"}]},
    )
    assert r.status_code == 201, r.text
    labelled = [("a", "spam"), ("b", "ham"), ("c", "ham"), ("d", "ham"), ("e", "ham"), ("f", "spam")]
    dataset = [{"id": f"c{i}", "input": {"text": t}, "expected": e} for i, (t, e) in enumerate(labelled)]
    r = await fapi.post("/api/v1/datasets", json={"name": "lbl/mail", "cases": dataset})
    assert r.status_code == 201, r.text
    fake.script("openai", text="Ham", times=6)
    r = await fapi.post(
        "/api/v1/evals", json={"prompts": ["lbl/always"], "dataset": "lbl/mail", "models": [MODEL]}
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    for _ in range(600):
        run = (await fapi.get(f"/api/v1/evals/{run_id}")).json()
        if run["status"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    assert run["status"] == "completed", run
    group = run["summary"][0]
    assert group["passRate"] == pytest.approx(4 / 6, abs=1e-4)
    baselines = group["baselines"]
    assert baselines["trivialBaselines"]["majorityLabel"] == "ham"
    assert baselines["trivialBaselines"]["majority"] == pytest.approx(0.6667, abs=1e-4)
    assert baselines["beatsMajority"] is False and "no better than" in baselines["sentence"]
    # the label set was inferred from the dataset and given to the default scorer
    assert [(s["type"], s["options"]) for s in run["scorers"]] == [("label", {"labels": ["ham", "spam"]})]


# --- the seed-minimal call on the embedded model -----------------------------------------------------------

TWO_SHOT = (
    "Review: I love it, works great.\nSentiment: positive\n\n"
    "Review: Broken on arrival, very disappointed.\nSentiment: negative\n\n"
    "Review: {{ review }}\nSentiment:"
)
ZERO_SHOT = "Is the following review positive or negative?\n{{ review }}"


@pytest.mark.skipif(not HAS_LLAMA, reason="llama_cpp (the 'local' extra) is not installed")
async def test_seed_minimal_evaluate_scores_two_shot_above_zero_shot_on_the_local_model(api: Api) -> None:
    """Only the seed's fields: ``prompt`` as raw text and ``testCases`` with ``expected`` labels."""
    scores = {}
    for name, prompt in (("two-shot", TWO_SHOT), ("zero-shot", ZERO_SHOT)):
        r = await api.post("/api/prompt/evaluate", json={"prompt": prompt, "testCases": cases()}, timeout=300)
        assert r.status_code == 200, r.text
        result = r.json()
        scores[name] = result["score"]
        assert result["baselines"]["trivialBaselines"]["majority"] == 0.5
        params = await run_params(api, result["cases"][0]["runId"])
        assert params["stop"] == ["\n"] and params["max_tokens"] == 9
    print(f"seed-minimal evaluate on gemma-3-270m: {scores}")
    assert scores["two-shot"] > scores["zero-shot"], scores
    assert scores["two-shot"] >= 0.75, scores
