"""REST face of approval requests: ``/api/v1/approvals`` list, show (the review), approve, reject, cancel,
override. A request is made by moving a gated label through any label route (``PUT .../labels/{label}``,
rollback, saving with ``labels``, shipping an experiment ...): those answer 202 with the request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.errors import ProblemError
from promptops.evals import service as evals
from promptops.governance.rbac import Permission as P
from promptops.pagination import PageLimit
from promptops.registry import service as registry
from promptops.registry.approvals import service
from promptops.registry.approvals.gate import PendingApproval
from promptops.registry.approvals.models import ApprovalRequest
from promptops.registry.approvals.schemas import (
    ApprovalCancelIn,
    ApprovalDecisionIn,
    ApprovalDecisionOut,
    ApprovalEvalOut,
    ApprovalEvalSideOut,
    ApprovalLintOut,
    ApprovalOverrideIn,
    ApprovalPage,
    ApprovalRequestOut,
    ApprovalReviewOut,
)
from promptops.registry.schemas import ApprovalRequestRef, DiffOut, LabelMoveOut, LintFindingOut
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])

Reader = Annotated[Principal, Depends(require(P.APPROVAL_READ))]
Reviewer = Annotated[Principal, Depends(require(P.APPROVAL_REVIEW))]
Overrider = Annotated[Principal, Depends(require(P.APPROVAL_OVERRIDE))]
Requester = Annotated[Principal, Depends(require(P.LABEL_WRITE))]
RequestId = Annotated[str, Path(min_length=1, max_length=40, description="An approval request id (apr_...)")]


def move_out(move: registry.LabelMove) -> LabelMoveOut:
    return LabelMoveOut(
        prompt_id=move.prompt.id,
        name=move.prompt.name,
        label=move.label,
        version=move.version.version,
        version_id=move.version.id,
        previous_version=move.previous.version if move.previous else None,
        previous_version_id=move.previous.id if move.previous else None,
        deployed=move.deployed,
    )


def request_out(view: service.ApprovalView) -> ApprovalRequestOut:
    r = view.request
    return ApprovalRequestOut(
        id=r.id,
        prompt_id=r.prompt_id,
        prompt_name=r.prompt_name,
        label=r.label,
        action=r.action,
        version=r.version,
        version_id=r.version_id,
        base_version=r.base_version,
        base_version_id=r.base_version_id,
        reason=r.reason,
        status=r.status,
        required=r.required,
        approvals=view.approvals,
        roles=list(r.roles),
        requested_by=r.requested_by,
        requested_by_name=r.requested_by_name,
        author_id=r.author_id,
        superseded_by=r.superseded_by,
        resolved_by=r.resolved_by,
        resolved_by_name=r.resolved_by_name,
        resolution_note=r.resolution_note,
        created_at=r.created_at,
        resolved_at=r.resolved_at,
        decisions=[ApprovalDecisionOut.model_validate(d) for d in view.decisions],
        move=move_out(view.move) if view.move is not None else None,
    )


def request_ref(request: ApprovalRequest) -> ApprovalRequestRef:
    return ApprovalRequestRef(
        id=request.id,
        label=request.label,
        version=request.version,
        required=request.required,
        status=request.status,
    )


async def pending_out(session: AsyncSession, request: ApprovalRequest) -> ApprovalRequestOut:
    """A request just opened by a label route (the 202 body)."""
    return request_out(service.ApprovalView(request, await service.decisions_of(session, request.id)))


# The answer of a label route whose move became an approval request.
GATED = {
    202: {
        "model": ApprovalRequestOut,
        "description": "The label is gated by approvals: the move became an approval request (nothing moved)",
    }
}


async def pending_response(session: AsyncSession, pending: PendingApproval) -> Response:
    """202 with the approval request a label move became."""
    body = await pending_out(session, pending.request)
    return Response(body.model_dump_json(by_alias=True), status_code=202, media_type="application/json")


@router.get("", response_model=ApprovalPage, summary="List approval requests, newest first")
async def list_approvals(
    request: Request,
    principal: Reader,
    status: Annotated[
        str | None,
        Query(max_length=12, description="open, applied, rejected, superseded, cancelled or overridden"),
    ] = None,
    prompt: Annotated[str | None, Query(max_length=200, description="Prompt name or id")] = None,
    label: Annotated[str | None, Query(max_length=63)] = None,
    requested_by: Annotated[
        str | None, Query(alias="requestedBy", max_length=40, description="User or API key id")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: PageLimit = 50,
) -> ApprovalPage:
    async with runtime_of(request).db.transaction() as session:
        prompt_id = await registry.prompt_id_of(session, principal, prompt) if prompt else None
        filters = service.ApprovalFilter(
            status=status, prompt_id=prompt_id, label=label, requested_by=requested_by
        )
        views, next_cursor = await service.list_requests(
            session, principal, filters, cursor=cursor, limit=limit
        )
    return ApprovalPage(items=[request_out(v) for v in views], next_cursor=next_cursor)


def _why_not(view: service.ApprovalView, principal: Principal) -> str | None:
    r = view.request
    if not principal.can(P.APPROVAL_REVIEW):
        return f"Your role {principal.role.value} cannot review"
    if r.status != "open":
        return f"The request is {r.status}"
    if principal.id == r.requested_by:
        return "You requested this move (four-eyes rule)"
    if r.author_id is not None and principal.id == r.author_id:
        return "You wrote this version (four-eyes rule)"
    if principal.role.value not in r.roles:
        return f"Approvals count from {', '.join(r.roles)}"
    if any(d.reviewer_id == principal.id for d in view.decisions):
        return "You already decided"
    return None


def _diff_out(result: dict[str, Any], a_name: str, b_name: str, a_id: str, b_id: str) -> DiffOut:
    return DiffOut.model_validate(
        {
            "from": a_name,
            "to": b_name,
            "fromVersionId": a_id,
            "toVersionId": b_id,
            "identical": result["identical"],
            "kindChanged": result["kindChanged"],
            "template": result["template"],
            "variables": result["variables"],
            "modelConfig": result["modelConfig"],
            "responseSchema": result["responseSchema"],
            "metadata": result["metadata"],
        }
    )


async def _latest_eval(
    session: AsyncSession, principal: Principal, version_id: str
) -> ApprovalEvalSideOut | None:
    try:
        found = await evals.latest_for_version(session, principal, version_id)
    except ProblemError:
        return None
    return ApprovalEvalSideOut(
        version_id=version_id,
        eval_run_id=found["evalRunId"],
        finished_at=found["finishedAt"],
        groups=found["groups"],
    )


async def _evaluation(
    session: AsyncSession, principal: Principal, candidate_id: str, current_id: str | None
) -> ApprovalEvalOut:
    """The latest evaluation of both versions and, where their cases pair up, the paired comparison (the
    candidate's run if it also ran the current version, else the two latest runs on their shared cases)."""
    candidate = await _latest_eval(session, principal, candidate_id)
    current = await _latest_eval(session, principal, current_id) if current_id else None
    if candidate is None:
        return ApprovalEvalOut(
            candidate=None,
            current=current,
            comparison=None,
            note="No completed evaluation includes the requested version",
        )
    if current_id is None:
        return ApprovalEvalOut(
            candidate=candidate, current=None, comparison=None, note="The label has no current version"
        )
    tries: list[tuple[str, str | None]] = [(candidate.eval_run_id, None)]
    if current is not None and current.eval_run_id != candidate.eval_run_id:
        tries.append((current.eval_run_id, candidate.eval_run_id))
    last_problem = "No completed evaluation includes the current version"
    for run_a, run_b in tries:
        try:
            comparison = await evals.compare(
                session,
                principal,
                run_a=run_a,
                run_b=run_b,
                version_a=current_id,
                version_b=candidate_id,
                resamples=2000,
            )
        except ProblemError as problem:
            last_problem = problem.detail
            continue
        return ApprovalEvalOut(
            candidate=candidate,
            current=current,
            comparison=comparison,
            note="Paired on the cases both versions ran",
        )
    return ApprovalEvalOut(candidate=candidate, current=current, comparison=None, note=last_problem)


@router.get(
    "/{request_id}",
    response_model=ApprovalReviewOut,
    summary="An approval request with its diff, lint findings and evaluation comparison",
)
async def show_approval(request_id: RequestId, request: Request, principal: Reader) -> ApprovalReviewOut:
    async with runtime_of(request).db.transaction() as session:
        view = await service.get_request(session, principal, request_id)
        r = view.request
        prompt = await registry.get_prompt(session, principal, r.prompt_id)
        candidate = await registry.get_version_by_id(session, principal, r.version_id)
        labels = await registry.labels_of_prompt(session, prompt.id)
        current_id = labels[r.label].version_id if r.label in labels else None
        diff = None
        current_number = None
        base_id = current_id or r.base_version_id
        if base_id is not None:
            a, b, result, a_name, b_name = await registry.diff(
                session, principal, prompt.id, base_id, candidate.id
            )
            diff = _diff_out(result, a_name, b_name, a.id, b.id)
            current_number = a.version if current_id else None
        config = await registry.lint_config(session, principal.project_id)
        findings = await registry.lint_version(session, principal, candidate, config)
        evaluation = await _evaluation(session, principal, candidate.id, current_id)
    why_not = _why_not(view, principal)
    return ApprovalReviewOut(
        request=request_out(view),
        current_version=current_number,
        diff=diff,
        lint=ApprovalLintOut(
            findings=[LintFindingOut.model_validate(f.to_dict()) for f in findings],
            blocking=len(config.blocking(findings)),
        ),
        evaluation=evaluation,
        can_decide=why_not is None,
        why_not=why_not,
    )


@router.post(
    "/{request_id}/approve",
    response_model=ApprovalRequestOut,
    summary="Approve (the label moves when this approval meets the rule)",
)
async def approve(
    request_id: RequestId, body: ApprovalDecisionIn, request: Request, principal: Reviewer
) -> ApprovalRequestOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        view = await service.approve(session, principal, request_id, body.comment)
    return request_out(view)


@router.post("/{request_id}/reject", response_model=ApprovalRequestOut, summary="Reject with a comment")
async def reject(
    request_id: RequestId, body: ApprovalDecisionIn, request: Request, principal: Reviewer
) -> ApprovalRequestOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        view = await service.reject(session, principal, request_id, body.comment)
    return request_out(view)


@router.post(
    "/{request_id}/override",
    response_model=ApprovalRequestOut,
    summary="Move the label without the approvals (admin; the note is audited as ApprovalOverridden)",
)
async def override(
    request_id: RequestId, body: ApprovalOverrideIn, request: Request, principal: Overrider
) -> ApprovalRequestOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        view = await service.override(session, principal, request_id, body.note)
    return request_out(view)


@router.post("/{request_id}/cancel", response_model=ApprovalRequestOut, summary="Withdraw your open request")
async def cancel(
    request_id: RequestId, body: ApprovalCancelIn, request: Request, principal: Requester
) -> ApprovalRequestOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        view = await service.cancel(session, principal, request_id, body.note)
    return request_out(view)
