"""Evaluation runs: create (validate everything, pin versions and the dataset version), read, cancel,
summarise, compare with significance, and the seed 004 synchronous ``/api/prompt/evaluate``.

The work itself happens in :mod:`promptops.evals.engine`, as a durable background job.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import check_cases
from promptops.db import utcnow
from promptops.errors import NotFound, ValidationProblem
from promptops.evals import stats
from promptops.evals.baselines import versus_majority
from promptops.evals.models import EvalResult, EvalRun, EvalRunPrompt
from promptops.evals.schemas import DatasetPin, EvalRunIn, EvalRunSpec, RunVersion, ScorerSpec
from promptops.evals.scoring import scorers_for, validate_specs
from promptops.governance import audit
from promptops.ids import has_prefix, new_id
from promptops.jobs import lifecycle
from promptops.jobs.lifecycle import JobPrincipal
from promptops.pagination import decode_cursor, encode_cursor, fetch_page
from promptops.providers.calls import ModelCaller, Target
from promptops.providers.schemas import ModelTarget
from promptops.providers.service import LOCAL_MODEL, LOCAL_NAME
from promptops.registry import service as registry
from promptops.templates import preanalyze
from promptops.tenancy.service import get_scoped, get_scoped_many, scoped

if TYPE_CHECKING:
    from promptops.registry.models import Prompt, PromptVersion

MAX_CELLS = 200_000
# what an evaluation request pins into the run's spec as given
RUN_OPTIONS = {"variables", "concurrency", "cache_ttl_seconds", "pass_threshold", "tags", "limit"}


# --- creating -------------------------------------------------------------------------------------------


def target_label(target: dict[str, Any] | ModelTarget) -> str:
    """``provider/model`` of a target (a stored one or a request's dict)."""
    if isinstance(target, ModelTarget):
        return f"{target.provider}/{target.model}"
    return f"{target['provider']}/{target['model']}"


def version_target(version: PromptVersion) -> dict[str, Any]:
    """The model a version asks for in its modelConfig, else the embedded local model."""
    config = version.model_config_ or {}
    if config.get("model"):
        return {
            "provider": config.get("provider") or LOCAL_NAME,
            "model": config["model"],
            "params": dict(config.get("params") or {}),
        }
    return {"provider": LOCAL_NAME, "model": LOCAL_MODEL, "params": {}}


async def resolve_prompt_ref(
    session: AsyncSession, principal: Principal, ref: str
) -> tuple[Prompt, PromptVersion]:
    """A registry reference (``name``, ``name@label``, ``name@3``) or a version id, to one version."""
    if has_prefix(ref, "version"):
        version = await registry.get_version_by_id(session, principal, ref)
        prompt = await registry.get_prompt(session, principal, version.prompt_id)
        return prompt, version
    prompt, version, _ = await registry.resolve(session, principal, ref)
    return prompt, version


async def check_targets(caller: ModelCaller, principal: Principal, targets: Sequence[dict[str, Any]]) -> None:
    """Every model must exist (connection, allowed model) before the job spends anything."""
    from promptops.providers.calls import CallInput

    for target in targets:
        connection = await caller.connection(principal, target["provider"])
        caller.request_for(
            connection, Target(target["provider"], target["model"], target["params"]), CallInput(prompt="")
        )


async def create_run(
    session: AsyncSession, principal: Principal, body: EvalRunIn, caller: ModelCaller
) -> EvalRun:
    """Pin prompt versions, models and a dataset version; validate scorers; queue the run.

    Nothing is called here: every problem a user can fix (unknown prompt, dataset, model or scorer) is a 4xx
    before a single case runs. The caller submits the job after the transaction commits.
    """
    dataset, dataset_version = await datasets.resolve_version(session, principal, body.dataset)
    cases = await datasets.list_cases(
        session, principal, dataset_version.id, tags=body.tags or None, limit=body.limit
    )
    if not cases:
        raise ValidationProblem(
            f"Dataset {dataset.name!r} version {dataset_version.version} has no cases"
            + (f" tagged {', '.join(body.tags)}" if body.tags else ""),
            code="empty_dataset",
        )
    # Cases carrying their own scorers (metadata.scorers, e.g. promptfoo tests) get no default label scorer;
    # an explicit "scorers": [] with nothing to score runs output-only (outputs stored, no scores).
    case_scored = any((c.metadata_ or {}).get("scorers") for c in cases)
    scorers = (
        [] if case_scored and not body.scorers else scorers_for(body.scorers, (c.expected for c in cases))
    )
    if not scorers and not case_scored and "scorers" not in body.model_fields_set:
        raise ValidationProblem(
            "No scorers given and the dataset has no expected outputs to compare with; add 'scorers' "
            '(or "scorers": [] to only store the outputs)',
            code="no_scorers",
        )
    validate_specs(scorers)
    for item in cases:
        case_scorers = (item.metadata_ or {}).get("scorers")
        if case_scorers:
            try:
                specs = [ScorerSpec.model_validate(s) for s in case_scorers]
            except ValueError as exc:  # pydantic's ValidationError
                raise ValidationProblem(
                    f"Case {item.key!r}: invalid scorers in metadata: {exc}", code="invalid_scorer"
                )
            validate_specs(specs)

    versions: list[RunVersion] = []
    all_targets: list[dict[str, Any]] = []
    for ref in body.prompts:
        prompt, version = await resolve_prompt_ref(session, principal, ref)
        await preanalyze(version.kind, version.template, version.messages)  # off the event loop
        check_cases(cases, version, body.variables)
        targets = [m.model_dump() for m in body.models] or [version_target(version)]
        all_targets.extend(targets)
        versions.append(
            RunVersion(
                ref=ref,
                prompt_id=prompt.id,
                prompt_name=prompt.name,
                version_id=version.id,
                version=version.version,
                label=f"{prompt.name}@{version.version}",
                targets=[ModelTarget.model_validate(t) for t in targets],
            )
        )
    if len({v.version_id for v in versions}) != len(versions):
        raise ValidationProblem("Two references select the same prompt version", code="duplicate_version")
    await check_targets(caller, principal, all_targets)

    cells = len(cases) * sum(len(v.targets) for v in versions)
    if cells > MAX_CELLS:
        raise ValidationProblem(
            f"{cells} cells (cases x versions x models) exceed the limit of {MAX_CELLS}",
            code="eval_too_large",
        )
    run = EvalRun(
        id=new_id("eval_run"),
        project_id=principal.project_id,
        name=body.name
        or f"{', '.join(v.label for v in versions)} on {dataset.name}@{dataset_version.version}",
        dataset_id=dataset.id,
        dataset_version_id=dataset_version.id,
        spec=EvalRunSpec(
            **body.model_dump(include=RUN_OPTIONS),
            versions=versions,
            scorers=scorers,
            case_ids=[c.id for c in cases],
            dataset=DatasetPin(name=dataset.name, version=dataset_version.version),
            principal=JobPrincipal.of(principal),
        ).dump(),
        status=lifecycle.QUEUED,
        total_cells=cells,
        created_by=principal.id,
        created_at=utcnow(),
    )
    session.add(run)
    await session.flush()
    session.add_all(
        EvalRunPrompt(eval_run_id=run.id, prompt_id=prompt_id, project_id=run.project_id)
        for prompt_id in dict.fromkeys(v.prompt_id for v in versions)
    )
    await audit.record(
        session,
        principal,
        "EvaluationQueued",
        prompt_id=versions[0].prompt_id,
        data={
            "evalRunId": run.id,
            "versions": [v.version_id for v in versions],
            "dataset": dataset.name,
            "datasetVersion": dataset_version.version,
            "cells": cells,
        },
    )
    return run


# --- reading --------------------------------------------------------------------------------------------


async def get_run(session: AsyncSession, principal: Principal, run_id: str) -> EvalRun:
    return await get_scoped(
        session, principal, EvalRun, run_id, missing=f"Evaluation {run_id} not found", code="eval_not_found"
    )


async def list_runs(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    prompt: str | None = None,
    dataset: str | None = None,
    finished: tuple[datetime, datetime] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[EvalRun], str | None]:
    """Evaluation runs, newest first; ``prompt`` (id or name) keeps runs that include one of its versions;
    ``finished`` keeps runs that finished in [since, until).

    The prompt filter joins ``eval_run_prompts`` and pages on its ``eval_run_id`` (the run id) so the database
    walks ``ix_eval_run_prompts_project_prompt`` backwards from the cursor.
    """
    stmt = scoped(select(EvalRun), EvalRun, principal)
    key: Any = EvalRun.id
    if prompt:
        prompt_row = await registry.get_prompt(session, principal, prompt)
        stmt = stmt.join(EvalRunPrompt, EvalRunPrompt.eval_run_id == EvalRun.id).where(
            EvalRunPrompt.project_id == principal.project_id, EvalRunPrompt.prompt_id == prompt_row.id
        )
        key = EvalRunPrompt.eval_run_id
    if dataset:
        found = await datasets.get_dataset(session, principal, dataset)
        stmt = stmt.where(EvalRun.dataset_id == found.id)
    if finished is not None:
        stmt = stmt.where(EvalRun.finished_at >= finished[0], EvalRun.finished_at < finished[1])
    return await lifecycle.list_page(
        session, stmt, EvalRun, status=status, cursor=cursor, limit=limit, key=key
    )


async def list_results(
    session: AsyncSession,
    principal: Principal,
    run_id: str,
    *,
    version_id: str | None = None,
    target_index: int | None = None,
    passed: bool | None = None,
    errors_only: bool = False,
    case_key: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[EvalResult], str | None]:
    await get_run(session, principal, run_id)
    stmt = scoped(select(EvalResult), EvalResult, principal).where(EvalResult.eval_run_id == run_id)
    if version_id:
        stmt = stmt.where(EvalResult.version_id == version_id)
    if target_index is not None:
        stmt = stmt.where(EvalResult.target_index == target_index)
    if passed is not None:
        stmt = stmt.where(EvalResult.passed == passed)
    if errors_only:
        stmt = stmt.where(EvalResult.error_class.is_not(None))
    if case_key:
        stmt = stmt.where(EvalResult.case_key == case_key)
    if cursor:
        stmt = stmt.where(EvalResult.id > decode_cursor(cursor))
    return await fetch_page(session, stmt.order_by(EvalResult.id), limit, lambda r: encode_cursor(r.id))


async def cancel_run(session: AsyncSession, principal: Principal, run_id: str) -> EvalRun:
    """Ask a queued or running evaluation to stop; completed cells are kept."""
    run = await get_run(session, principal, run_id)
    lifecycle.request_cancel(run, what="Evaluation", code="eval_finished")
    await audit.record(
        session,
        principal,
        "EvaluationCancelled",
        prompt_id=run.spec_model.versions[0].prompt_id,
        data={"evalRunId": run.id, "doneCells": run.done_cells, "totalCells": run.total_cells},
    )
    return run


# --- summaries ------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of the values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return round(ordered[int(rank) - 1], 3)


def summarise(run: EvalRun, results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    """Aggregates per (version, target): pass rate, mean score, per-scorer means, latency, tokens, cost."""
    groups: dict[tuple[str, int], list[EvalResult]] = defaultdict(list)
    for result in results:
        groups[(result.version_id, result.target_index)].append(result)
    spec = run.spec_model
    cases_total = len(spec.case_ids)
    out = []
    for entry in spec.versions:
        for index, target in enumerate(entry.targets):
            rows = groups.get((entry.version_id, index), [])
            ok = [r for r in rows if r.error_class is None]
            per_scorer: dict[str, list[float]] = defaultdict(list)
            for r in rows:
                for s in r.scores:
                    per_scorer[s.get("name") or s.get("type", "?")].append(float(s.get("score", 0.0)))
            latencies = [r.latency_ms for r in ok if not r.cached]
            passed = sum(1 for r in rows if r.passed)
            out.append(
                {
                    "promptId": entry.prompt_id,
                    "promptName": entry.prompt_name,
                    "versionId": entry.version_id,
                    "version": entry.version,
                    "label": entry.label,
                    "targetIndex": index,
                    "target": target_label(target),
                    "cases": cases_total,
                    "completed": len(rows),
                    "passed": passed,
                    "failed": len(rows) - passed,
                    "errors": len(rows) - len(ok),
                    "passRate": round(passed / len(rows), 4) if rows else None,
                    "meanScore": round(statistics.fmean(r.score for r in rows), 4) if rows else None,
                    "scorers": {k: round(statistics.fmean(v), 4) for k, v in per_scorer.items()},
                    "latencyP50Ms": percentile(latencies, 50),
                    "latencyP95Ms": percentile(latencies, 95),
                    "inputTokens": sum(r.input_tokens for r in rows),
                    "outputTokens": sum(r.output_tokens for r in rows),
                    "costUsd": round(sum(r.cost_usd for r in rows), 6),
                    "cached": sum(1 for r in rows if r.cached),
                    "baselines": _baselines(rows),
                }
            )
    return out


def _baselines(rows: Sequence[EvalResult]) -> dict[str, Any] | None:
    """The trivial baselines of a group scored by a label scorer (the expected label it read per case)."""
    expected: list[str | None] = []
    for r in rows:
        label = next((s for s in r.scores if s.get("type") == "label"), None)
        if label is None:
            return None
        expected.append((label.get("details") or {}).get("expected"))
    return versus_majority(expected, [r.passed for r in rows], [r.score for r in rows]) if rows else None


async def all_results(session: AsyncSession, run: EvalRun) -> list[EvalResult]:
    return list(
        (
            await session.execute(
                select(EvalResult)
                .where(EvalResult.project_id == run.project_id, EvalResult.eval_run_id == run.id)
                .order_by(EvalResult.id)
            )
        ).scalars()
    )


async def live_summary(session: AsyncSession, run: EvalRun) -> list[dict[str, Any]]:
    """The stored summary of a finished run; for one in progress, counts so far aggregated in the database.

    Progress is polled often while a run works, so it must not load every result: the in-progress summary
    has the counters, means, tokens and cost, and leaves latency percentiles and per-scorer means to the
    final summary.
    """
    if run.terminal and run.summary.get("groups") is not None:
        groups: list[dict[str, Any]] = run.summary["groups"]
        return groups
    rows = await session.execute(
        select(
            EvalResult.version_id,
            EvalResult.target_index,
            func.count(EvalResult.id),
            func.sum(case((EvalResult.passed.is_(True), 1), else_=0)),
            func.avg(EvalResult.score),
            func.count(EvalResult.error_class),
            func.sum(EvalResult.input_tokens),
            func.sum(EvalResult.output_tokens),
            func.sum(EvalResult.cost_usd),
            func.sum(case((EvalResult.cached.is_(True), 1), else_=0)),
        )
        .where(EvalResult.project_id == run.project_id, EvalResult.eval_run_id == run.id)
        .group_by(EvalResult.version_id, EvalResult.target_index)
    )
    counts = {(r[0], r[1]): r[2:] for r in rows.all()}
    out = []
    for group in summarise(run, []):
        found = counts.get((group["versionId"], group["targetIndex"]))
        if found:
            done, passed, mean, errors, tokens_in, tokens_out, cost, cached = found
            group.update(
                completed=done,
                passed=int(passed or 0),
                failed=done - int(passed or 0),
                errors=errors,
                passRate=round(int(passed or 0) / done, 4),
                meanScore=round(float(mean or 0.0), 4),
                inputTokens=int(tokens_in or 0),
                outputTokens=int(tokens_out or 0),
                costUsd=round(float(cost or 0.0), 6),
                cached=int(cached or 0),
            )
        out.append(group)
    return out


async def latest_for_version(session: AsyncSession, principal: Principal, version_id: str) -> dict[str, Any]:
    """The most recent completed evaluation that included ``version_id`` and that version's aggregates."""
    has_results = (
        select(EvalResult.eval_run_id)
        .where(EvalResult.project_id == principal.project_id, EvalResult.version_id == version_id)
        .distinct()
    )
    run = (
        await session.execute(
            scoped(select(EvalRun), EvalRun, principal)
            .where(EvalRun.id.in_(has_results), EvalRun.status == "completed")
            .order_by(EvalRun.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if run is None:
        raise NotFound(f"No completed evaluation includes version {version_id}", code="eval_not_found")
    groups = [g for g in run.summary.get("groups", []) if g["versionId"] == version_id]
    return {
        "evalRunId": run.id,
        "finishedAt": run.finished_at,
        "dataset": dataset.dump() if (dataset := run.spec_model.dataset) is not None else None,
        "groups": groups,
    }


# --- comparison -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    run: EvalRun
    version_id: str
    target_index: int
    label: str


def _side(run: EvalRun, version_ref: str | None, target_index: int, default_position: int) -> Side:
    versions = run.spec_model.versions
    if version_ref is None:
        if default_position >= len(versions):
            raise ValidationProblem(
                f"Evaluation {run.id} has {len(versions)} prompt version(s); name the versions to compare",
                code="compare_needs_two",
            )
        entry = versions[default_position]
    else:
        matches = [v for v in versions if version_ref in (v.version_id, v.ref, v.label)]
        if not matches:
            known = ", ".join(v.label for v in versions)
            raise ValidationProblem(
                f"Evaluation {run.id} has no version {version_ref!r}; it has: {known}", code="unknown_version"
            )
        entry = matches[0]
    if target_index >= len(entry.targets):
        raise ValidationProblem(
            f"{entry.label} ran on {len(entry.targets)} model(s); target index {target_index} is out of range",
            code="unknown_target",
        )
    label = entry.label
    if len(entry.targets) > 1 or target_index:
        label += f" on {target_label(entry.targets[target_index])}"
    return Side(run, entry.version_id, target_index, label)


async def _cells(session: AsyncSession, side: Side) -> dict[str, EvalResult]:
    rows = (
        await session.execute(
            select(EvalResult).where(
                EvalResult.project_id == side.run.project_id,
                EvalResult.eval_run_id == side.run.id,
                EvalResult.version_id == side.version_id,
                EvalResult.target_index == side.target_index,
            )
        )
    ).scalars()
    return {r.case_key: r for r in rows}


async def compare(
    session: AsyncSession,
    principal: Principal,
    *,
    run_a: str,
    run_b: str | None = None,
    version_a: str | None = None,
    version_b: str | None = None,
    target_a: int = 0,
    target_b: int = 0,
    alpha: float = 0.05,
    resamples: int = 10_000,
) -> dict[str, Any]:
    """Paired comparison of two (version, model) cells on the cases both ran: flips, McNemar, bootstrap CI.

    Within one run the default sides are its first and second prompt versions; across two runs, each run's
    first version. Cases are paired by their dataset key, so two runs on different versions of one dataset
    compare on the cases they share.
    """
    first = await get_run(session, principal, run_a)
    second = await get_run(session, principal, run_b) if run_b and run_b != run_a else first
    a = _side(first, version_a, target_a, 0)
    b = _side(second, version_b, target_b, 0 if second is not first else 1)
    if (a.run.id, a.version_id, a.target_index) == (b.run.id, b.version_id, b.target_index):
        raise ValidationProblem(
            "Both sides are the same cells; pick two different versions", code="same_side"
        )
    cells_a, cells_b = await _cells(session, a), await _cells(session, b)
    keys = sorted(set(cells_a) & set(cells_b))
    if not keys:
        raise ValidationProblem("The two sides have no completed cases in common", code="nothing_to_compare")
    a_pass = [cells_a[k].passed for k in keys]
    b_pass = [cells_b[k].passed for k in keys]
    a_scores = [cells_a[k].score for k in keys]
    b_scores = [cells_b[k].score for k in keys]
    result = stats.compare_paired(
        a.label, b.label, a_pass, b_pass, a_scores, b_scores, alpha=alpha, resamples=resamples
    )
    flips = []
    for key in keys:
        ra, rb = cells_a[key], cells_b[key]
        if ra.passed != rb.passed:
            flips.append(
                {
                    "caseKey": key,
                    "direction": "fixed" if rb.passed else "broken",
                    "aOutput": ra.output,
                    "bOutput": rb.output,
                    "aScore": ra.score,
                    "bScore": rb.score,
                }
            )
    return {
        "a": {
            "evalRunId": a.run.id,
            "versionId": a.version_id,
            "targetIndex": a.target_index,
            "label": a.label,
        },
        "b": {
            "evalRunId": b.run.id,
            "versionId": b.version_id,
            "targetIndex": b.target_index,
            "label": b.label,
        },
        "cases": result.n,
        "aPassRate": result.a_pass_rate,
        "bPassRate": result.b_pass_rate,
        "aMeanScore": result.a_mean,
        "bMeanScore": result.b_mean,
        "mcnemar": {
            "aOnly": result.mcnemar.a_only,
            "bOnly": result.mcnemar.b_only,
            "both": result.mcnemar.both,
            "neither": result.mcnemar.neither,
            "pValue": result.mcnemar.p_value,
            "method": result.mcnemar.method,
        },
        "scoreDiff": {
            "points": round(result.ci.mean_diff * 100, 2),
            "low": round(result.ci.low * 100, 2),
            "high": round(result.ci.high * 100, 2),
            "confidence": result.ci.confidence,
            "resamples": result.ci.resamples,
        },
        "significant": result.significant,
        "winner": result.winner,
        "verdict": result.verdict,
        "casesNeeded": result.cases_needed,
        "flipped": flips,
    }


async def results_by_id(
    session: AsyncSession, principal: Principal, result_ids: Iterable[str]
) -> dict[str, EvalResult]:
    """The principal's project's evaluation results (cells) with these ids; unknown ids are left out."""
    return await get_scoped_many(session, principal, EvalResult, result_ids)
