"""Approval requests: list, show, approve, reject, cancel, override; the move happens when the rule is met.

Four eyes: the requester and the version's author may not approve or reject their own request, a reviewer
decides once, and only members of the roles the rule names count. The label moves through the registry's one
label path (:func:`promptops.registry.service.apply_grant`, audited ``PromptDeployed`` / ``LabelMoved`` /
``RollbackTriggered``) in the transaction of the approval that met the rule. An admin's override needs a note
and is audited ``ApprovalOverridden`` {promptId, approver, note}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.errors import Conflict, Forbidden, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import new_id
from promptops.pagination import fetch_page, id_cursor
from promptops.registry import service as registry
from promptops.registry.approvals.gate import Grant, GrantKind
from promptops.registry.approvals.models import ApprovalDecision, ApprovalRequest
from promptops.tenancy.service import get_scoped, scoped

Status = Literal["open", "applied", "rejected", "superseded", "cancelled", "overridden"]
STATUSES: tuple[str, ...] = ("open", "applied", "rejected", "superseded", "cancelled", "overridden")


@dataclass(frozen=True)
class ApprovalView:
    """A request with its decisions (oldest first) and, after an approval met the rule or an override, the
    label move it made."""

    request: ApprovalRequest
    decisions: list[ApprovalDecision]
    move: registry.LabelMove | None = None

    @property
    def approvals(self) -> int:
        return sum(d.decision == "approve" for d in self.decisions)


async def decisions_of(session: AsyncSession, request_id: str) -> list[ApprovalDecision]:
    rows = await session.execute(
        select(ApprovalDecision)
        .where(ApprovalDecision.request_id == request_id)
        .order_by(ApprovalDecision.created_at, ApprovalDecision.id)
    )
    return list(rows.scalars())


async def _request(
    session: AsyncSession, principal: Principal, request_id: str, *, for_update: bool = False
) -> ApprovalRequest:
    return await get_scoped(
        session,
        principal,
        ApprovalRequest,
        request_id,
        missing=f"Approval request {request_id} not found",
        code="approval_not_found",
        for_update=for_update,
    )


async def get_request(session: AsyncSession, principal: Principal, request_id: str) -> ApprovalView:
    """A request of the principal's project with its decisions (404 ``approval_not_found`` otherwise)."""
    request = await _request(session, principal, request_id)
    return ApprovalView(request, await decisions_of(session, request.id))


@dataclass(frozen=True)
class ApprovalFilter:
    status: str | None = None
    prompt_id: str | None = None
    label: str | None = None
    requested_by: str | None = None


def _cursor(request: ApprovalRequest) -> str:
    return request.id


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    filters: ApprovalFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ApprovalView], str | None]:
    """Requests of the project, newest first, filtered by status, prompt, label or requester."""
    if filters.status is not None and filters.status not in STATUSES:
        raise ValidationProblem(
            f"Unknown status {filters.status!r}; expected one of: {', '.join(STATUSES)}",
            code="invalid_status",
        )
    stmt = scoped(select(ApprovalRequest), ApprovalRequest, principal)
    if filters.status:
        stmt = stmt.where(ApprovalRequest.status == filters.status)
    if filters.prompt_id:
        stmt = stmt.where(ApprovalRequest.prompt_id == filters.prompt_id)
    if filters.label:
        stmt = stmt.where(ApprovalRequest.label == filters.label)
    if filters.requested_by:
        stmt = stmt.where(ApprovalRequest.requested_by == filters.requested_by)
    if cursor:
        stmt = stmt.where(ApprovalRequest.id < id_cursor(cursor, "approval"))
    ordered = stmt.order_by(ApprovalRequest.id.desc())  # ids are time-ordered (ULIDs): newest first
    rows, next_cursor = await fetch_page(session, ordered, limit, _cursor)
    ids = [r.id for r in rows]
    by_request: dict[str, list[ApprovalDecision]] = {i: [] for i in ids}
    if ids:
        decisions = await session.execute(
            select(ApprovalDecision)
            .where(ApprovalDecision.request_id.in_(ids))
            .order_by(ApprovalDecision.created_at, ApprovalDecision.id)
        )
        for d in decisions.scalars():
            by_request[d.request_id].append(d)
    return [ApprovalView(r, by_request[r.id]) for r in rows], next_cursor


