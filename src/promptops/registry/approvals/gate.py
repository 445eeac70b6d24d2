"""The gate in the registry's one label path: a move of a gated label becomes an approval request.

:func:`promptops.registry.service._move_label` (every label move goes through it) asks :func:`needs_request`
and, when the answer is a rule, calls :func:`open_request` instead of moving. Only
:mod:`promptops.registry.approvals.service` makes a :class:`Grant`, which is how an approved (or overridden)
request finally moves the label through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.ids import new_id
from promptops.registry.approvals.models import ApprovalRequest
from promptops.registry.approvals.rules import ApprovalRule, approval_policy
from promptops.registry.models import LabelEvent, Prompt, PromptVersion

GrantKind = Literal["approved", "overridden"]


@dataclass(frozen=True)
class Grant:
    """Leave to move ``label`` of ``prompt_id`` to ``version_id`` without a new request (an approved or
    overridden request); made only by the approvals service."""

    request_id: str
    prompt_id: str
    label: str
    version_id: str
    kind: GrantKind
    approvers: tuple[str, ...]

    def covers(self, prompt_id: str, label: str, version_id: str) -> bool:
        return (self.prompt_id, self.label, self.version_id) == (prompt_id, label, version_id)


@dataclass(frozen=True)
class PendingApproval:
    """A label move that became an approval request: nothing moved."""

    prompt: Prompt
    label: str
    version: PromptVersion
    previous: PromptVersion | None
    request: ApprovalRequest
    created: bool  # False when the same move was already waiting for review


def open_key(prompt_id: str, label: str) -> str:
    return f"{prompt_id}:{label}"


async def _held_label_before(session: AsyncSession, prompt_id: str, label: str, version_id: str) -> bool:
    """Whether ``version_id`` was ever moved onto ``label`` of the prompt (the label history says so)."""
    found = await session.execute(
        select(LabelEvent.id)
        .where(
            LabelEvent.prompt_id == prompt_id,
            LabelEvent.label == label,
            LabelEvent.to_version_id == version_id,
        )
        .limit(1)
    )
    return found.first() is not None


async def needs_request(
    session: AsyncSession,
    principal: Principal,
    prompt: Prompt,
    label: str,
    version: PromptVersion,
    current_version_id: str | None,
    *,
    action: str,
) -> tuple[ApprovalRule | None, str | None]:
    """The rule a move must be reviewed under (None: it may happen now), and the fast path that let a rollback
    through (``previousVersion`` or ``admins``), if one did."""
    policy = await approval_policy(session, prompt.project_id)
    rule = policy.rule_for(label)
    if rule is None or current_version_id == version.id:  # not gated, or nothing would change
        return None, None
    if action == "rollback":
        if policy.rollback == "admins" and principal.role == Role.ADMIN:
            return None, "admins"
        if policy.rollback == "previousVersion" and await _held_label_before(
            session, prompt.id, label, version.id
        ):
            return None, "previousVersion"
    return rule, None


async def open_request(
    session: AsyncSession,
    principal: Principal,
    rule: ApprovalRule,
    *,
    prompt: Prompt,
    label: str,
    version: PromptVersion,
    previous: PromptVersion | None,
    action: str,
    reason: str,
) -> PendingApproval:
    """Record the move as an open request (superseding the open one of the same label, if any) and audit it."""
    key = open_key(prompt.id, label)
    existing = (
        await session.execute(
            select(ApprovalRequest).where(ApprovalRequest.open_key == key).with_for_update()
        )
    ).scalar_one_or_none()
    if existing is not None and existing.version_id == version.id and existing.action == action:
        return PendingApproval(prompt, label, version, previous, existing, created=False)
    now = utcnow()
    request = ApprovalRequest(
        id=new_id("approval"),
        project_id=prompt.project_id,
        prompt_id=prompt.id,
        prompt_name=prompt.name,
        label=label,
        action=action,
        version_id=version.id,
        version=version.version,
        base_version_id=previous.id if previous else None,
        base_version=previous.version if previous else None,
        reason=reason,
        status="open",
        open_key=key,
        required=rule.required,
        roles=list(rule.roles),
        requested_by=principal.id,
        requested_by_name=principal.display,
        author_id=version.created_by,
        resolution_note="",
        created_at=now,
    )
    if existing is not None:
        existing.status = "superseded"
        existing.open_key = None
        existing.superseded_by = request.id
        existing.resolved_at = now
        await session.flush()  # free the open key before the new request takes it
        await audit.record(
            session,
            principal,
            "ApprovalSuperseded",
            prompt_id=prompt.id,
            data={
                "requestId": existing.id,
                "promptId": prompt.id,
                "label": label,
                "version": existing.version,
                "supersededBy": request.id,
                "newVersion": version.version,
            },
        )
    session.add(request)
    await session.flush()
    await audit.record(
        session,
        principal,
        "ApprovalRequested",
        prompt_id=prompt.id,
        data={
            "requestId": request.id,
            "promptId": prompt.id,
            "name": prompt.name,
            "label": label,
            "action": action,
            "versionId": version.id,
            "version": version.version,
            "baseVersion": request.base_version,
            "required": rule.required,
            "roles": list(rule.roles),
            "user": principal.display,
            "reason": reason,
        },
    )
    return PendingApproval(prompt, label, version, previous, request, created=True)
