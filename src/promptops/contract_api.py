"""The seed 004 PromptOpt contract in one place: ``/api/prompt/{generate,evaluate,refine,feedback,rollback,audit}``.

Each route is a thin face over a feature's service (optimize.contract, evals.contract, feedback, registry,
governance): it maps the domain objects those return to the seed 004 wire schemas (same JSON field names).
``/api/prompt/audit`` is the same handler as ``GET /api/v1/audit``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.evals import contract as evals_contract
from promptops.evals.schemas import PromptEvalRequest, PromptEvalResult
from promptops.feedback import service as feedback
from promptops.feedback.api import feedback_out
from promptops.feedback.schemas import FeedbackOut, FeedbackPayload
from promptops.governance.api import list_audit
from promptops.governance.rbac import Permission as P
from promptops.governance.schemas import AuditPage, RollbackRequest, RollbackResult
from promptops.idempotency import idempotent
from promptops.optimize.contract import generate as generating
from promptops.optimize.contract import refine as refining
from promptops.optimize.contract.schemas import (
    DiscardedCandidate,
    PromptCandidate,
    PromptCandidateList,
    PromptGenerationRequest,
    PromptRefineRequest,
    PromptRefineResult,
    RefineCandidateOut,
)
from promptops.registry import service as registry
from promptops.registry.approvals import api as approvals_api
from promptops.registry.approvals.gate import PendingApproval
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/prompt", tags=["promptopt contract"])
Optimizer = Annotated[Principal, Depends(require(P.PROMPT_OPTIMIZE))]
Runner = Annotated[Principal, Depends(require(P.EVAL_RUN))]
FeedbackWriter = Annotated[Principal, Depends(require(P.FEEDBACK_WRITE))]
Deployer = Annotated[Principal, Depends(require(P.LABEL_DEPLOY))]


def candidate_out(c: generating.GeneratedCandidate) -> PromptCandidate:
    return PromptCandidate(
        prompt=c.prompt,
        score=c.score,
        model_version=c.model_version,
        prompt_id=c.prompt_id,
        version_id=c.version_id,
        version=c.version,
        strategy=c.strategy,
        quality_score=c.quality_score,
        lint_findings=c.lint_findings,
        eval_score=c.eval_score,
        pass_rate=c.pass_rate,
        eval_model=c.eval_model,
        model_config_=c.model_config,
    )


def candidate_list_out(generated: generating.Generated) -> PromptCandidateList:
    return PromptCandidateList(
        candidates=[candidate_out(c) for c in generated.candidates],
        prompt_id=generated.prompt_id,
        name=generated.name,
        template_id=generated.template_id,
        base_version_id=generated.base_version_id,
        dataset_version_id=generated.dataset_version_id,
        cases=generated.cases,
        scoring=generated.scoring,
        discarded=[DiscardedCandidate(strategy=d.strategy, reason=d.reason) for d in generated.discarded],
    )


def refine_out(refined: refining.Refined) -> PromptRefineResult:
    return PromptRefineResult(
        prompt_id=refined.prompt_id,
        version_id=refined.version_id,
        parent_id=refined.parent_id,
        version=refined.version,
        prompt=refined.prompt,
        rationale=refined.rationale,
        diff=refined.diff,
        strategy=refined.strategy,
        scores=refined.scores,
        model_config_=refined.model_config,
        deltas=refined.deltas,
        candidates=[
            RefineCandidateOut(
                strategy=c.strategy, applied=c.applied, note=c.note, score=c.score, pass_rate=c.pass_rate
            )
            for c in refined.candidates
        ],
        feedback_used=refined.feedback_used,
    )


@router.post(
    "/generate",
    status_code=201,
    response_model=PromptCandidateList,
    summary="Generate prompt candidates, scored and saved as draft versions (seed 004 PromptGenerationRequest)",
)
@idempotent
async def generate(
    body: PromptGenerationRequest, request: Request, principal: Optimizer
) -> PromptCandidateList:
    return candidate_list_out(await generating.generate(runtime_of(request), principal, body))


@router.post(
    "/refine",
    status_code=201,
    response_model=PromptRefineResult,
    summary="Refine a prompt version from feedback; saves the result as a new version with lineage",
)
@idempotent
async def refine(body: PromptRefineRequest, request: Request, principal: Optimizer) -> PromptRefineResult:
    return refine_out(await refining.refine(runtime_of(request), principal, body))


@router.post(
    "/evaluate", response_model=PromptEvalResult, summary="Evaluate a prompt on test cases (seed 004)"
)
async def evaluate(request: Request, principal: Runner, body: PromptEvalRequest) -> PromptEvalResult:
    evaluation = await evals_contract.evaluate(runtime_of(request), principal, body)
    return PromptEvalResult(
        prompt_id=evaluation.prompt_id,
        score=evaluation.score,
        feedback=evaluation.feedback,
        version_id=evaluation.version_id,
        pass_rate=evaluation.pass_rate,
        baselines=evaluation.baselines,
        cases=[
            {
                "index": c.index,
                "output": c.output,
                "expected": c.expected,
                "score": c.score,
                "passed": c.passed,
                "scores": c.scores,
                "error": c.error,
                "runId": c.run_id,
            }
            for c in evaluation.cases
        ],
    )


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    summary="Record feedback on a prompt (seed 004 FeedbackPayload)",
)
@idempotent
async def contract_feedback(
    body: FeedbackPayload, request: Request, principal: FeedbackWriter
) -> FeedbackOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return feedback_out(await feedback.submit_contract(session, principal, body))


@router.post(
    "/rollback",
    response_model=RollbackResult,
    responses=approvals_api.GATED,  # type: ignore[arg-type]
    summary="Restore a previous prompt version (202 with an approval request when the label's rules ask one)",
)
async def contract_rollback(
    body: RollbackRequest, request: Request, principal: Deployer
) -> RollbackResult | Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        move = await registry.rollback(
            session,
            principal,
            body.prompt_id,
            body.label,
            to_version=body.to_version,
            to_version_id=body.to_version_id,
            reason=body.reason,
            approver=body.approver,
        )
        if isinstance(move, PendingApproval):
            return await approvals_api.pending_response(session, move)
    return RollbackResult(
        prompt_id=move.prompt.id,
        name=move.prompt.name,
        label=move.label,
        previous_id=move.previous.id if move.previous else None,
        previous_version=move.previous.version if move.previous else None,
        current_id=move.version.id,
        current_version=move.version.version,
    )


router.add_api_route(
    "/audit",
    list_audit,
    methods=["GET"],
    response_model=AuditPage,
    summary="Fetch audit logs (seed 004 AuditEventRecord)",
)