async def open_for_version(
    session: AsyncSession, principal: Principal, version_id: str
) -> list[ApprovalRequest]:
    """The open requests that would move a label to ``version_id`` (e.g. made by saving it with labels)."""
    rows = await session.execute(
        scoped(select(ApprovalRequest), ApprovalRequest, principal)
        .where(ApprovalRequest.version_id == version_id, ApprovalRequest.status == "open")
        .order_by(ApprovalRequest.label)
    )
    return list(rows.scalars())


def _must_be_open(request: ApprovalRequest) -> None:
    if request.status != "open":
        raise Conflict(
            f"Approval request {request.id} is {request.status}, not open",
            code="approval_not_open",
            requestStatus=request.status,
        )


def _check_reviewer(request: ApprovalRequest, principal: Principal) -> None:
    """The four-eyes rule: reviewers hold a role the rule names and are neither requester nor author."""
    if principal.id == request.requested_by:
        raise Forbidden(
            "You requested this label move; another reviewer must decide on it (four-eyes rule)",
            code="approval_own_request",
        )
    if request.author_id is not None and principal.id == request.author_id:
        raise Forbidden(
            f"You wrote version {request.version}; another reviewer must decide on it (four-eyes rule)",
            code="approval_own_version",
        )
    if principal.role.value not in request.roles:
        raise Forbidden(
            f"Approvals for {request.label!r} count from {', '.join(request.roles)}; your role is "
            f"{principal.role.value}",
            code="approval_role_not_allowed",
            roles=list(request.roles),
        )


def _audit_data(request: ApprovalRequest, **extra: object) -> dict[str, object]:
    return {
        "requestId": request.id,
        "promptId": request.prompt_id,
        "name": request.prompt_name,
        "label": request.label,
        "versionId": request.version_id,
        "version": request.version,
        **extra,
    }


def _close(request: ApprovalRequest, status: str, principal: Principal, note: str) -> None:
    request.status = status
    request.open_key = None
    request.resolved_by = principal.id
    request.resolved_by_name = audit.actor_name(principal)
    request.resolution_note = note
    request.resolved_at = utcnow()


async def _apply(
    session: AsyncSession,
    principal: Principal,
    request: ApprovalRequest,
    kind: GrantKind,
    approvers: list[str],
) -> registry.LabelMove:
    grant = Grant(request.id, request.prompt_id, request.label, request.version_id, kind, tuple(approvers))
    reason = request.reason or f"approval request {request.id}"
    return await registry.apply_grant(session, principal, grant, action=request.action, reason=reason)


async def approve(
    session: AsyncSession, principal: Principal, request_id: str, comment: str = ""
) -> ApprovalView:
    """Record the principal's approval; when it is the last one the rule needs, move the label."""
    principal.require(Permission.APPROVAL_REVIEW)
    request = await _request(session, principal, request_id, for_update=True)
    _must_be_open(request)
    _check_reviewer(request, principal)
    decisions = await decisions_of(session, request.id)
    if any(d.reviewer_id == principal.id for d in decisions):
        raise Conflict("You already decided on this request", code="approval_already_decided")
    decision = ApprovalDecision(
        id=new_id("approval_decision"),
        project_id=request.project_id,
        request_id=request.id,
        decision="approve",
        reviewer_id=principal.id,
        reviewer_name=audit.actor_name(principal),
        reviewer_role=principal.role.value,
        comment=comment,
        created_at=utcnow(),
    )
    session.add(decision)
    await session.flush()
    decisions.append(decision)
    approvers = [d.reviewer_name for d in decisions if d.decision == "approve"]
    await audit.record(
        session,
        principal,
        "ApprovalGranted",
        prompt_id=request.prompt_id,
        data=_audit_data(
            request,
            approver=audit.actor_name(principal),
            comment=comment,
            approvals=len(approvers),
            required=request.required,
        ),
    )
    move = None
    if len(approvers) >= request.required:
        move = await _apply(session, principal, request, "approved", approvers)
        _close(request, "applied", principal, comment)
        await audit.record(
            session,
            principal,
            "ApprovalApplied",
            prompt_id=request.prompt_id,
            data=_audit_data(
                request,
                approvers=approvers,
                previousVersion=move.previous.version if move.previous else None,
                deployRef=f"{request.prompt_name}@{request.label}",
            ),
        )
    return ApprovalView(request, decisions, move)


