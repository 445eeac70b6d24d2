"""Audit trail endpoints (``/api/v1/audit``); ``promptops.contract_api`` serves the same listing at the seed 004
``/api/prompt/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from promptops.auth import service as auth_service
from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance import export as audit_export
from promptops.governance import service, signatures, signing
from promptops.governance.audit import AnyAuditEvent
from promptops.governance.models import AuditCheckpoint, AuditSigningKey
from promptops.governance.rbac import Permission as P
from promptops.governance.schemas import (
    AuditChain,
    AuditCheckpointIn,
    AuditCheckpointOut,
    AuditCheckpointPage,
    AuditEventRecord,
    AuditPage,
    AuditPublicKeyOut,
    AuditPublicKeysOut,
    ChainProblemOut,
    VerifyOut,
)
from promptops.pagination import IdCursor, PageLimit, Since, Until
from promptops.registry import service as registry
from promptops.runtime import runtime_of
from promptops.validation import SEQ_CURSOR

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(P.AUDIT_READ))]
ChainQuery = Annotated[
    AuditChain,
    Query(
        description="project: the project's chain; org: the organization's sign-in chain (needs audit:verify)"
    ),
]


def record_out(event: AnyAuditEvent, user_names: dict[str, str] | None = None) -> AuditEventRecord:
    """``user_names``: users' emails by id (``[erased]`` once erased); a user actor is stored by id only."""
    user = event.actor_name
    if event.actor_type == "user" and user_names and event.actor_id in user_names:
        user = user_names[event.actor_id]
    return AuditEventRecord(
        event_type=event.event_type,
        prompt_id=event.prompt_id,
        user=user,
        timestamp=event.occurred_at,
        id=event.id,
        seq=event.seq,
        project_id=event.project_id,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        request_id=event.request_id,
        data=event.data,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


async def _list(
    request: Request,
    principal: Principal,
    prompt_id: str | None,
    user: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
    chain: str = "project",
) -> AuditPage:
    async with runtime_of(request).db.transaction() as session:
        events, next_cursor = await service.list_events(
            session,
            principal,
            prompt_id=await registry.prompt_id_of(session, principal, prompt_id) if prompt_id else None,
            user=user,
            event_type=event_type,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
            chain=chain,
        )
        names = await auth_service.user_display_names(
            session, [e.actor_id for e in events if e.actor_type == "user" and e.actor_id]
        )
    return AuditPage(events=[record_out(e, names) for e in events], next_cursor=next_cursor)


@router.get("", response_model=AuditPage, summary="List audit events")
async def list_audit(
    request: Request,
    principal: AuditReader,
    prompt_id: Annotated[str | None, Query(alias="promptId", max_length=200)] = None,
    user: Annotated[str | None, Query(max_length=254)] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=60)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Annotated[IdCursor, SEQ_CURSOR] = None,
    limit: PageLimit = 50,
    chain: ChainQuery = "project",
) -> AuditPage:
    return await _list(request, principal, prompt_id, user, event_type, since, until, cursor, limit, chain)


@router.get("/verify", response_model=VerifyOut, summary="Verify the project's audit hash chain")
async def verify(
    request: Request,
    principal: Annotated[Principal, Depends(require(P.AUDIT_VERIFY))],
    chain: ChainQuery = "project",
) -> VerifyOut:
    async with runtime_of(request).db.transaction() as session:
        result = await service.verify(session, principal, chain)
    return VerifyOut(
        project_id=result.project_id,
        ok=result.ok,
        events_checked=result.events_checked,
        last_seq=result.last_seq,
        problems=[ChainProblemOut(**p.__dict__) for p in result.problems],
    )


# --- signing: public keys, checkpoints, export -------------------------------------------------------------------


def checkpoint_out(cp: AuditCheckpoint) -> AuditCheckpointOut:
    return AuditCheckpointOut(
        id=cp.id,
        chain=cp.chain,
        chain_id=cp.chain_id,
        org_id=cp.org_id,
        seq=cp.seq,
        head_hash=cp.head_hash,
        signed_at=cp.signed_at,
        key_id=cp.key_id,
        signature=cp.signature,
        trigger=cp.trigger,
    )


def _keys_out(org_id: str, keys: list[AuditSigningKey]) -> AuditPublicKeysOut:
    return AuditPublicKeysOut(
        org_id=org_id,
        keys=[
            AuditPublicKeyOut(
                key_id=k.id,
                algorithm=k.algorithm,
                public_key=k.public_key,
                public_key_pem=signatures.public_pem(k.public_key),
                valid_from=k.valid_from,
                valid_until=k.valid_until,
                current=k.valid_until is None,
            )
            for k in keys
        ],
    )


@router.get(
    "/public-keys",
    response_model=AuditPublicKeysOut,
    summary="The organization's audit signing public keys, with their validity periods",
)
async def public_keys(request: Request, principal: AuditReader) -> AuditPublicKeysOut:
    async with runtime_of(request).db.transaction() as session:
        keys = await signing.list_keys(session, principal.org_id)
    return _keys_out(principal.org_id, keys)


@router.post(
    "/signing-keys/rotate",
    response_model=AuditPublicKeysOut,
    summary="Rotate the organization's signing key (the old public key stays listed)",
)
async def rotate_signing_key(
    request: Request, principal: Annotated[Principal, Depends(require(P.AUDIT_KEY_MANAGE))]
) -> AuditPublicKeysOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        await signing.rotate_key(session, runtime.box, principal)
        keys = await signing.list_keys(session, principal.org_id)
    return _keys_out(principal.org_id, keys)


@router.post(
    "/checkpoints",
    response_model=AuditCheckpointOut,
    status_code=201,
    summary="Sign a checkpoint of the chain head now",
)
async def create_checkpoint(
    request: Request,
    principal: Annotated[Principal, Depends(require(P.AUDIT_VERIFY))],
    body: AuditCheckpointIn | None = None,
) -> AuditCheckpointOut:
    runtime = runtime_of(request)
    chain = body.chain if body else "project"
    async with runtime.db.transaction(write=True) as session:
        checkpoint = await signing.checkpoint_now(session, runtime.box, principal, chain)
    return checkpoint_out(checkpoint)


@router.get("/checkpoints", response_model=AuditCheckpointPage, summary="Signed checkpoints, newest first")
async def list_checkpoints(
    request: Request,
    principal: AuditReader,
    chain: ChainQuery = "project",
    cursor: Annotated[IdCursor, SEQ_CURSOR] = None,
    limit: PageLimit = 50,
) -> AuditCheckpointPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await signing.list_checkpoints(session, principal, chain, cursor, limit)
    return AuditCheckpointPage(checkpoints=[checkpoint_out(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/export",
    summary="Export a chain as JSON Lines: events with hashes, checkpoints, public keys and a signed trailer",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_chain(
    request: Request, principal: AuditReader, chain: ChainQuery = "project"
) -> StreamingResponse:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        plan = await audit_export.prepare(session, runtime.box, principal, chain)
    filename = f"audit-{plan.chain_id}-{plan.exported_at[:10]}.jsonl"
    return StreamingResponse(
        audit_export.lines(runtime.db, plan),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
