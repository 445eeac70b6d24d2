"""Scorers that call models (LLM judge, embedding similarity, pairwise judge) through the real ModelCaller.

The remote judge and embedding model are the fake OpenAI-compatible HTTP server, reached through a connection
made with the REST API and the real openai SDK; every call must leave a Run with source "eval". The local
judge and local embeddings are the real Gemma 3 270M.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptops.auth.principal import system_principal
from promptops.errors import ProblemError, ValidationProblem
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import (
    DEFAULT_RUBRIC,
    CallerModelAccess,
    ScoreInput,
    pairwise_judge,
    score_case,
    validate_specs,
)
from promptops.providers.base import ConnectionConfig, ProviderAuthError
from promptops.providers.calls import CallContext, Target
from promptops.providers.openai_adapter import OpenAIProvider
from promptops.providers.schemas import ModelTarget
from tests.support.app import Api, new_database, release_database
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer, embedding_for, words
from tests.support.provider_support import (  # noqa: F401 (fixtures)
    add_fake_connection,
    fake_fixture,
    provider_app,
    shared_fake_fixture,
)

JUDGE = Target("judge-conn", "judge-model")
EMBEDDER = Target("judge-conn", "embed-model")
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@dataclass
class Env:
    api: Api
    access: CallerModelAccess
    fake: FakeLLMServer

    async def eval_runs(self) -> list[dict[str, Any]]:
        r = await self.api.get("/api/v1/runs", params={"source": "eval", "limit": 200})
        assert r.status_code == 200, r.text
        return list(reversed(r.json()["items"]))  # oldest first


async def make_env(api: Api, fake: FakeLLMServer, **access: Any) -> Env:
    await add_fake_connection(api, fake, "judge-conn")
    me = (await api.get("/api/v1/auth/me")).json()
    principal = system_principal(me["projectId"], me["orgId"])
    runtime = api.app.state.runtime
    ctx = CallContext(principal, source="eval")
    return Env(api, CallerModelAccess(runtime.caller, ctx, **access), fake)


@pytest.fixture
async def env(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Env]:
    async with provider_app(db_url, tmp_path) as api:
        yield await make_env(api, fake, default_judge=JUDGE, default_embedding=EMBEDDER)


def case(
    output: str | None = "Paris is the capital of France.", expected: str | None = "Paris"
) -> ScoreInput:
    return ScoreInput(
        output=output,
        expected=expected,
        variables={"country": "France"},
        prompt_text="What is the capital of France?",
        latency_ms=10.0,
        cost_usd=0.0,
        input_tokens=7,
        output_tokens=6,
    )


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


# --- LLM judge ---------------------------------------------------------------------------------------------------


async def test_judge_scores_on_the_rubric_and_records_an_eval_run(env: Env) -> None:
    env.fake.script("openai", text=" The answer is correct and clear.\nScore: 4")
    spec = ScorerSpec(type="llm-rubric")
    validate_specs([spec])

    result = (await score_case([spec], case(), env.access)).results[0]

    assert (result.score, result.passed) == (0.75, True)  # (4 - 1) / 4 reaches the default 0.75
    assert result.details["rating"] == 4
    assert result.details["reasoning"] == "The answer is correct and clear."
    assert result.reason == "judge: 4/5 - The answer is correct and clear."
    sent = env.fake.requests_to("/v1/chat/completions")
    assert len(sent) == 1
    body = sent[0].body
    prompt = body["messages"][0]["content"]
    assert body["model"] == "judge-model"
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (160, 0, ["\n###", "\n\n\n"])
    assert prompt.startswith(DEFAULT_RUBRIC)
    assert "Request: What is the capital of France?\nExpected answer: Paris\n" in prompt
    assert prompt.endswith("Answer: Paris is the capital of France.\nReasoning:")
    runs = await env.eval_runs()
    assert [(r["model"], r["status"], r["source"]) for r in runs] == [("judge-model", "ok", "eval")]
    assert env.access.calls == 1


async def test_judge_below_the_threshold_fails_and_negate_passes(env: Env) -> None:
    env.fake.script("openai", text="Wrong city. Score: 2", times=2)
    specs = [ScorerSpec(type="llm-rubric"), ScorerSpec(type="llm-rubric", negate=True, name="not good")]

    low, negated = (await score_case(specs, case(), env.access)).results

    assert (low.score, low.passed) == (0.25, False)
    assert (negated.score, negated.passed) == (0.75, True)


async def test_judge_without_a_score_is_asked_for_the_digit(env: Env) -> None:
    env.fake.script("openai", text="It names the right city but rambles on and on")
    env.fake.script("openai", text=" 3\n")

    result = (await score_case([ScorerSpec(type="llm-rubric", threshold=0.5)], case(), env.access)).results[0]

    assert (result.score, result.passed, result.details["rating"]) == (0.5, True, 3)
    assert result.details["reasoning"] == "It names the right city but rambles on and on"
    follow_up = env.fake.requests_to("/v1/chat/completions")[1].body
    assert follow_up["messages"][0]["content"].endswith(
        "Reasoning: It names the right city but rambles on and on\nScore:"
    )
    assert (follow_up["max_tokens"], follow_up["stop"]) == (4, ["\n"])
    assert len(await env.eval_runs()) == 2


async def test_unparsable_judge_scores_zero_and_says_so(env: Env) -> None:
    env.fake.script("openai", text="I would rather not say.")
    env.fake.script("openai", text=" ten out of ten")

    result = (await score_case([ScorerSpec(type="llm-rubric", threshold=0)], case(), env.access)).results[0]

    assert result.score == 0.0 and result.details["rating"] is None
    assert "unparsable" in result.reason


async def test_judge_model_and_rubric_come_from_the_spec(env: Env) -> None:
    env.fake.script("openai", text="Score: 5")
    spec = ScorerSpec(
        type="llm-rubric",
        value="Is the answer written in French?",
        options={"model": {"provider": "judge-conn", "model": "big-judge", "params": {"temperature": 0.3}}},
    )
    validate_specs([spec])

    result = (await score_case([spec], case(), env.access)).results[0]

    assert (result.score, result.passed) == (1.0, True)
    body = env.fake.requests_to("/v1/chat/completions")[0].body
    assert (body["model"], body["temperature"]) == ("big-judge", 0.3)
    assert body["messages"][0]["content"].startswith("Is the answer written in French?\n\n### Case 1")


async def test_failing_judge_call_fails_the_scorer_with_the_error(env: Env) -> None:
    env.fake.script("openai", status=500)

    result = (await score_case([ScorerSpec(type="llm-rubric", negate=True)], case(), env.access)).results[0]

    assert (result.score, result.passed) == (0.0, False)  # an undecided judge never passes, negated or not
    assert result.reason.startswith("scorer failed: ")
    assert result.details["error"] == "provider_unavailable"
    runs = await env.eval_runs()
    assert [(r["status"], r["errorClass"]) for r in runs] == [("error", "provider_unavailable")]


# --- embedding similarity ------------------------------------------------------------------------------------------


async def test_similar_uses_embeddings_and_records_the_call(env: Env) -> None:
    output, expected = "the capital of france is paris", "paris is the capital"
    specs = [
        ScorerSpec(type="similar"),
        ScorerSpec(type="similar", value="bananas grow on trees", name="far"),
    ]

    near, far = (await score_case(specs, case(output, expected), env.access)).results

    want = cosine(embedding_for(output), embedding_for(expected))
    assert want > 0.8
    assert near.score == pytest.approx(want, abs=1e-5) and near.passed is True
    assert far.score < 0.5 and far.passed is False
    sent = env.fake.requests_to("/v1/embeddings")
    # the two scorers run concurrently, so their calls may arrive in either order
    assert sorted(r.body["input"] for r in sent) == [[output, "bananas grow on trees"], [output, expected]]
    assert {r.body["model"] for r in sent} == {"embed-model"}
    assert {r.body["encoding_format"] for r in sent} == {"float"}
    runs = await env.eval_runs()
    assert len(runs) == 2
    for run in runs:
        assert (run["output"], run["status"], run["model"]) == ("2 embeddings", "ok", "embed-model")
        assert run["input"]["texts"][0] == output
        assert run["inputTokens"] == sum(words(t) for t in run["input"]["texts"])
        assert run["usageEstimated"] is False


async def test_similar_without_an_embedding_model_fails_clearly(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with provider_app(db_url, tmp_path) as api:
        env = await make_env(api, fake)  # no default embedding model
        spec = ScorerSpec(type="similar")
        with pytest.raises(ValidationProblem):
            validate_specs([spec], embedding_available=False)

        result = (await score_case([spec], case(), env.access)).results[0]

        assert result.passed is False and result.details["error"] == "no_embedding_model"
        assert "no embedding model configured" in result.reason
        with pytest.raises(ValidationProblem) as caught:
            await env.access.embed(None, ["x"])
        assert caught.value.code == "no_embedding_model"


async def test_embedding_on_a_connection_that_cannot_embed(env: Env) -> None:
    r = await env.api.post(
        "/api/v1/providers",
        json={"name": "claude", "type": "anthropic", "baseUrl": env.fake.url, "apiKey": DEFAULT_KEY},
    )
    assert r.status_code == 201, r.text
    target = ModelTarget(provider="claude", model="claude-x")

    with pytest.raises(ProblemError) as caught:
        await env.access.embed(target, ["a", "b"])

    assert caught.value.code == "embeddings_not_supported"
    assert "'claude' (anthropic) cannot embed text" in caught.value.detail
    runs = await env.eval_runs()
    assert [(r["status"], r["errorClass"], r["provider"]) for r in runs] == [
        ("error", "embeddings_not_supported", "claude")
    ]
    assert env.fake.requests == []


async def test_embedding_errors_and_estimated_usage(env: Env) -> None:
    env.fake.script("openai", usage=False)
    vectors = await env.access.embed(None, ["one two three four five six seven eight"])
    assert vectors == [pytest.approx(embedding_for("one two three four five six seven eight"))]

    env.fake.script("openai", error="rate_limit", status=429)
    with pytest.raises(ProblemError) as caught:
        await env.access.embed(None, ["x"])
    assert caught.value.code == "provider_rate_limited"

    runs = await env.eval_runs()
    assert [(r["status"], r["usageEstimated"]) for r in runs] == [("ok", True), ("error", False)]
    assert runs[0]["inputTokens"] == 10  # estimated at ~4 characters a token


async def test_openai_adapter_embeds_via_the_sdk(fake: FakeLLMServer) -> None:
    base = {"api_key": fake.api_key, "timeout_seconds": 5.0, "max_retries": 0}
    openai = OpenAIProvider(ConnectionConfig(type="openai", base_url=fake.url + "/v1", **base))
    azure = OpenAIProvider(
        ConnectionConfig(type="azure_openai", base_url=fake.url, api_version="2024-10-21", **base)
    )
    try:
        texts = ["alpha beta", "gamma", ""]
        response = await openai.embed("text-embedding-3-small", texts)
        assert response.vectors == [pytest.approx(embedding_for(t)) for t in texts]
        assert (response.usage.input_tokens, response.usage.reported) == (3, True)
        assert response.model == "text-embedding-3-small"

        deployed = await azure.embed("my-deployment", ["alpha"])
        assert deployed.vectors == [pytest.approx(embedding_for("alpha"))]
        assert fake.requests[-1].path == "/openai/deployments/my-deployment/embeddings"

        with pytest.raises(ProviderAuthError):
            await OpenAIProvider(
                ConnectionConfig(type="openai", base_url=fake.url + "/v1", api_key="sk-wrong-key-123456789")
            ).embed("m", ["x"])
    finally:
        await openai.aclose()
        await azure.aclose()


# --- pairwise judge -----------------------------------------------------------------------------------------------


async def test_pairwise_agreeing_orders_name_a_winner(env: Env) -> None:
    env.fake.script("openai", text=" A is right.\nWinner: A")  # asked with A first
    env.fake.script("openai", text=" B is right.\nWinner: B")  # swapped: the judge's B is the caller's A

    verdict = await pairwise_judge(
        env.access, rubric=None, input_text="Capital of France?", output_a="Paris", output_b="Lyon"
    )

    assert verdict.winner == "A" and verdict.votes == ["A", "A"]
    assert "both orders agree: A" in verdict.reasoning
    first, second = (r.body["messages"][0]["content"] for r in env.fake.requests_to("/chat/completions"))
    assert first.endswith("Answer A: Paris\nAnswer B: Lyon\nReasoning:")
    assert second.endswith("Answer A: Lyon\nAnswer B: Paris\nReasoning:")
    assert len(await env.eval_runs()) == 2


async def test_pairwise_position_bias_is_a_tie(env: Env) -> None:
    env.fake.script("openai", text="Winner: A", times=2)  # always the first answer shown

    verdict = await pairwise_judge(
        env.access,
        rubric="Prefer the shorter answer.",
        input_text="Capital of France?",
        output_a="Paris",
        output_b="It is Paris",
        target=ModelTarget(provider="judge-conn", model="pair-judge"),
    )

    assert verdict.winner == "tie" and verdict.votes == ["A", "B"]
    assert "disagree" in verdict.reasoning
    sent = env.fake.requests_to("/chat/completions")
    assert {r.body["model"] for r in sent} == {"pair-judge"}
    assert "Prefer the shorter answer." in sent[0].body["messages"][0]["content"]


async def test_pairwise_follow_up_and_no_verdict(env: Env) -> None:
    env.fake.script("openai", text="B seems better")
    env.fake.script("openai", text=" B")
    env.fake.script("openai", text="no idea")
    env.fake.script("openai", text=" neither")

    verdict = await pairwise_judge(env.access, rubric=None, input_text="q", output_a="x", output_b="y")

    assert verdict.winner == "tie" and verdict.votes == ["B", None]
    assert "named no winner" in verdict.reasoning
    assert len(env.fake.requests_to("/chat/completions")) == 4


# --- the real local model -------------------------------------------------------------------------------------------


@pytest.fixture
async def local_env(tmp_path: Path, sqlite_template: Path, fake: FakeLLMServer) -> AsyncIterator[Env]:
    """SQLite only: these tests are about the local model, not the database."""
    url = new_database("sqlite", tmp_path, sqlite_template)
    try:
        async with provider_app(url, tmp_path) as api:
            yield await make_env(api, fake)  # default judge: the local model
    finally:
        release_database(url)


@pytest.mark.skipif(not HAS_LLAMA, reason="llama_cpp (the 'local' extra) is not installed")
async def test_local_model_judge_gives_a_parsable_score(local_env: Env) -> None:
    result = (await score_case([ScorerSpec(type="llm-rubric")], case(), local_env.access)).results[0]

    assert result.details["rating"] in {1, 2, 3, 4, 5}, result.details
    assert result.score == (result.details["rating"] - 1) / 4
    runs = await local_env.eval_runs()
    assert runs and {(r["provider"], r["model"], r["status"]) for r in runs} == {
        ("local", "gemma-3-270m", "ok")
    }


@pytest.mark.skipif(not HAS_LLAMA, reason="llama_cpp (the 'local' extra) is not installed")
async def test_local_model_embeddings_rank_a_paraphrase_above_an_unrelated_text(local_env: Env) -> None:
    local = {"provider": "local", "model": "gemma-3-270m"}
    specs = [
        ScorerSpec(type="similar", value="A cat is sitting on a mat", options={"model": local}, name="near"),
        ScorerSpec(type="similar", value="Quarterly revenue grew by ten percent", options={"model": local}),
    ]
    validate_specs(specs, embedding_available=False)

    near, far = (await score_case(specs, case("The cat sat on the mat"), local_env.access)).results

    assert 0 <= far.score < near.score <= 1
    runs = await local_env.eval_runs()
    assert [(r["output"], r["provider"]) for r in runs] == [("2 embeddings", "local")] * 2
    assert all(r["inputTokens"] > 0 and not r["usageEstimated"] for r in runs)
