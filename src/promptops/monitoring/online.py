"""Online evaluation: a share of production runs scored after the fact with the project's scorers and judges.

Nothing happens in the request path. The periodic task ``monitoring.online-sample`` (every 30 s, in one process
of the installation) scans each enabled config's runs created since its watermark, keeps a deterministic
share of them (a hash of config and run id below the sample rate, so a re-scan picks the same runs) and stores
them as pending samples; the job kind ``online_eval`` (ref = the project id) then scores a project's pending
samples in batches with :func:`promptops.evals.scoring.score_case` and adds each score to the per-version
rollup in the transaction that stores it. A run is scored at most once (unique per project and run).

Configs: one project-wide default (no prompt) and any number of per-prompt configs, optionally for one label.
The most specific config that matches a run samples it: prompt + label (the run's version served that label
when the run was made), then the prompt, then the project default. The job acts as whoever last saved the
config, so judge calls are recorded (source ``eval``) and limited as theirs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.errors import NotFound, ValidationProblem
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import DEFAULT_JUDGE, CallerModelAccess, ScoreInput, score_case, validate_specs
from promptops.governance import audit
from promptops.ids import new_id
from promptops.jobs.base import register_job
from promptops.jobs.lifecycle import JobPrincipal
from promptops.jobs.periodic import register_periodic
from promptops.logging import log
from promptops.monitoring.drift import input_text
from promptops.monitoring.metrics import (
    PRODUCTION_SOURCES,
    add_online_scores,
    check_label,
    reader,
    scope,
    utc,
)
from promptops.monitoring.models import OnlineEval, OnlineEvalConfig
from promptops.pagination import fetch_page, id_cursor
from promptops.providers.calls import CallContext
from promptops.registry import service as registry
from promptops.runs import service as runs
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.runtime import Runtime

KIND = "online_eval"
SAMPLE_TASK = "monitoring.online-sample"
SAMPLE_EVERY_SECONDS = 30
SCAN_LAG = timedelta(seconds=2)  # runs younger than this may still be committing
SCAN_CHUNK = timedelta(hours=1)
SCAN_CHUNKS_PER_ROUND = 24
SCAN_PAGE = 500
SCORE_BATCH = 50
SCORE_CONCURRENCY = 4
MAX_CONFIGS = 200
STATUSES = ("pending", "done", "failed")


@dataclass(frozen=True)
class ConfigInput:
    """A config as given: ``prompt`` None = the project-wide default; ``label`` None = every version."""

    prompt: str | None
    label: str | None
    sample_rate: float
    scorers: list[ScorerSpec]
    pass_threshold: float = 1.0
    sources: tuple[str, ...] = PRODUCTION_SOURCES
    enabled: bool = True


def _check(body: ConfigInput) -> None:
    if not 0 <= body.sample_rate <= 1:
        raise ValidationProblem("sampleRate must be between 0 and 1", code="bad_sample_rate")
    if body.label is not None and body.prompt is None:
        raise ValidationProblem(
            "A label needs a prompt: 'label' applies to one prompt's versions", code="label_needs_prompt"
        )
    check_label(body.label)
    if not body.scorers:
        raise ValidationProblem("Give at least one scorer", code="scorers_required")
    unknown = sorted(set(body.sources) - set(PRODUCTION_SOURCES))
    if unknown or not body.sources:
        raise ValidationProblem(
            f"sources must be some of {', '.join(PRODUCTION_SOURCES)} (got {', '.join(unknown) or 'none'})",
            code="bad_sources",
        )
    # online runs have no expected output: a comparing scorer needs its own value
    validate_specs(list(body.scorers), has_expected=False)


def _audit_data(config: OnlineEvalConfig) -> dict[str, Any]:
    return {
        "configId": config.id,
        "promptId": config.prompt_id or None,
        "promptName": config.prompt_name or None,
        "label": config.label or None,
        "sampleRate": config.sample_rate,
        "scorers": sorted({str(s.get("type")) for s in config.scorers}),
        "passThreshold": config.pass_threshold,
        "sources": list(config.sources),
        "enabled": config.enabled,
    }


async def put_config(
    session: AsyncSession, principal: Principal, body: ConfigInput
) -> tuple[OnlineEvalConfig, bool]:
    """Create or replace the config of (prompt, label); (the config, whether it was created). Audited
    ``OnlineEvalConfigured``. Sampling starts with runs created from now on (a new config) or continues where
    the old one was (a changed one)."""
    _check(body)
    prompt_id, prompt_name = "", ""
    if body.prompt is not None:
        found = await registry.get_prompt(session, principal, body.prompt)
        prompt_id, prompt_name = found.id, found.name
    label = body.label or ""
    config = (
        await session.execute(
            scoped(select(OnlineEvalConfig), OnlineEvalConfig, principal).where(
                OnlineEvalConfig.prompt_id == prompt_id, OnlineEvalConfig.label == label
            )
        )
    ).scalar_one_or_none()
    now = utcnow()
    created = config is None
    if config is None:
        count = len(
            (await session.execute(scoped(select(OnlineEvalConfig.id), OnlineEvalConfig, principal))).all()
        )
        if count >= MAX_CONFIGS:
            raise ValidationProblem(
                f"A project has at most {MAX_CONFIGS} online-evaluation configs", code="too_many_configs"
            )
        config = OnlineEvalConfig(
            id=new_id("online_eval_config"),
            project_id=principal.project_id,
            prompt_id=prompt_id,
            label=label,
            scanned_until=now,
            created_by=principal.id,
            created_at=now,
        )
        session.add(config)
    elif body.enabled and not config.enabled:
        config.scanned_until = now  # re-enabled: what ran while it was off is not sampled after the fact
    config.prompt_name = prompt_name
    config.sample_rate = body.sample_rate
    config.scorers = [spec.model_dump(mode="json", by_alias=True, exclude_none=True) for spec in body.scorers]
    config.pass_threshold = body.pass_threshold
    config.sources = list(body.sources)
    config.enabled = body.enabled
    config.principal = JobPrincipal.of(principal).dump()
    config.updated_at = now
    await session.flush()
    await audit.record(
        session, principal, "OnlineEvalConfigured", prompt_id=prompt_id or None, data=_audit_data(config)
    )
    return config, created


async def list_configs(session: AsyncSession, principal: Principal) -> list[OnlineEvalConfig]:
    stmt = scoped(select(OnlineEvalConfig), OnlineEvalConfig, principal)
    return list(
        (await session.execute(stmt.order_by(OnlineEvalConfig.prompt_name, OnlineEvalConfig.label))).scalars()
    )


async def get_config(session: AsyncSession, principal: Principal, config_id: str) -> OnlineEvalConfig:
    return await get_scoped(
        session,
        principal,
        OnlineEvalConfig,
        config_id,
        missing=f"Online-evaluation config {config_id} not found",
        code="online_eval_config_not_found",
    )


async def delete_config(session: AsyncSession, principal: Principal, config_id: str) -> None:
    """Delete a config and its samples that are still pending (scored ones stay in the charts). Audited
    ``OnlineEvalConfigDeleted``."""
    config = await get_config(session, principal, config_id)
    data = _audit_data(config)
    await session.execute(
        delete(OnlineEval).where(
            OnlineEval.project_id == principal.project_id,
            OnlineEval.config_id == config.id,
            OnlineEval.status == "pending",
        )
    )
    await session.delete(config)
    await audit.record(
        session, principal, "OnlineEvalConfigDeleted", prompt_id=config.prompt_id or None, data=data
    )


async def list_samples(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[OnlineEval], str | None]:
    """Sampled runs newest first (cursor = the last id of the previous page)."""
    stmt = scoped(select(OnlineEval), OnlineEval, principal)
    if prompt_id:
        stmt = stmt.where(OnlineEval.prompt_id == prompt_id)
    if status:
        stmt = stmt.where(OnlineEval.status == status)
    if cursor:
        stmt = stmt.where(OnlineEval.id < id_cursor(cursor, "online_eval"))
    return await fetch_page(session, stmt.order_by(OnlineEval.id.desc()), limit, lambda row: row.id)


# --- sampling ---------------------------------------------------------------------------------------------------


def sampled(config_id: str, run_id: str, rate: float) -> bool:
    """Whether the config samples the run: a stable hash of both below ``rate`` (so re-scans agree)."""
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    digest = hashlib.blake2b(f"{config_id}:{run_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


@dataclass(frozen=True)
class _Matcher:
    """Which runs a config may sample, given the more specific configs that take precedence."""

    config: OnlineEvalConfig
    principal: Principal
    prompts_with_own: frozenset[str]  # project default: prompts that have their own config
    label_spans: dict[
        str, list[tuple[datetime, datetime | None]]
    ]  # this config's label: version -> intervals
    overriding_spans: dict[str, list[tuple[datetime, datetime | None]]]  # prompt config: its label configs'

    @staticmethod
    def _served(
        spans: dict[str, list[tuple[datetime, datetime | None]]], version_id: str | None, at: datetime
    ) -> bool:
        moment = utc(at)
        return any(
            start <= moment and (end is None or moment < end)
            for start, end in spans.get(version_id or "", [])
        )

    def takes(self, run: Any) -> bool:
        config = self.config
        if run.status != "ok" or not run.prompt_id or run.source not in config.sources:
            return False
        if not config.prompt_id:
            return run.prompt_id not in self.prompts_with_own
        if run.prompt_id != config.prompt_id:
            return False
        if config.label:
            return self._served(self.label_spans, run.version_id, run.created_at)
        return not self._served(self.overriding_spans, run.version_id, run.created_at)


async def _matcher(
    session: AsyncSession, config: OnlineEvalConfig, since: datetime, until: datetime
) -> _Matcher:
    principal = JobPrincipal.model_validate(config.principal).principal()
    others = [
        c
        for c in (
            await session.execute(
                select(OnlineEvalConfig).where(
                    OnlineEvalConfig.project_id == config.project_id,
                    OnlineEvalConfig.enabled.is_(True),
                    OnlineEvalConfig.id != config.id,
                )
            )
        ).scalars()
    ]
    own = frozenset(c.prompt_id for c in others if c.prompt_id)
    label_spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    overriding: dict[str, list[tuple[datetime, datetime | None]]] = {}

    async def spans(label: str, into: dict[str, list[tuple[datetime, datetime | None]]]) -> None:
        found = await scope(session, principal, config.prompt_id, label, since, until)
        for serving in found.versions:
            into.setdefault(serving.version_id, []).extend(serving.intervals)

    if config.prompt_id and config.label:
        await spans(config.label, label_spans)
    elif config.prompt_id:
        for other in others:
            if other.prompt_id == config.prompt_id and other.label:
                await spans(other.label, overriding)
    return _Matcher(config, principal, own, label_spans, overriding)


async def sample_config(runtime: Runtime, config_id: str, now: datetime | None = None) -> int:
    """Scan one config's new runs (up to 24 one-hour chunks per call) and store the sampled ones as pending;
    the number stored. Submits the project's scoring job when something was stored."""
    now = utc(now or utcnow())
    horizon = now - SCAN_LAG
    stored = 0
    project_id = ""
    for _ in range(SCAN_CHUNKS_PER_ROUND):
        async with runtime.db.transaction() as session:
            config = await session.get(OnlineEvalConfig, config_id)
            if config is None or not config.enabled:
                break
            project_id = config.project_id
            start = utc(config.scanned_until)
            if start >= horizon:
                break
            end = min(horizon, start + SCAN_CHUNK)
            try:
                matcher = await _matcher(session, config, start, end)
            except NotFound:  # the prompt was deleted: nothing of it to sample any more
                break
            chosen: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                page, cursor = await runs.list_runs(
                    session,
                    matcher.principal,
                    prompt_id=config.prompt_id or None,
                    since=start,
                    until=end,
                    cursor=cursor,
                    limit=SCAN_PAGE,
                )
                chosen.extend(
                    {
                        "id": new_id("online_eval"),
                        "project_id": config.project_id,
                        "config_id": config.id,
                        "run_id": run.id,
                        "prompt_id": run.prompt_id,
                        "version_id": run.version_id or "",
                        "run_created_at": utc(run.created_at),
                        "status": "pending",
                        "scores": [],
                        "attempts": 0,
                        "created_at": utcnow(),
                    }
                    for run in page
                    if matcher.takes(run) and sampled(config.id, run.id, config.sample_rate)
                )
                if cursor is None:
                    break
        async with runtime.db.transaction(write=True) as session:
            moved = await session.execute(
                update(OnlineEvalConfig)
                .where(OnlineEvalConfig.id == config_id, OnlineEvalConfig.scanned_until == start)
                .values(scanned_until=end)
            )
            if getattr(moved, "rowcount", 0) != 1:
                break  # changed meanwhile (another process, or an edit): the next round starts from it
            if chosen:
                insert = (
                    postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
                )
                await session.execute(insert(OnlineEval).on_conflict_do_nothing(), chosen)
        stored += len(chosen)
    if stored and project_id:
        await runtime.jobs.submit(KIND, project_id)
    return stored


