"""REST face of projects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.governance.rbac import Role
from promptops.idempotency import idempotent
from promptops.runtime import runtime_of
from promptops.tenancy import service
from promptops.tenancy.models import Project
from promptops.tenancy.schemas import ProjectIn, ProjectOut, ProjectUpdateIn

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


def project_out(project: Project, role: str) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        org_id=project.org_id,
        name=project.name,
        description=project.description,
        settings=project.settings or {},
        role=Role(role),
        created_at=project.created_at,
    )


@router.get("", response_model=list[ProjectOut], summary="Projects you can access")
async def list_projects(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> list[ProjectOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.list_projects(session, principal)
    return [project_out(p, r) for p, r in rows]


@router.post("", status_code=201, response_model=ProjectOut, summary="Create a project in your organization")
@idempotent
async def create_project(
    body: ProjectIn, request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_CREATE))]
) -> ProjectOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        project = await service.create_project(session, principal, body.name, body.description)
    return project_out(project, Role.ADMIN)


@router.patch("/current", response_model=ProjectOut, summary="Update the current project")
async def update_project(
    body: ProjectUpdateIn,
    request: Request,
    principal: Annotated[Principal, Depends(require(P.PROJECT_MANAGE))],
) -> ProjectOut:
    settings = body.settings.model_dump(by_alias=True, exclude_none=True) if body.settings else None
    async with runtime_of(request).db.transaction(write=True) as session:
        project = await service.update_project(session, principal, body.description, settings)
    return project_out(project, principal.role)
