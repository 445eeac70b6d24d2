"""Privacy endpoints (``/api/v1/privacy``): subject lookup, access export, erasure, retention policies."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Request, Response

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.privacy import service
from promptops.privacy.models import RetentionPolicy
from promptops.privacy.schemas import (
    PrivacyErasureOut,
    PrivacyExportOut,
    PrivacySubjectOut,
    PrivacySubjectResolveIn,
    RetentionAppliedOut,
    RetentionPolicyIn,
    RetentionPolicyOut,
)
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])

SubjectId = Annotated[str, Path(min_length=4, max_length=40, pattern=r"^[a-z]{3}_[a-z0-9]+$")]
Exporter = Annotated[Principal, Depends(require(P.PRIVACY_EXPORT))]
RetentionManager = Annotated[Principal, Depends(require(P.RETENTION_MANAGE))]


def _subject_out(subject: service.Subject) -> PrivacySubjectOut:
    return PrivacySubjectOut(
        subject_id=subject.subject_id, kind=subject.kind, known=subject.known, erased=subject.erased
    )


def _policy_out(policy: RetentionPolicy) -> RetentionPolicyOut:
    return RetentionPolicyOut(
        project_id=policy.project_id,
        runs_days=policy.runs_days,
        feedback_days=policy.feedback_days,
        updated_by=policy.updated_by,
        updated_at=policy.updated_at,
        last_applied_at=policy.last_applied_at,
    )


@router.post(
    "/subjects/resolve",
    response_model=PrivacySubjectOut,
    summary="Find the data subject id of an end user (by name) or a member (by email)",
)
async def resolve_subject(
    body: PrivacySubjectResolveIn, request: Request, principal: Exporter
) -> PrivacySubjectOut:
    # A POST, so the name or email travels in the body and never in an access-logged URL.
    async with runtime_of(request).db.transaction(write=True) as session:
        found = await service.find(session, principal, end_user=body.end_user, email=body.email)
    return _subject_out(found)


@router.get(
    "/subjects/{subject_id}/export",
    response_model=PrivacyExportOut,
    summary="Export everything about one data subject (DSAR) as a JSON file",
)
async def export_subject(subject_id: SubjectId, request: Request, principal: Exporter) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        exported = await service.export(session, principal, subject_id)
    body = PrivacyExportOut(**exported).model_dump(mode="json", by_alias=True)
    return Response(
        orjson.dumps(body, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="dsar-{subject_id}.json"'},
    )


@router.post(
    "/subjects/{subject_id}/erase",
    response_model=PrivacyErasureOut,
    summary="Erase a data subject by destroying its data key (crypto-shredding)",
)
async def erase_subject(
    subject_id: SubjectId,
    request: Request,
    principal: Annotated[Principal, Depends(require(P.PRIVACY_ERASE))],
) -> PrivacyErasureOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        erased = await service.erase(session, principal, subject_id)
    return PrivacyErasureOut(
        subject_id=erased.subject_id,
        kind=erased.kind,
        erased_at=erased.erased_at,
        already_erased=erased.already_erased,
        sessions_revoked=erased.sessions_revoked,
    )


@router.get("/retention", response_model=RetentionPolicyOut, summary="The project's retention policy")
async def get_retention(
    request: Request, principal: Annotated[Principal, Depends(require(P.PRIVACY_READ))]
) -> RetentionPolicyOut:
    async with runtime_of(request).db.transaction() as session:
        return _policy_out(await service.get_policy(session, principal))


@router.put("/retention", response_model=RetentionPolicyOut, summary="Set the project's retention policy")
async def put_retention(
    body: RetentionPolicyIn, request: Request, principal: RetentionManager
) -> RetentionPolicyOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return _policy_out(await service.set_policy(session, principal, body))


@router.post(
    "/retention/apply",
    response_model=RetentionAppliedOut,
    summary="Apply the project's retention policy now (the scheduler does it hourly)",
)
async def apply_retention(request: Request, principal: RetentionManager) -> RetentionAppliedOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        applied = await service.apply_policy(session, principal)
    return RetentionAppliedOut(
        project_id=applied.project_id,
        runs_deleted=applied.runs_deleted,
        feedback_deleted=applied.feedback_deleted,
        runs_cutoff=applied.runs_cutoff,
        feedback_cutoff=applied.feedback_cutoff,
    )
