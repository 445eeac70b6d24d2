"""Who is making a request, in which project, with which role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from promptops.errors import Forbidden
from promptops.governance.rbac import ROLE_PERMISSIONS, Permission, Role, ensure_permission, has_permission


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
    # An API key limited to part of its role (read-only, say): only these permissions; None: the whole role.
    scopes: frozenset[Permission] | None = None

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission) and (self.scopes is None or permission in self.scopes)

    def require(self, permission: Permission) -> None:
        ensure_permission(self.role, permission)
        if self.scopes is not None and permission not in self.scopes:
            raise Forbidden(
                f"This API key is limited to {len(self.scopes)} permission(s) and lacks {permission.value}",
                code="permission_denied",
                permission=permission.value,
            )

    @property
    def permissions(self) -> frozenset[Permission]:
        """What this principal may do: its role's permissions, narrowed by the key's scopes."""
        granted = ROLE_PERMISSIONS.get(self.role, frozenset())
        return granted if self.scopes is None else granted & self.scopes

    @property
    def display(self) -> str:
        return self.name if self.kind != "api_key" else f"apikey:{self.name}"


def system_principal(project_id: str, org_id: str) -> Principal:
    """The server itself (bootstrap, migrations of data): full rights in one project."""
    return Principal(
        kind="system", id="system", name="system", project_id=project_id, org_id=org_id, role=Role.ADMIN
    )
