"""Tenant scoping and project management.

Every query on a tenant-owned table goes through :func:`scoped`, so a row of another
project is simply not found (404), never forbidden (403) and never returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.models import Membership
from promptops.auth.principal import Principal
from promptops.errors import Conflict, Forbidden, NotFound, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.ids import new_id
from promptops.tenancy.models import Project

SelectT = TypeVar("SelectT", bound=Select)
ModelT = TypeVar("ModelT")
PROJECT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def scoped(stmt: SelectT, model: Any, principal: Principal) -> SelectT:
    """Restrict a SELECT on a tenant-owned model to the principal's project."""
    return stmt.where(model.project_id == principal.project_id)


async def get_scoped(
    session: AsyncSession,
    principal: Principal,
    model: type[ModelT],
    value: str,
    *,
    missing: str,
    code: str,
    column: Any = None,
    for_update: bool = False,
) -> ModelT:
    """The row of ``model`` in the principal's project whose ``column`` (default: id) is ``value``.

    Absent rows and rows of other projects are both ``NotFound(missing, code=code)`` (404).
    """
    where = (model.id if column is None else column) == value  # type: ignore[attr-defined]
    stmt = scoped(select(model), model, principal).where(where)
    if for_update:
        stmt = stmt.with_for_update()
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFound(missing, code=code)
    return found


async def get_scoped_many(
    session: AsyncSession, principal: Principal, model: type[ModelT], ids: Iterable[str]
) -> dict[str, ModelT]:
    """The rows of ``model`` in the principal's project with these ids, by id; unknown ids are left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = scoped(select(model), model, principal).where(model.id.in_(wanted))  # type: ignore[attr-defined]
    return {row.id: row for row in (await session.execute(stmt)).scalars()}  # type: ignore[attr-defined]


async def project_settings(session: AsyncSession, project_id: str) -> dict[str, Any]:
    """A project's settings object (``{}`` when unset or when the project does not exist)."""
    project = await session.get(Project, project_id)
    return dict(project.settings or {}) if project is not None else {}


def validate_project_name(name: str) -> str:
    if not PROJECT_NAME_RE.match(name):
        raise ValidationProblem(
            "Project name must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            code="invalid_project_name",
        )
    return name


async def list_projects(session: AsyncSession, principal: Principal) -> list[tuple[Project, str]]:
    """Projects the principal can see, with its role in each: a key sees its one project."""
    if principal.user_id is None:
        project = await session.get(Project, principal.project_id)
        return [(project, principal.role.value)] if project else []
    rows = await session.execute(
        select(Project, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == principal.user_id)
        .order_by(Project.name)
    )
    return [(p, r) for p, r in rows]


async def project_name(session: AsyncSession, project_id: str) -> str | None:
    """The project's name (None: no such project)."""
    return await session.scalar(select(Project.name).where(Project.id == project_id))


async def create_project(
    session: AsyncSession, principal: Principal, name: str, description: str = ""
) -> Project:
    """Create a project in the principal's organization; a user creator becomes its PromptOpsAdmin."""
    if principal.user_id is None:
        raise Forbidden(
            "Projects are created by users: an API key is bound to its one project and could not use a new one",
            code="user_required",
        )
    validate_project_name(name)
    exists = (
        await session.execute(
            select(Project.id).where(Project.org_id == principal.org_id, Project.name == name)
        )
    ).first()
    if exists is not None:
        raise Conflict(f"Project {name!r} already exists", code="project_exists")
    project = Project(
        id=new_id("project"), org_id=principal.org_id, name=name, description=description, settings={}
    )
    session.add(project)
    await session.flush()
    await audit.ensure_chain(session, project.id)
    session.add(
        Membership(id=new_id("membership"), project_id=project.id, user_id=principal.user_id, role=Role.ADMIN)
    )
    await audit.record(session, principal, "ProjectCreated", data={"projectId": project.id, "name": name})
    await audit.record(
        session,
        principal,
        "ProjectCreated",
        data={"projectId": project.id, "name": name},
        project_id=project.id,
    )
    await audit.record(
        session,
        principal,
        "MemberAdded",
        data={"userId": principal.user_id, "role": Role.ADMIN.value},
        project_id=project.id,
    )
    return project


async def update_project(
    session: AsyncSession,
    principal: Principal,
    description: str | None = None,
    settings: dict[str, Any] | None = None,
) -> Project:
    """Change the principal's project description or settings (e.g. ``deployableLabels``)."""
    project = await session.get(Project, principal.project_id)
    if project is None:
        raise NotFound("Project not found", code="project_not_found")
    changes: dict[str, Any] = {}
    if description is not None and description != project.description:
        changes["description"] = {"from": project.description, "to": description}
        project.description = description
    if settings:
        merged = {**(project.settings or {}), **settings}
        if merged != project.settings:
            changes["settings"] = {"from": project.settings, "to": merged}
            project.settings = merged
    if changes:
        await audit.record(
            session, principal, "ProjectUpdated", data={"projectId": project.id, "changes": changes}
        )
    return project


async def project_org_ids(session: AsyncSession, project_ids: Iterable[str]) -> dict[str, str]:
    """project id -> its organization's id (for work the server does on a project's behalf)."""
    ids = sorted(set(project_ids))
    if not ids:
        return {}
    rows = await session.execute(select(Project.id, Project.org_id).where(Project.id.in_(ids)))
    return {str(pid): str(org) for pid, org in rows.all()}
