"""Template pack endpoints (``/api/v1/packs``): export a signed pack, preview / dry-run / import one, provenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.governance.rbac import Permission as P
from promptops.packs import service
from promptops.packs.schemas import (
    OnConflict,
    PackExportIn,
    PackImportOut,
    PackInfoOut,
    PackItemOut,
    PackProvenanceOut,
)
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])


@router.post(
    "/export",
    summary="Export chosen prompt versions (and datasets) as a signed template pack",
    response_class=JSONResponse,
    responses={
        200: {"description": "The pack file (format promptops.pack)", "content": {"application/json": {}}}
    },
)
async def export_pack(
    request: Request, body: PackExportIn, principal: Annotated[Principal, Depends(require(P.PACK_EXPORT))]
) -> JSONResponse:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        pack = await service.export_pack(session, runtime.box, principal, body)
    filename = f"{body.name.replace('/', '-')}-{body.version}.pack.json"
    return JSONResponse(pack, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _out(plan: service.ImportPlan, dry_run: bool) -> PackImportOut:
    return PackImportOut(
        import_id=plan.import_id,
        dry_run=dry_run,
        on_conflict=plan.on_conflict,
        pack=PackInfoOut(
            name=plan.name,
            version=plan.version,
            content_hash=plan.content_hash,
            signer_key_id=plan.signer_key_id,
            trusted=plan.trusted,
        ),
        items=[
            PackItemOut(
                kind=i.kind,
                name=i.name,
                status=i.status,
                action=i.action,
                current_version=i.current_version,
                result_version=i.result_version,
                detail=i.detail,
            )
            for i in plan.items
        ],
        counts=plan.counts(),
    )


@router.post(
    "/import",
    response_model=PackImportOut,
    summary="Import a template pack: preview (dryRun=true) or apply with a conflict policy",
)
async def import_pack(
    request: Request,
    pack: Annotated[dict[str, Any], Body(description="The pack file (format promptops.pack)")],
    principal: Annotated[Principal, Depends(require(P.PACK_IMPORT))],
    dry_run: Annotated[bool, Query(alias="dryRun", description="Only report what would happen")] = False,
    on_conflict: Annotated[
        OnConflict, Query(alias="onConflict", description="What to do with items the project changed itself")
    ] = "fail",
    trust_key: Annotated[
        list[str] | None,
        Query(alias="trustKey", max_length=10, description="Extra trusted signer public keys (base64)"),
    ] = None,
) -> PackImportOut:
    keys = [k for k in trust_key or [] if k]
    if any(len(k) > 100 for k in keys):
        raise ValidationProblem(
            "trustKey: a base64 Ed25519 public key has 44 characters", code="invalid_public_key"
        )
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=not dry_run) as session:
        plan = await service.plan_import(session, principal, pack, on_conflict, keys)
        if not dry_run:
            plan = await service.import_pack(session, principal, plan)
    return _out(plan, dry_run)


@router.get(
    "/provenance/{target_id}",
    response_model=PackProvenanceOut,
    summary="Where an imported prompt version or dataset version came from",
)
async def provenance(
    request: Request,
    target_id: Annotated[str, Path(max_length=40, description="A prompt version id or dataset version id")],
    principal: Annotated[Principal, Depends(require(P.PROMPT_READ))],
) -> PackProvenanceOut:
    async with runtime_of(request).db.transaction() as session:
        row = await service.provenance_of(session, principal, target_id)
    return PackProvenanceOut(
        target_id=row.target_id,
        kind=row.kind,
        item_name=row.item_name,
        item_hash=row.item_hash,
        pack_name=row.pack_name,
        pack_version=row.pack_version,
        signer_key_id=row.signer_key_id,
        import_id=row.import_id,
    )