async def sample_round(runtime: Runtime) -> None:
    """One round of the sampler over every enabled config of the installation."""
    async with runtime.db.transaction() as session:
        ids = list(
            (
                await session.execute(select(OnlineEvalConfig.id).where(OnlineEvalConfig.enabled.is_(True)))
            ).scalars()
        )
    for config_id in ids:
        try:
            await sample_config(runtime, config_id)
        except Exception:
            log.exception("online_eval_sampling_failed", config_id=config_id)


# --- scoring (the job) -----------------------------------------------------------------------------------------


async def _score_one(
    runtime: Runtime, item: OnlineEval, config: OnlineEvalConfig | None, run: Any
) -> dict[str, Any]:
    if config is None:
        return {"status": "failed", "error": "the online-evaluation config was deleted"}
    if run is None:
        return {"status": "failed", "error": f"run {item.run_id} no longer exists"}
    principal = JobPrincipal.model_validate(config.principal).principal()
    ctx = CallContext(principal=principal, source="eval", trace_id=item.id)
    models = CallerModelAccess(runtime.caller, ctx, DEFAULT_JUDGE)
    specs = [ScorerSpec.model_validate(spec) for spec in config.scorers]
    inp = ScoreInput(
        output=run.output,
        expected=None,
        variables={},
        prompt_text=input_text(run.input),
        latency_ms=float(run.latency_ms or 0.0),
        cost_usd=float(run.cost_usd or 0.0),
        input_tokens=int(run.input_tokens or 0),
        output_tokens=int(run.output_tokens or 0),
    )
    try:
        result = await score_case(specs, inp, models, pass_threshold=config.pass_threshold)
    except (
        Exception
    ) as exc:  # a scorer that raises past score_case's own guards: the sample fails, not the job
        log.warning("online_eval_scoring_failed", sample_id=item.id, error_type=type(exc).__name__)
        return {"status": "failed", "error": f"scoring failed: {type(exc).__name__}"}
    return {"status": "done", "score": result.score, "passed": result.passed, "scores": result.to_json()}