async def reject(session: AsyncSession, principal: Principal, request_id: str, comment: str) -> ApprovalView:
    """One rejection (with a comment saying why) closes the request; the label stays where it is."""
    principal.require(Permission.APPROVAL_REVIEW)
    if not comment.strip():
        raise ValidationProblem("A rejection needs a comment saying why", code="comment_required")
    request = await _request(session, principal, request_id, for_update=True)
    _must_be_open(request)
    _check_reviewer(request, principal)
    decisions = await decisions_of(session, request.id)
    if any(d.reviewer_id == principal.id for d in decisions):
        raise Conflict("You already decided on this request", code="approval_already_decided")
    decision = ApprovalDecision(
        id=new_id("approval_decision"),
        project_id=request.project_id,
        request_id=request.id,
        decision="reject",
        reviewer_id=principal.id,
        reviewer_name=audit.actor_name(principal),
        reviewer_role=principal.role.value,
        comment=comment,
        created_at=utcnow(),
    )
    session.add(decision)
    _close(request, "rejected", principal, comment)
    await session.flush()
    decisions.append(decision)
    await audit.record(
        session,
        principal,
        "ApprovalRejected",
        prompt_id=request.prompt_id,
        data=_audit_data(request, approver=audit.actor_name(principal), comment=comment),
    )
    return ApprovalView(request, decisions)


async def cancel(
    session: AsyncSession, principal: Principal, request_id: str, note: str = ""
) -> ApprovalView:
    """The requester (or a project admin) withdraws an open request."""
    request = await _request(session, principal, request_id, for_update=True)
    _must_be_open(request)
    if principal.id != request.requested_by and not principal.can(Permission.APPROVAL_OVERRIDE):
        raise Forbidden(
            "Only the requester or a project admin may cancel an approval request", code="approval_not_yours"
        )
    _close(request, "cancelled", principal, note)
    await session.flush()
    await audit.record(
        session,
        principal,
        "ApprovalCancelled",
        prompt_id=request.prompt_id,
        data=_audit_data(request, note=note, user=audit.actor_name(principal)),
    )
    return ApprovalView(request, await decisions_of(session, request.id))


async def override(session: AsyncSession, principal: Principal, request_id: str, note: str) -> ApprovalView:
    """An admin moves the label without the approvals the rule needs; the note is mandatory and audited
    (``ApprovalOverridden`` {promptId, approver, note})."""
    principal.require(Permission.APPROVAL_OVERRIDE)
    if not note.strip():
        raise ValidationProblem("An override needs a note saying why", code="note_required")
    request = await _request(session, principal, request_id, for_update=True)
    _must_be_open(request)
    decisions = await decisions_of(session, request.id)
    approvers = [d.reviewer_name for d in decisions if d.decision == "approve"]
    move = await _apply(session, principal, request, "overridden", [*approvers, audit.actor_name(principal)])
    _close(request, "overridden", principal, note)
    await session.flush()
    await audit.record(
        session,
        principal,
        "ApprovalOverridden",
        prompt_id=request.prompt_id,
        data={
            "promptId": request.prompt_id,
            "approver": audit.actor_name(principal),
            "note": note,
            "requestId": request.id,
            "name": request.prompt_name,
            "label": request.label,
            "versionId": request.version_id,
            "version": request.version,
            "approvals": len(approvers),
            "required": request.required,
        },
    )
    return ApprovalView(request, decisions, move)
