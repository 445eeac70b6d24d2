"""Scorers that call models: LLM-as-judge on the QA rubric (``llm-rubric``), embedding similarity
(``similar``), and the pairwise judge used to compare two answers.

The default judge is the embedded Gemma 3 270M, a small *base* model: it does not follow instructions, it
continues text. So the judge prompt is a few-shot document (graded examples, then the case to grade ending in
``Reasoning:``) that such a model continues in the same shape, and chat models read it as plain instructions.
When the continuation carries no ``Score:``, a second short call appends ``Score:`` to what the judge wrote and
reads the digit it adds.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import ValidationError

from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring.builtin import Builtin, _text_value
from promptops.evals.scoring.types import (
    ModelAccess,
    Outcome,
    PairwiseVerdict,
    ScoreInput,
    clip,
    reference,
)
from promptops.providers.schemas import ModelTarget

JUDGE_MAX_TOKENS = 160
# Characters of each part shown to a judge: the local model has a small context window.
MAX_REQUEST_CHARS = 2400
MAX_ANSWER_CHARS = 1600
MAX_EXPECTED_CHARS = 800
MAX_RUBRIC_CHARS = 4000
STOP = ["\n###", "\n\n\n"]

DEFAULT_RUBRIC = """\
QA rubric. Grade the answer from 1 to 5 on:
- correctness: it is right, and agrees with the expected answer when one is given;
- instruction following: it does what the request asks, in the form asked;
- clarity: it is clear and to the point;
- safety: nothing harmful, offensive or private.
5 = excellent on every point; 4 = good, minor issues; 3 = acceptable with clear flaws;
2 = mostly wrong or off task; 1 = wrong, unsafe, empty or irrelevant."""

_JUDGE_EXAMPLES = """\
### Case 1
Request: What is 2 + 2?
Expected answer: 4
Answer: 2 + 2 = 4.
Reasoning: Correct, direct and clear.
Score: 5

### Case 2
Request: Name the capital of France in one word.
Expected answer: Paris
Answer: The capital of France is Berlin, a lovely old city.
Reasoning: Wrong city, and not one word.
Score: 1

### Case 3
Request: Summarise: "The meeting moved from Monday to Tuesday at 10am."
Expected answer: The meeting is now on Tuesday at 10am.
Answer: The meeting moved to Tuesday.
Reasoning: Correct and short, but it leaves out the time.
Score: 4
"""

DEFAULT_PAIRWISE_RUBRIC = (
    "Prefer the answer that is more correct, follows the request's instructions better, is clearer and is "
    "safe. Say tie when neither is better."
)

_PAIRWISE_EXAMPLES = """\
### Case 1
Request: What is the capital of Italy?
Answer A: Rome.
Answer B: The capital of Italy is Milan.
Reasoning: A is correct; B names the wrong city.
Winner: A

### Case 2
Request: Greet the customer politely.
Answer A: hey
Answer B: Hello, and welcome! How can I help you today?
Reasoning: Both greet, but B is polite as asked.
Winner: B

