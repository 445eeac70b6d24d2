"""Who is making a request, in which project, with which role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from promptops.governance.rbac import Permission, Role, ensure_permission, has_permission


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "api_key", "system"]
    id: str
    name: str
    project_id: str
    org_id: str
    role: Role
    user_id: str | None = None
    session_id: str | None = None

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)

    def require(self, permission: Permission) -> None:
        ensure_permission(self.role, permission)

    @property
    def display(self) -> str:
        return self.name if self.kind != "api_key" else f"apikey:{self.name}"


def system_principal(project_id: str, org_id: str) -> Principal:
    """The server itself (bootstrap, migrations of data): full rights in one project."""
    return Principal(
        kind="system", id="system", name="system", project_id=project_id, org_id=org_id, role=Role.ADMIN
    )
