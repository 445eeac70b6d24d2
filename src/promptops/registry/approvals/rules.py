"""The project's approval rules (``settings.approvals``): which labels need how many approvals from which roles,
and how a rollback of such a label is treated.

Settings are validated when written (:class:`promptops.tenancy.schemas.ApprovalSettingsIn`); reading is strict
in the safe direction: a label whose rule cannot be read still needs one approval from an admin, so a damaged
setting never opens a gated label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from promptops.governance.rbac import Role
from promptops.tenancy import service as tenancy

RollbackMode = Literal["previousVersion", "sameAsForward", "admins"]
ROLLBACK_MODES: tuple[str, ...] = get_args(RollbackMode)
DEFAULT_ROLLBACK: RollbackMode = "previousVersion"
DEFAULT_ROLES: tuple[str, ...] = (Role.PROMPT_ENGINEER.value, Role.ADMIN.value)
MAX_REQUIRED = 10


@dataclass(frozen=True)
class ApprovalRule:
    """A label that needs ``required`` approvals from members holding one of ``roles``."""

    label: str
    required: int
    roles: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalPolicy:
    rules: dict[str, ApprovalRule]
    rollback: RollbackMode = DEFAULT_ROLLBACK

    def rule_for(self, label: str) -> ApprovalRule | None:
        return self.rules.get(label)


def _rule(label: str, raw: Any) -> ApprovalRule:
    fail_closed = ApprovalRule(label, 1, (Role.ADMIN.value,))
    if not isinstance(raw, dict):
        return fail_closed
    required = raw.get("required", 1)
    roles = raw.get("roles", list(DEFAULT_ROLES))
    known = {r.value for r in Role}
    if (
        not isinstance(required, int)
        or not 1 <= required <= MAX_REQUIRED
        or not isinstance(roles, list)
        or not roles
        or not all(isinstance(r, str) and r in known for r in roles)
    ):
        return fail_closed
    return ApprovalRule(label, required, tuple(roles))


def policy_from_settings(raw: Any) -> ApprovalPolicy:
    """The policy a project's ``settings.approvals`` value describes (no rules when unset)."""
    if not isinstance(raw, dict):
        return ApprovalPolicy({})
    labels = raw.get("labels")
    rules = {str(k): _rule(str(k), v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    rollback = raw.get("rollback", DEFAULT_ROLLBACK)
    # An unknown mode is read as the strictest one: a rollback needs the same approvals as a forward move.
    mode: RollbackMode = rollback if rollback in ROLLBACK_MODES else "sameAsForward"
    return ApprovalPolicy(rules, mode)


async def approval_policy(session: AsyncSession, project_id: str) -> ApprovalPolicy:
    """The project's approval rules as its settings hold them now."""
    return policy_from_settings((await tenancy.project_settings(session, project_id)).get("approvals"))