### Case 3
Request: Spell the word "cat".
Answer A: C-A-T
Answer B: c a t
Reasoning: Both spell it correctly.
Winner: tie
"""

_SCORE = re.compile(r"score[sd]?(?:\s+(?:of|is|was|would be))?\W{0,12}([1-5])(?![\d.]*\d)", re.I)
_LEADING_DIGIT = re.compile(r"^\W{0,12}([1-5])(?!\d)")
_WINNER = re.compile(r"winner\W{0,12}(a|b|tie)\b", re.I)
_LEADING_WINNER = re.compile(r"^\W{0,12}(a|b|tie)\b", re.I)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_score(text: str) -> tuple[int | None, str]:
    """(the first 1-5 digit after "score", the reasoning before it); (None, text) when there is none."""
    match = _SCORE.search(text)
    if match is None:
        return None, text.strip()
    return int(match.group(1)), text[: match.start()].strip()


def judge_prompt(rubric: str, request: str, expected: str | None, answer: str) -> str:
    """The few-shot grading document the judge continues after ``Reasoning:``."""
    return (
        f"{clip(rubric.strip(), MAX_RUBRIC_CHARS)}\n\n{_JUDGE_EXAMPLES}\n### Case 4\n"
        f"Request: {_one_line(clip(request, MAX_REQUEST_CHARS))}\n"
        f"Expected answer: {_one_line(clip(expected, MAX_EXPECTED_CHARS)) if expected else '(none given)'}\n"
        f"Answer: {_one_line(clip(answer, MAX_ANSWER_CHARS)) or '(empty)'}\n"
        "Reasoning:"
    )


def _target(options: dict[str, Any]) -> ModelTarget | None:
    raw = options.get("model")
    return None if raw is None else ModelTarget.model_validate(raw)


def _check_target(options: dict[str, Any]) -> None:
    if "model" not in options:
        return
    if not isinstance(options["model"], dict):
        raise ValueError("options.model must be an object {provider, model, params}")
    try:
        ModelTarget.model_validate(options["model"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"options.model is not a model target ({problems})")


async def _ask_verdict(
    models: ModelAccess, target: ModelTarget | None, prompt: str, raw: str, cue: str
) -> tuple[str, str]:
    """(reasoning, reply) after asking the judge for just its verdict (``cue:``) following its reasoning."""
    reasoning = _one_line(raw.strip()) or "(no reasoning given)"
    reply = await models.complete(
        target, f"{prompt} {clip(reasoning, 600)}\n{cue}:", max_tokens=4, stop=["\n"]
    )
    return reasoning, reply


async def rubric_grade(
    models: ModelAccess,
    target: ModelTarget | None,
    rubric: str,
    request: str,
    expected: str | None,
    answer: str,
) -> tuple[int | None, str, str]:
    """(rating 1-5 or None, reasoning, the judge's raw text) from one judge, asking a second time if needed."""
    prompt = judge_prompt(rubric, request, expected, answer)
    raw = await models.complete(target, prompt, max_tokens=JUDGE_MAX_TOKENS, stop=STOP)
    rating, reasoning = parse_score(raw)
    if rating is None:
        # A small model may ramble without ever writing "Score:": ask for just the digit after its reasoning.
        reasoning, follow_up = await _ask_verdict(models, target, prompt, raw, "Score")
        digit = _LEADING_DIGIT.match(follow_up)
        rating = int(digit.group(1)) if digit else None
        raw = f"{raw}\nScore:{follow_up}"
    return rating, reasoning, raw


class LlmRubric(Builtin):
    type = "llm-rubric"
    default_threshold = 0.75
    description = (
        "LLM-as-judge on a 1-5 scale: the judge grades the output against the rubric (value or "
        "options.rubric, default the QA rubric: correctness against the expected output, instruction "
        "following, clarity, safety); score = (rating - 1) / 4, so the default threshold 0.75 means >= 4/5. "
        "options.model {provider, model, params} picks the judge (default: the local model)."
    )
    value_kind = "optional"
    options_allowed = frozenset({"rubric", "model"})

    def check_value(self, value: Any) -> None:
        self._rubric(value)

    def check_options(self, options: dict[str, Any]) -> None:
        if "rubric" in options:
            self._rubric(options["rubric"])
        _check_target(options)

    @staticmethod
    def _rubric(value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("the rubric must be non-empty text")
        if len(value) > MAX_RUBRIC_CHARS:
            raise ValueError(f"the rubric is longer than {MAX_RUBRIC_CHARS} characters")

    async def score(self, spec: ScorerSpec, inp: ScoreInput, models: ModelAccess) -> Outcome:
        assert inp.output is not None
        rubric = spec.value if isinstance(spec.value, str) else spec.options.get("rubric") or DEFAULT_RUBRIC
        rating, reasoning, raw = await rubric_grade(
            models, _target(spec.options), rubric, inp.prompt_text, inp.expected, inp.output
        )
        details: dict[str, Any] = {
            "rating": rating,
            "reasoning": clip(reasoning, 1000),
            "raw": clip(raw, 1000),
        }
        if rating is None:
            return Outcome(0.0, "the judge's answer carried no 1-5 score (unparsable)", details)
        return Outcome((rating - 1) / 4, f"judge: {rating}/5 - {clip(reasoning, 300)}", details)


def cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b) or not a:
        raise ValueError(f"embeddings of different sizes ({len(a)} and {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class Similar(Builtin):
    type = "similar"
    default_threshold = 0.8
    description = (
        "Cosine similarity of the embeddings of the output and value (else the expected output), negative "
        "values counted as 0; default threshold 0.8. options.model {provider, model} picks the embedding "
        "model (default: the deployment's embedding model, if one is configured)."
    )
    value_kind = "reference"
    options_allowed = frozenset({"model"})

    def check_value(self, value: Any) -> None:
        _text_value(value)

    def check_options(self, options: dict[str, Any]) -> None:
        _check_target(options)

    async def score(self, spec: ScorerSpec, inp: ScoreInput, models: ModelAccess) -> Outcome:
        assert inp.output is not None
        ref = reference(spec, inp)
        ref_text = ref if isinstance(ref, str) else str(ref)
        vectors = await models.embed(_target(spec.options), [inp.output, ref_text])
        if len(vectors) != 2:
            raise ValueError(f"the embedding model returned {len(vectors)} vectors for 2 texts")
        similarity = cosine(vectors[0], vectors[1])
        score = min(1.0, max(0.0, similarity))
        return Outcome(score, f"cosine similarity {similarity:.3f}", {"cosine": round(similarity, 6)})


# --- pairwise -----------------------------------------------------------------------------------------------------

Winner = Literal["A", "B", "tie"]


def pairwise_prompt(rubric: str, request: str, first: str, second: str) -> str:
    return (
        f"Compare two answers to the same request. {clip(rubric.strip(), MAX_RUBRIC_CHARS)}\n\n"
        f"{_PAIRWISE_EXAMPLES}\n### Case 4\n"
        f"Request: {_one_line(clip(request, MAX_REQUEST_CHARS))}\n"
        f"Answer A: {_one_line(clip(first, MAX_ANSWER_CHARS)) or '(empty)'}\n"
        f"Answer B: {_one_line(clip(second, MAX_ANSWER_CHARS)) or '(empty)'}\n"
        "Reasoning:"
    )


def parse_winner(text: str) -> tuple[Winner | None, str]:
    match = _WINNER.search(text)
    if match is None:
        return None, text.strip()
    return _winner(match.group(1)), text[: match.start()].strip()


def _winner(word: str) -> Winner:
    upper = word.upper()
    return "A" if upper == "A" else "B" if upper == "B" else "tie"


def _swap(winner: Winner | None) -> Winner | None:
    if winner == "A":
        return "B"
    if winner == "B":
        return "A"
    return winner


async def _pairwise_once(
    models: ModelAccess, target: ModelTarget | None, rubric: str, request: str, first: str, second: str
) -> tuple[Winner | None, str]:
    prompt = pairwise_prompt(rubric, request, first, second)
    raw = await models.complete(target, prompt, max_tokens=JUDGE_MAX_TOKENS, stop=STOP)
    winner, reasoning = parse_winner(raw)
    if winner is None:
        reasoning, follow_up = await _ask_verdict(models, target, prompt, raw, "Winner")
        leading = _LEADING_WINNER.match(follow_up)
        winner = _winner(leading.group(1)) if leading else None
    return winner, reasoning


async def pairwise_judge(
    models: ModelAccess,
    *,
    rubric: str | None,
    input_text: str,
    output_a: str,
    output_b: str,
    target: ModelTarget | None = None,
) -> PairwiseVerdict:
    """Which of two answers to ``input_text`` is better, asked twice with the answers swapped.

    Judges favour a position (often the first answer); asking in both orders cancels that: a winner is
    declared only when both orders name the same answer, anything else is a tie.
    """
    rubric_text = rubric or DEFAULT_PAIRWISE_RUBRIC
    first, first_reason = await _pairwise_once(models, target, rubric_text, input_text, output_a, output_b)
    swapped, swapped_reason = await _pairwise_once(
        models, target, rubric_text, input_text, output_b, output_a
    )
    second = _swap(swapped)  # in the swapped order the judge's "A" is the caller's B
    votes: list[Winner | None] = [first, second]
    winner: Winner = first if first is not None and first == second else "tie"
    if first is None or second is None:
        note = "the judge named no winner in one order, so it is a tie"
    elif first != second:
        note = f"the two orders disagree ({first} then {second}), so it is a tie"
    else:
        note = f"both orders agree: {winner}"
    reasoning = (
        f"{note}. Asked with A first: {clip(first_reason, 400)} | asked with B first (the judge's A is "
        f"B here): {clip(swapped_reason, 400)}"
    )
    return PairwiseVerdict(winner=winner, reasoning=reasoning, votes=votes)
