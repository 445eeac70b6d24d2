"""User regular expressions run on RE2: a catastrophic-backtracking pattern scores at once, and a pattern
only a backtracking engine can run (backreference, lookaround) is refused with a 422 saying RE2 is needed.

With Python's ``re``, ``^(a+)+$`` against 40 ``a`` and a ``!`` would take longer than the universe's age;
these tests would hang rather than pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from promptops.errors import ValidationProblem
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import ScoreInput, score_case, validate_specs
from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

MODEL = {"provider": "fake", "model": "gpt-fake"}
EVIL = "^(a+)+$"
LONG_OUTPUT = "a" * 40 + "!"


class NoModels:
    async def complete(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("a deterministic scorer called a model")

    async def embed(self, *args: Any, **kwargs: Any) -> list[list[float]]:
        raise AssertionError("a deterministic scorer called a model")


def score_input(output: str) -> ScoreInput:
    return ScoreInput(
        output=output,
        expected=None,
        variables={},
        prompt_text="Q",
        latency_ms=1.0,
        cost_usd=0.0,
        input_tokens=1,
        output_tokens=1,
    )


async def regex_score(pattern: str, output: str, flags: str = "") -> tuple[float, str]:
    spec = ScorerSpec(type="regex", value=pattern, options={"flags": flags} if flags else {})
    validate_specs([spec])
    result = (await score_case([spec], score_input(output), NoModels())).results[0]
    return result.score, result.reason


@pytest.mark.parametrize(
    ("pattern", "output", "flags", "score"),
    [
        (EVIL, LONG_OUTPUT, "", 0.0),
        (EVIL, "a" * 100_000, "", 1.0),
        ("(x+x+)+y", "x" * 5000, "", 0.0),
        ("^hello$", "x\nHELLO\ny", "im", 1.0),
        ("^hello$", "x\nHELLO\ny", "i", 0.0),
        ("a.b", "a\nb", "s", 1.0),
        ("a.b", "a\nb", "", 0.0),
        (r"caf\w", "un café", "", 0.0),  # RE2's \w is ASCII
        (r"\d{3}-\d{4}", "naïve 555-1234", "", 1.0),
    ],
)
async def test_patterns_run_in_linear_time_with_flags(
    pattern: str, output: str, flags: str, score: float
) -> None:
    assert (await regex_score(pattern, output, flags))[0] == score


async def test_match_position_counts_characters() -> None:
    spec = ScorerSpec(type="regex", value="b+")
    result = (await score_case([spec], score_input("ééébb"), NoModels())).results[0]
    assert result.reason == "output matches at 3" and result.details["match"] == "bb"


@pytest.mark.parametrize(
    ("pattern", "flags", "message"),
    [
        ("(?=a)b", "", "invalid perl operator: (?="),
        ("(?<!a)b", "", "invalid perl operator"),
        (r"(a)\1", "", "invalid escape sequence: \\1"),
        ("a" * 1001, "", "longer than 1000 characters"),
        ("a", "x", "RE2 has no verbose mode"),
        ("((a{1000}){1000}){1000}", "", "invalid regular expression"),
    ],
)
def test_patterns_re2_cannot_run_are_refused(pattern: str, flags: str, message: str) -> None:
    spec = ScorerSpec(type="regex", value=pattern, options={"flags": flags} if flags else {})
    with pytest.raises(ValidationProblem) as caught:
        validate_specs([spec])
    assert caught.value.status == 422 and caught.value.code == "invalid_scorer"
    assert message in caught.value.detail
    if flags != "x" and len(pattern) <= 1000:
        assert "RE2 syntax is required" in caught.value.detail


# --- through the API -------------------------------------------------------------------------------------------


@pytest.fixture
async def fapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        yield api


async def test_catastrophic_pattern_scores_a_long_output_at_once(fapi: Api, fake: FakeLLMServer) -> None:
    fake.script("openai", text=LONG_OUTPUT, times=2)
    r = await fapi.post(
        "/api/prompt/evaluate",
        json={
            "prompt": "Say {{ thing }}",
            "testCases": [{"input": "aaa"}, {"input": "bbb"}],
            "model": MODEL,
            "scorers": [{"type": "regex", "value": EVIL}, {"type": "regex", "value": "a{40}!$"}],
        },
    )
    assert r.status_code == 200, r.text
    cases = r.json()["cases"]
    assert len(cases) == 2
    for case in cases:
        assert [s["score"] for s in case["scores"]] == [0.0, 1.0]
    assert (await fapi.get("/healthz")).status_code == 200


async def test_lookaround_pattern_gets_a_422_naming_re2(fapi: Api, fake: FakeLLMServer) -> None:
    r = await fapi.post(
        "/api/prompt/evaluate",
        json={
            "prompt": "Say {{ thing }}",
            "testCases": [{"input": "aaa"}],
            "model": MODEL,
            "scorers": [{"type": "regex", "value": "(?<=total: )\\d+"}],
        },
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_scorer"
    assert "RE2 syntax is required" in body["detail"] and "lookaround" in body["detail"]
    assert not fake.requests
