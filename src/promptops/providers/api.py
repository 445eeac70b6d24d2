"""REST face of provider connections and the model catalog (connections: admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.providers import service
from promptops.providers.models import ProviderConnection
from promptops.providers.schemas import ConnectionIn, ConnectionOut, ConnectionUpdate, ModelOut, PriceIn
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])
models_router = APIRouter(prefix="/api/v1/models", tags=["providers"])

Admin = Annotated[Principal, Depends(require(P.PROVIDER_MANAGE))]


def connection_out(row: ProviderConnection) -> ConnectionOut:
    return ConnectionOut(
        id=row.id,
        name=row.name,
        type=row.type,
        base_url=row.base_url,
        has_api_key=row.api_key_ciphertext is not None,
        api_key_hint=row.api_key_hint,
        api_version=row.api_version,
        default_params=row.default_params or {},
        allowed_models=row.allowed_models or [],
        options=row.options or {},
        max_concurrency=row.max_concurrency,
        timeout_seconds=row.timeout_seconds,
        max_retries=row.max_retries,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


LOCAL_OUT = ConnectionOut(
    id=None,
    name=service.LOCAL_NAME,
    type="local",
    base_url=None,
    has_api_key=False,
    api_key_hint=None,
    api_version=None,
    default_params={},
    allowed_models=[service.LOCAL_MODEL],
    options={},
    max_concurrency=service.LOCAL_CONNECTION.max_concurrency,
    timeout_seconds=300.0,
    max_retries=0,
    built_in=True,
)


@router.get("", response_model=list[ConnectionOut], summary="Provider connections (keys never returned)")
async def list_connections(request: Request, principal: Admin) -> list[ConnectionOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.list_connections(session, principal)
    return [LOCAL_OUT, *(connection_out(r) for r in rows)]


@router.post("", status_code=201, response_model=ConnectionOut, summary="Add a provider connection")
async def create_connection(body: ConnectionIn, request: Request, principal: Admin) -> ConnectionOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        row = await service.create_connection(
            session, principal, body, runtime.box, runtime.settings.provider_allowed_hosts
        )
    runtime.caller.forget_connections(principal.project_id)
    return connection_out(row)


@router.get("/{name}", response_model=ConnectionOut, summary="One provider connection")
async def get_connection(name: str, request: Request, principal: Admin) -> ConnectionOut:
    if name == service.LOCAL_NAME:
        return LOCAL_OUT
    async with runtime_of(request).db.transaction() as session:
        return connection_out(await service.get_connection(session, principal, name))


@router.patch("/{name}", response_model=ConnectionOut, summary="Change a provider connection")
async def update_connection(
    name: str, body: ConnectionUpdate, request: Request, principal: Admin
) -> ConnectionOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        row = await service.update_connection(
            session, principal, name, body, runtime.box, runtime.settings.provider_allowed_hosts
        )
    runtime.caller.forget_connections(principal.project_id)
    return connection_out(row)


@router.delete("/{name}", status_code=204, summary="Remove a provider connection")
async def delete_connection(name: str, request: Request, principal: Admin) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        await service.delete_connection(session, principal, name)
    runtime.caller.forget_connections(principal.project_id)
    return Response(status_code=204)


@models_router.get("", response_model=list[ModelOut], summary="Model catalog with this project's prices")
async def list_models(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROMPT_READ))]
) -> list[ModelOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.list_models(session, principal)
    return [
        ModelOut(
            provider=p,
            model=m,
            input_per_1m=price.input_per_1m,
            output_per_1m=price.output_per_1m,
            context_window=price.context_window,
            source=price.source,
        )
        for p, m, price in rows
    ]


@models_router.put("/prices", response_model=ModelOut, summary="Override a model's price for this project")
async def set_price(body: PriceIn, request: Request, principal: Admin) -> ModelOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        row = await service.set_price(session, principal, body)
    runtime.caller.forget_connections(principal.project_id)
    return ModelOut(
        provider=row.provider,
        model=row.model,
        input_per_1m=row.input_per_1m,
        output_per_1m=row.output_per_1m,
        context_window=row.context_window,
        source="project",
    )
