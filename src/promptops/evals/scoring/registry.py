"""One registry of scorer types (built-ins, then operators' entry points), spec validation and case scoring."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import orjson

from promptops.errors import ProblemError, ValidationProblem
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring.builtin import BUILTINS, Builtin, label_set, normalise_label
from promptops.evals.scoring.judges import LlmRubric, Similar
from promptops.evals.scoring.types import (
    MAX_REASON_CHARS,
    CaseScore,
    ModelAccess,
    NoReference,
    Outcome,
    ScoreInput,
    Scorer,
    ScorerResult,
    clamp01,
    clip,
    json_safe,
)
from promptops.logging import log

ENTRY_POINT_GROUP = "promptops.scorers"
MAX_VALUE_BYTES = 65_536
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]*$")
NEGATED_PREFIX = "not-"
PASS_EPSILON = 1e-9
# promptfoo assertion types that run code: never accepted, whoever sends them.
CODE_TYPES = frozenset(
    {"javascript", "python", "webhook", "ruby", "not-javascript", "not-python", "not-webhook"}
)
# Types that need an embedding model.
_EMBEDDING_TYPES = frozenset({"similar"})


@dataclass(frozen=True)
class Entry:
    scorer: Scorer
    builtin: bool
    aliases: tuple[str, ...] = ()
    description: str = ""


_lock = threading.Lock()
_registry: dict[str, Entry] | None = None


def _builtin_entries() -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    classes: tuple[type[Builtin], ...] = (*BUILTINS, LlmRubric, Similar)
    for cls in classes:
        scorer = cls()
        entry = Entry(scorer, True, cls.aliases, cls.description)
        entries[cls.type] = entry
        for alias in cls.aliases:
            entries[alias] = entry
    return entries


def _is_scorer(candidate: Any) -> bool:
    return (
        isinstance(getattr(candidate, "type", None), str)
        and isinstance(getattr(candidate, "default_threshold", None), int | float)
        and callable(getattr(candidate, "validate", None))
        and inspect.iscoroutinefunction(getattr(candidate, "score", None))
    )


def _load_entry_points(entries: dict[str, Entry]) -> None:
    """Add operators' scorers; one that fails to load or does not fit is logged and skipped."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            scorer: Any = loaded() if inspect.isclass(loaded) else loaded
        except Exception as exc:
            log.warning("scorer_entry_point_failed", entry_point=ep.name, value=ep.value, error=repr(exc))
            continue
        if not _is_scorer(scorer):
            log.warning(
                "scorer_entry_point_invalid",
                entry_point=ep.name,
                reason="needs type (str), default_threshold (number), validate() and async score()",
            )
            continue
        name = scorer.type
        threshold = float(scorer.default_threshold)
        if not TYPE_PATTERN.match(name) or len(name) > 64 or not 0 <= threshold <= 1:
            log.warning(
                "scorer_entry_point_invalid", entry_point=ep.name, reason=f"bad type {name!r} or threshold"
            )
            continue
        if name in entries or name.startswith(NEGATED_PREFIX):
            log.warning("scorer_entry_point_conflict", entry_point=ep.name, type=name)
            continue
        description = str(getattr(scorer, "description", "") or (scorer.__doc__ or "").strip())
        entries[name] = Entry(scorer, False, (), clip(description, 500))
        log.info("scorer_entry_point_loaded", entry_point=ep.name, type=name)


def registry() -> dict[str, Entry]:
    """Every scorer type by name (aliases included); entry points are loaded once, on first use."""
    global _registry
    with _lock:
        if _registry is None:
            entries = _builtin_entries()
            _load_entry_points(entries)
            _registry = entries
        return _registry


def reset_registry() -> None:
    """Forget the loaded registry, so the next use reloads entry points (tests, plugin installs)."""
    global _registry
    with _lock:
        _registry = None


def known_types() -> list[str]:
    """Every accepted type name (aliases included), sorted. ``not-<type>`` is accepted for each too."""
    return sorted(registry())


def describe_types() -> list[dict[str, Any]]:
    """One row per scorer type (aliases folded in): type, aliases, default threshold, built-in, description,
    and what a spec of it takes: ``value_kind`` (required | reference | optional | none) and ``options`` (the
    option names a built-in accepts; an operator's scorer says ``optional`` and none: its validate() decides)."""
    unique = {entry.scorer.type: entry for entry in registry().values()}
    rows = []
    for name, entry in sorted(unique.items()):
        scorer = entry.scorer
        value_kind, options = "optional", []
        if isinstance(scorer, Builtin):
            value_kind, options = scorer.value_kind, sorted(scorer.options_allowed)
        rows.append(
            {
                "type": name,
                "aliases": list(entry.aliases),
                "default_threshold": float(scorer.default_threshold),
                "builtin": entry.builtin,
                "description": entry.description,
                "value_kind": value_kind,
                "options": options,
            }
        )
    return rows


