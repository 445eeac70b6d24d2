"""Privacy behaviour: resolve a data subject, export everything about it, erase it, and retention.

Subjects (promptops.personal.vault): a user (``usr_...``) who is a member of the principal's project, an end
user of the project (``eus_...``, the pseudonym of a name applications send as feedback's ``user`` or as a
gateway call's end user), or the project's run-payload subject (``rpl_...``, the key of the run payloads that
name no end user where the project seals them: promptops.runs.payloads). Every operation stays inside the
principal's project: another project's subjects are simply not found.

Erasure shreds the subject's data key. Every field sealed with it (a user's email and name, the feedback
``user`` and ``notes`` of that subject, the payloads of runs sealed under it and the dataset cases copied from
those runs) becomes unreadable in the
database, its backups and every export, and reads answer ``[erased]``; for a user the account is disabled,
its email lookup hash and password hash dropped and its sessions revoked. Nothing in the audit chain changes
(it holds subject ids and digests only), so ``audit verify`` still passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth import service as auth_service
from promptops.auth.principal import Principal, system_principal
from promptops.datasets import service as datasets_service
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ValidationProblem
from promptops.feedback import service as feedback_service
from promptops.governance import audit
from promptops.governance import service as audit_service
from promptops.ids import has_prefix
from promptops.personal import vault
from promptops.privacy.models import RetentionPolicy
from promptops.privacy.schemas import RetentionPolicyIn
from promptops.runs import payloads as run_payloads
from promptops.runs import service as runs_service
from promptops.tenancy.service import project_org_ids

EXPORT_LIMIT = 10_000  # rows per section of a subject export (newest kept; the export names cut sections)


@dataclass(frozen=True)
class Subject:
    subject_id: str
    kind: str  # user | end_user | runs (the project's run-payload subject)
    known: bool
    erased: bool


async def resolve(session: AsyncSession, principal: Principal, subject_id: str) -> Subject:
    """The subject ``subject_id`` of the principal's project; 404 when the project knows no such subject."""
    state = await vault.subject_state(session, subject_id)
    if has_prefix(subject_id, "user"):
        await auth_service.member_user(session, principal, subject_id)  # 404 unless a member here
        return Subject(subject_id, "user", True, bool(state and state.erased))
    if subject_id.startswith(vault.END_USER_PREFIX) and len(subject_id) <= 40:
        if state is None or state.project_id != principal.project_id:
            raise NotFound(f"Data subject {subject_id} not found in this project", code="subject_not_found")
        return Subject(subject_id, "end_user", True, state.erased)
    if subject_id.startswith(run_payloads.PAYLOAD_SUBJECT_PREFIX):
        if subject_id != run_payloads.payload_subject(principal.project_id):
            raise NotFound(f"Data subject {subject_id} not found in this project", code="subject_not_found")
        return Subject(subject_id, run_payloads.PAYLOAD_KIND, state is not None, bool(state and state.erased))
    raise ValidationProblem(
        f"{subject_id!r} is not a data subject id: expected a user id (usr_...), an end-user id (eus_...) or "
        "this project's run-payload id (rpl_...)",
        code="invalid_subject_id",
    )


async def find(
    session: AsyncSession, principal: Principal, *, end_user: str | None, email: str | None
) -> Subject:
    """The subject id of an end user of the project (by the name applications send) or a member (by email)."""
    if email is not None:
        user = await auth_service.user_by_email(session, auth_service.normalize_email(email))
        if user is None:
            raise NotFound("No member with this email in this project", code="subject_not_found")
        return await resolve(session, principal, user.id)
    assert end_user is not None
    subject_id = await vault.end_user_subject(session, principal.project_id, end_user.strip())
    state = await vault.subject_state(session, subject_id)
    return Subject(subject_id, "end_user", state is not None, bool(state and state.erased))


# --- data subject access request --------------------------------------------------------------------------------


def _cut(rows: list[Any], name: str, truncated: list[str]) -> list[Any]:
    if len(rows) > EXPORT_LIMIT:
        truncated.append(name)
        return rows[:EXPORT_LIMIT]
    return rows