async def _store(runtime: Runtime, items: Sequence[OnlineEval], outcomes: Sequence[dict[str, Any]]) -> None:
    async with runtime.db.transaction(write=True) as session:
        rollup_rows = []
        for item, outcome in zip(items, outcomes, strict=True):
            moved = await session.execute(
                update(OnlineEval)
                .where(OnlineEval.id == item.id, OnlineEval.status == "pending")
                .values(
                    status=outcome["status"],
                    score=outcome.get("score"),
                    passed=outcome.get("passed"),
                    scores=outcome.get("scores", []),
                    error=outcome.get("error"),
                    attempts=item.attempts + 1,
                    scored_at=utcnow(),
                )
            )
            if getattr(moved, "rowcount", 0) == 1:  # another worker stored it first: count it once
                rollup_rows.append(
                    {
                        "project_id": item.project_id,
                        "prompt_id": item.prompt_id,
                        "version_id": item.version_id,
                        "run_created_at": item.run_created_at,
                        "passed": outcome.get("passed"),
                        "score": outcome.get("score"),
                        "failed": outcome["status"] == "failed",
                    }
                )
        await add_online_scores(session, rollup_rows)


async def score_pending(runtime: Runtime, project_id: str) -> None:
    """The ``online_eval`` job: score the project's pending samples, a batch at a time, until none is left."""
    limit = asyncio.Semaphore(SCORE_CONCURRENCY)
    while True:
        async with runtime.db.transaction() as session:
            items = list(
                (
                    await session.execute(
                        select(OnlineEval)
                        .where(OnlineEval.project_id == project_id, OnlineEval.status == "pending")
                        .order_by(OnlineEval.created_at, OnlineEval.id)
                        .limit(SCORE_BATCH)
                    )
                ).scalars()
            )
            if not items:
                return
            config_ids = {item.config_id for item in items}
            configs = {
                c.id: c
                for c in (
                    await session.execute(select(OnlineEvalConfig).where(OnlineEvalConfig.id.in_(config_ids)))
                ).scalars()
            }
            found = await runs.runs_by_id(session, reader(project_id), [item.run_id for item in items])
            session.expunge_all()

        async def one(item: OnlineEval, config: OnlineEvalConfig | None, run: Any) -> dict[str, Any]:
            async with limit:
                return await _score_one(runtime, item, config, run)

        outcomes = await asyncio.gather(
            *(one(item, configs.get(item.config_id), found.get(item.run_id)) for item in items)
        )
        await _store(runtime, items, outcomes)
        log.info("online_eval_batch_scored", project_id=project_id, samples=len(items))


async def pending_projects(runtime: Runtime) -> list[str]:
    """Projects with pending samples (their jobs are resubmitted when a process starts)."""
    async with runtime.db.transaction() as session:
        stmt = select(OnlineEval.project_id).where(OnlineEval.status == "pending").distinct()
        return sorted(str(p) for p in (await session.execute(stmt)).scalars())


register_job(KIND, score_pending, pending_projects)
register_periodic(SAMPLE_TASK, every_seconds=SAMPLE_EVERY_SECONDS, run=sample_round)