def resolve(type_name: str) -> tuple[Entry, bool]:
    """(the entry for ``type_name``, whether its ``not-`` prefix flips ``negate``); KeyError if unknown."""
    entries = registry()
    if type_name in entries:
        return entries[type_name], False
    if type_name.startswith(NEGATED_PREFIX) and type_name[len(NEGATED_PREFIX) :] in entries:
        return entries[type_name[len(NEGATED_PREFIX) :]], True
    raise KeyError(type_name)


# --- validation ---------------------------------------------------------------------------------------------------


def _problem(spec: ScorerSpec, exc: BaseException) -> str:
    if isinstance(exc, ProblemError):
        return exc.detail
    return str(exc) or type(exc).__name__


def validate_specs(
    specs: list[ScorerSpec], *, has_expected: bool | None = None, embedding_available: bool | None = None
) -> None:
    """Check every spec before an evaluation starts; raise ``invalid_scorer`` listing every problem.

    ``has_expected=False`` (no case has an expected output) rejects comparing scorers without a value;
    ``embedding_available=False`` (no default embedding model) rejects ``similar`` without options.model.
    """
    problems: list[dict[str, Any]] = []
    names: set[str] = set()

    def fail(index: int, spec: ScorerSpec, message: str) -> None:
        problems.append({"index": index, "type": spec.type, "message": message})

    for index, spec in enumerate(specs):
        if spec.type in CODE_TYPES:
            fail(
                index,
                spec,
                "code scorers are not supported: no code is accepted over the API; operators add custom "
                f"scorers through the Python entry point group {ENTRY_POINT_GROUP!r}",
            )
            continue
        try:
            entry, _ = resolve(spec.type)
        except KeyError:
            fail(index, spec, f"unknown scorer type; known types: {', '.join(known_types())}")
            continue
        if spec.name is not None:
            if spec.name in names:
                fail(index, spec, f"the name {spec.name!r} is used by another scorer")
            names.add(spec.name)
        try:
            size = len(orjson.dumps(spec.value))
        except (TypeError, orjson.JSONEncodeError):
            fail(index, spec, "value is not JSON")
            continue
        if size > MAX_VALUE_BYTES:
            fail(index, spec, f"value is larger than {MAX_VALUE_BYTES} bytes")
            continue
        try:
            entry.scorer.validate(spec)
        except Exception as exc:
            fail(index, spec, _problem(spec, exc))
            continue
        if entry.builtin:
            value_kind = getattr(entry.scorer, "value_kind", "")
            if has_expected is False and value_kind == "reference" and spec.value is None:
                fail(index, spec, "value is required: the dataset's cases have no expected output")
            if (
                embedding_available is False
                and entry.scorer.type in _EMBEDDING_TYPES
                and "model" not in spec.options
            ):
                fail(index, spec, "no embedding model configured: set options.model {provider, model}")
    if problems:
        detail = "; ".join(f"scorers[{p['index']}] ({p['type']}): {p['message']}" for p in problems)
        raise ValidationProblem(clip(detail, 4000), code="invalid_scorer", errors=problems)


# --- scoring ------------------------------------------------------------------------------------------------------


def default_specs(expected: Iterable[Any]) -> list[ScorerSpec]:
    """Scorers for an evaluation that names none, from the cases' expected outputs: a label match when some
    case has one, reading answers against the label set the expected outputs form (see
    :func:`~promptops.evals.scoring.builtin.label_set`); none when no case has an expected output (the caller
    asks for scorers rather than silently running an LLM judge)."""
    values = [v for v in expected if v is not None]
    if not values:
        return []
    labels = label_set(values)
    return [ScorerSpec(type="label", options={"labels": labels} if labels else {})]


def scorers_for(explicit: Sequence[ScorerSpec], expected: Iterable[Any]) -> list[ScorerSpec]:
    """The scorers of an evaluation: ``explicit`` ones, else :func:`default_specs`. A ``label`` scorer without
    ``options.labels`` (and not ``exact``) gets the label set the expected outputs form, so its answers are
    read against every label (two labels named is a miss) rather than against the one expected."""
    values = [v for v in expected if v is not None]
    if not explicit:
        return default_specs(values)
    labels = label_set(values)
    out = []
    for spec in explicit:
        if spec.type == "label" and labels and "labels" not in spec.options and not spec.options.get("exact"):
            aliases = spec.options.get("aliases")
            known = {normalise_label(label) for label in labels}
            if not isinstance(aliases, dict) or all(
                isinstance(v, str) and normalise_label(v) in known for v in aliases.values()
            ):
                spec = spec.model_copy(update={"options": {**spec.options, "labels": labels}})
        out.append(spec)
    return out