async def export(session: AsyncSession, principal: Principal, subject_id: str) -> dict[str, Any]:
    """Everything the project holds about one subject, decrypted (``[erased]`` where erased); audited as
    ``SubjectExported`` (the event names the subject id only)."""
    subject = await resolve(session, principal, subject_id)
    truncated: list[str] = []
    account: dict[str, Any] | None = None
    memberships: list[dict[str, Any]] = []
    if subject.kind == "user":
        user, member_rows = await auth_service.member_user(session, principal, subject_id)
        account = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "active": user.is_active,
            "createdAt": user.created_at.isoformat(),
        }
        memberships = [
            {"projectId": m.project_id, "role": m.role, "createdAt": m.created_at.isoformat()}
            for m in member_rows
        ]
        run_rows = await runs_service.runs_of_actor(session, principal, subject_id, EXPORT_LIMIT + 1)
    else:  # an end user's (or the project's) runs: those whose payloads are sealed under the subject
        run_rows = await runs_service.runs_of_subject(session, principal, subject_id, EXPORT_LIMIT + 1)
    runs = [
        {
            "id": r.id,
            "createdAt": r.created_at.isoformat(),
            "promptId": r.prompt_id,
            "versionId": r.version_id,
            "provider": r.provider,
            "model": r.model,
            "source": r.source,
            "status": r.status,
            "input": r.input,
            "output": r.output,
            "toolCalls": r.tool_calls,
            "errorMessage": r.error_message,
        }
        for r in _cut(run_rows, "runs", truncated)
    ]
    feedback = [
        {
            "id": f.id,
            "createdAt": f.created_at.isoformat(),
            "promptId": f.prompt_id,
            "versionId": f.version_id,
            "runId": f.run_id,
            "source": f.source,
            "user": f.user,
            "score": f.score,
            "thumbs": f.thumbs,
            "rubric": f.rubric,
            "tags": f.tags,
            "notes": f.notes,
        }
        for f in _cut(
            await feedback_service.feedback_of_subject(session, principal, subject_id), "feedback", truncated
        )
    ]
    dataset_cases = [
        {
            "id": case.id,
            "dataset": name,
            "version": version,
            "key": case.key,
            "input": case.input,
            "expected": case.expected,
            "sourceRunId": case.source_run_id,
        }
        for case, name, version in _cut(
            await datasets_service.cases_of_subject(session, principal, subject_id, EXPORT_LIMIT + 1),
            "datasetCases",
            truncated,
        )
    ]
    events, _ = await audit_service.list_events(session, principal, user=subject_id, limit=EXPORT_LIMIT + 1)
    audit_events = [
        {
            "seq": e.seq,
            "eventType": e.event_type,
            "timestamp": e.occurred_at.isoformat(),
            "promptId": e.prompt_id,
            "data": e.data,
            "hash": e.hash,
        }
        for e in _cut(events, "auditEvents", truncated)
    ]
    await audit.record(
        session,
        principal,
        "SubjectExported",
        data={
            "subjectId": subject_id,
            "kind": subject.kind,
            "feedback": len(feedback),
            "runs": len(runs),
            "datasetCases": len(dataset_cases),
            "auditEvents": len(audit_events),
        },
    )
    return {
        "generated_at": utcnow(),
        "project_id": principal.project_id,
        "subject_id": subject_id,
        "kind": subject.kind,
        "erased": subject.erased,
        "account": account,
        "memberships": memberships,
        "feedback": feedback,
        "runs": runs,
        "dataset_cases": dataset_cases,
        "audit_events": audit_events,
        "truncated": truncated,
    }


# --- erasure ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    subject_id: str
    kind: str
    erased_at: datetime
    already_erased: bool
    sessions_revoked: int


