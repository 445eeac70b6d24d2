"""The permission matrix in docs/api.md section 2 is the one in code (governance/rbac.py), row for row, and
docs/security.md names every permission, so the documents cannot drift from what the server enforces."""

from __future__ import annotations

import re
from pathlib import Path

from promptops.governance.rbac import ROLE_PERMISSIONS, Permission, Role

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_matrix() -> dict[str, set[str]]:
    """{permission: roles with a tick} from the table of docs/api.md section 2."""
    text = (DOCS / "api.md").read_text()
    section = text[text.index("## 2. Roles and permissions") : text.index("## 3. Endpoints")]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "Permission", header
    roles = header[1:]
    matrix: dict[str, set[str]] = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        found = re.fullmatch(r"`([a-z]+:[a-z]+)`", cells[0])
        if found is None:  # the end of the matrix: the route table follows
            break
        assert len(cells) == len(header), line
        matrix[found.group(1)] = {role for role, cell in zip(roles, cells[1:], strict=True) if cell == "✔"}
    return matrix


def test_api_docs_matrix_is_the_rbac_matrix() -> None:
    in_code = {p.value: {r.value for r in Role if p in ROLE_PERMISSIONS[r]} for p in Permission}
    documented = documented_matrix()
    assert set(documented) == set(in_code), "permissions missing from or unknown to docs/api.md section 2"
    for permission, roles in in_code.items():
        assert documented[permission] == roles, permission


def test_security_docs_name_every_non_admin_permission() -> None:
    text = (DOCS / "security.md").read_text()
    table = text[text.index("| Role | Permissions |") :].split("\n\n", 1)[0]
    for role in Role:
        assert f"| {role.value} |" in table, role
    for permission in Permission:
        if any(permission in ROLE_PERMISSIONS[role] for role in Role if role is not Role.ADMIN):
            assert permission.value in table, permission
