"""REST face of the promptfoo config import: ``POST /api/v1/evals/import/promptfoo``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.evals.api import run_out
from promptops.evals.promptfoo import service
from promptops.evals.promptfoo.schemas import (
    FindingOut,
    ImportedDatasetOut,
    ImportedModelOut,
    ImportedPromptOut,
    PromptfooImportIn,
    PromptfooImportOut,
)
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/evals/import", tags=["evaluations"])
Runner = Annotated[Principal, Depends(require(P.EVAL_RUN))]


def import_out(result: service.ImportResult, dry_run: bool) -> PromptfooImportOut:
    plan = result.plan
    return PromptfooImportOut(
        dry_run=dry_run,
        description=plan.description,
        prompts=[
            ImportedPromptOut(
                name=p.draft.name,
                label=p.draft.label,
                kind=p.draft.kind,
                source=p.draft.source,
                action=p.action,
                version=p.version,
                version_id=p.version_id if not dry_run or p.action == "unchanged" else None,
                variables=p.draft.variables,
            )
            for p in result.prompts
        ],
        dataset=ImportedDatasetOut(
            name=result.dataset.name,
            action=result.dataset.action,
            version=result.dataset.version,
            version_id=result.dataset.version_id
            if not dry_run or result.dataset.action == "unchanged"
            else None,
            case_count=result.dataset.case_count,
        ),
        models=[
            ImportedModelOut(source=source, **model)
            for model, source in zip(plan.models, plan.model_sources, strict=True)
        ],
        scorers=plan.scorers,
        skipped=[FindingOut(**f.to_dict()) for f in plan.skipped],
        warnings=[FindingOut(**f.to_dict()) for f in plan.warnings],
        evaluation=result.evaluation,
        eval_run=run_out(result.run) if result.run is not None and not dry_run else None,
    )


@router.post(
    "/promptfoo",
    status_code=201,
    response_model=PromptfooImportOut,
    summary="Import a promptfoo config: prompts, a dataset and (optionally) an evaluation, in one transaction",
)
@idempotent
async def import_promptfoo(
    request: Request, response: Response, principal: Runner, body: PromptfooImportIn
) -> PromptfooImportOut:
    """201 with what was created (and the queued evaluation); a dry run answers 200 and keeps nothing."""
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        result = await service.import_config(session, principal, body, runtime.caller)
        out = import_out(result, body.dry_run)
        if body.dry_run:  # everything was checked and written; nothing is kept
            await session.rollback()
            response.status_code = 200
    if result.run is not None and not body.dry_run:
        await runtime.jobs.submit("eval", result.run.id)
    return out