def label_task(specs: Sequence[ScorerSpec]) -> list[str] | None:
    """The label set when ``specs`` score a classification (a ``label`` scorer): its ``options.labels``, or
    ``[]`` when it has none; ``None`` when no scorer reads labels."""
    for spec in specs:
        if spec.type == "label" and not spec.options.get("exact"):
            labels = spec.options.get("labels")
            return [str(label) for label in labels] if isinstance(labels, list) else []
    return None


def _names(specs: list[ScorerSpec]) -> list[str]:
    """Each spec's result name: its own, else its type; repeated names get ``#2``, ``#3`` ..."""
    taken = {spec.name for spec in specs if spec.name}
    counts: dict[str, int] = {}
    names = []
    for spec in specs:
        if spec.name:
            names.append(spec.name)
            continue
        base = spec.type
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}#{counts[base]}"
        while name in taken:
            counts[base] += 1
            name = f"{base}#{counts[base]}"
        taken.add(name)
        names.append(name)
    return names


def _failure(name: str, spec: ScorerSpec, reason: str, details: dict[str, Any] | None = None) -> ScorerResult:
    return ScorerResult(
        name, spec.type, 0.0, False, spec.weight, clip(reason, MAX_REASON_CHARS), details or {}
    )


async def _run_one(name: str, spec: ScorerSpec, inp: ScoreInput, models: ModelAccess) -> ScorerResult:
    try:
        entry, flip = resolve(spec.type)
    except KeyError:
        return _failure(name, spec, f"unknown scorer type {spec.type!r}")
    scorer = entry.scorer
    try:
        raw = await scorer.score(spec, inp, models)
        outcome = raw if isinstance(raw, Outcome) else Outcome(*raw)
        score = clamp01(outcome.score)
    except NoReference as exc:
        return _failure(name, spec, str(exc))
    except ProblemError as exc:
        # a judge or embedding call that failed: the scorer could not decide, which is never a pass
        return _failure(name, spec, f"scorer failed: {exc.detail}", {"error": exc.code})
    except Exception as exc:
        log.warning("scorer_failed", type=spec.type, error=repr(exc))
        return _failure(name, spec, f"scorer failed: {type(exc).__name__}: {exc}", {"error": "scorer_error"})
    threshold = spec.threshold if spec.threshold is not None else float(scorer.default_threshold)
    passed = outcome.passed if outcome.passed is not None else score >= threshold - PASS_EPSILON
    reason = str(outcome.reason)
    if spec.negate != flip:
        score, passed = 1.0 - score, not passed
        reason = f"negated: {reason}"
    details = json_safe(outcome.details)
    details.setdefault("threshold", threshold)
    return ScorerResult(
        name, spec.type, score, bool(passed), spec.weight, clip(reason, MAX_REASON_CHARS), details
    )


def combine(results: list[ScorerResult], pass_threshold: float = 1.0) -> CaseScore:
    """Weighted mean of the weighted scorers; passed = all of them passed and the mean reaches the threshold.

    Weight-0 scorers are informative only. With no weighted scorer the case scores 1 and passes.
    """
    counted = [r for r in results if r.weight > 0]
    score = _weighted_mean([(r.score, r.weight) for r in counted]) if counted else 1.0
    passed = all(r.passed for r in counted) and score >= pass_threshold - PASS_EPSILON
    return CaseScore(score, passed, results)


def _weighted_mean(pairs: Sequence[tuple[float, float]]) -> float:
    """The mean of ``(value, weight)`` pairs (weights > 0, at least one pair), for any float weights.

    Weights are divided by the largest before summing, so subnormal weights (5e-324) do not underflow the
    products to 0 and huge ones (1e308) do not overflow the total to inf; infinite weights share the whole
    weight equally. The result never leaves the range of the values (rounding cannot push it out).
    """
    top = max(weight for _, weight in pairs)
    if math.isinf(top):
        pairs = [(value, 1.0 if math.isinf(weight) else 0.0) for value, weight in pairs]
        top = 1.0
    scaled = [(value, weight / top) for value, weight in pairs]
    mean = math.fsum(value * weight for value, weight in scaled) / math.fsum(weight for _, weight in scaled)
    values = [value for value, _ in pairs]
    return min(max(values), max(min(values), mean))


async def score_case(
    specs: list[ScorerSpec], inp: ScoreInput, models: ModelAccess, *, pass_threshold: float = 1.0
) -> CaseScore:
    """Run every scorer on one answer (concurrently) and combine them.

    A failed call (``output`` None) scores 0 on every scorer and fails, whatever ``negate`` says.
    """
    names = _names(specs)
    if inp.output is None:
        reason = f"model call failed: {inp.error or 'unknown error'}"
        results = [_failure(name, spec, reason) for name, spec in zip(names, specs, strict=True)]
        return CaseScore(0.0, False, results)
    results = list(
        await asyncio.gather(
            *(_run_one(name, spec, inp, models) for name, spec in zip(names, specs, strict=True))
        )
    )
    return combine(results, pass_threshold)