async def erase(session: AsyncSession, principal: Principal, subject_id: str) -> Erasure:
    """Crypto-shred one subject (see the module docstring); audited as ``SubjectErased``. Repeating it is
    harmless (``alreadyErased``)."""
    subject = await resolve(session, principal, subject_id)
    if subject.kind == "user" and subject_id == principal.user_id:
        raise Conflict(
            "You cannot erase your own account; ask another administrator", code="cannot_erase_self"
        )
    revoked = 0
    if not subject.erased:
        await vault.shred(
            session,
            subject_id,
            kind=subject.kind,
            project_id=None if subject.kind == "user" else principal.project_id,
            actor_id=principal.id,
        )
    if subject.kind == "user":
        revoked = await auth_service.erase_user_account(session, subject_id)
    now = utcnow()
    await audit.record(
        session,
        principal,
        "SubjectErased",
        data={
            "subjectId": subject_id,
            "kind": subject.kind,
            "alreadyErased": subject.erased,
            "sessionsRevoked": revoked,
        },
    )
    return Erasure(subject_id, subject.kind, now, subject.erased, revoked)


# --- retention ------------------------------------------------------------------------------------------------


async def get_policy(session: AsyncSession, principal: Principal) -> RetentionPolicy:
    """The project's retention policy (keep everything when none was set)."""
    found = await session.get(RetentionPolicy, principal.project_id)
    return found or RetentionPolicy(project_id=principal.project_id, updated_at=None)


async def set_policy(session: AsyncSession, principal: Principal, body: RetentionPolicyIn) -> RetentionPolicy:
    """Set how many days runs and feedback are kept (null: forever); audited as ``RetentionPolicyChanged``."""
    policy = await session.get(RetentionPolicy, principal.project_id)
    before: dict[str, int | None] = {"runsDays": None, "feedbackDays": None}
    if policy is None:
        policy = RetentionPolicy(project_id=principal.project_id)
        session.add(policy)
    else:
        before = {"runsDays": policy.runs_days, "feedbackDays": policy.feedback_days}
    policy.runs_days = body.runs_days
    policy.feedback_days = body.feedback_days
    policy.updated_by = principal.id
    policy.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "RetentionPolicyChanged",
        data={"runsDays": body.runs_days, "feedbackDays": body.feedback_days, "from": before},
    )
    return policy


@dataclass(frozen=True)
class Applied:
    project_id: str
    runs_deleted: int
    feedback_deleted: int
    runs_cutoff: datetime | None
    feedback_cutoff: datetime | None


async def apply_policy(session: AsyncSession, principal: Principal, now: datetime | None = None) -> Applied:
    """Delete the principal's project's runs and feedback older than its policy allows, in one transaction,
    and append a ``RetentionApplied`` event with the counts (also when nothing was old enough)."""
    now = now or utcnow()
    policy = await session.get(RetentionPolicy, principal.project_id)
    if policy is None or (policy.runs_days is None and policy.feedback_days is None):
        raise ValidationProblem("This project has no retention policy to apply", code="no_retention_policy")
    runs_cutoff = now - timedelta(days=policy.runs_days) if policy.runs_days else None
    feedback_cutoff = now - timedelta(days=policy.feedback_days) if policy.feedback_days else None
    runs_deleted = (
        await runs_service.delete_runs_before(session, principal.project_id, runs_cutoff)
        if runs_cutoff
        else 0
    )
    feedback_deleted = (
        await feedback_service.delete_feedback_before(session, principal.project_id, feedback_cutoff)
        if feedback_cutoff
        else 0
    )
    policy.last_applied_at = now
    await audit.record(
        session,
        principal,
        "RetentionApplied",
        data={
            "runsDays": policy.runs_days,
            "feedbackDays": policy.feedback_days,
            "runsDeleted": runs_deleted,
            "feedbackDeleted": feedback_deleted,
            "runsCutoff": runs_cutoff,
            "feedbackCutoff": feedback_cutoff,
        },
    )
    return Applied(principal.project_id, runs_deleted, feedback_deleted, runs_cutoff, feedback_cutoff)


async def projects_with_policies(session: AsyncSession) -> dict[str, str]:
    """project id -> org id of every project with a retention policy that deletes something."""
    rows = await session.execute(
        select(RetentionPolicy.project_id).where(
            (RetentionPolicy.runs_days.is_not(None)) | (RetentionPolicy.feedback_days.is_not(None))
        )
    )
    return await project_org_ids(session, [str(pid) for pid in rows.scalars()])


def system_for(project_id: str, org_id: str) -> Principal:
    return system_principal(project_id, org_id)
