"""Roles, permissions (``resource:action``) and the one authorization check.

The table below is the whole policy: a route declares one permission, a principal's role grants a set.
"""

from __future__ import annotations

from enum import StrEnum

from promptops.errors import Forbidden


class Role(StrEnum):
    VIEWER = "Viewer"
    QA_ANALYST = "QAAnalyst"
    PROMPT_ENGINEER = "PromptEngineer"
    ADMIN = "PromptOpsAdmin"
    COMPLIANCE = "ComplianceOfficer"


class Permission(StrEnum):
    PROJECT_READ = "project:read"
    PROJECT_CREATE = "project:create"
    PROJECT_MANAGE = "project:manage"
    PROMPT_READ = "prompt:read"
    PROMPT_WRITE = "prompt:write"
    LABEL_WRITE = "label:write"
    LABEL_DEPLOY = "label:deploy"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    APIKEY_READ = "apikey:read"
    APIKEY_MANAGE = "apikey:manage"
    MEMBER_READ = "member:read"
    MEMBER_MANAGE = "member:manage"
    PROVIDER_MANAGE = "provider:manage"
    RUN_READ = "run:read"
    RUN_WRITE = "run:write"  # record runs made elsewhere (SDK traces)
    GATEWAY_CALL = "gateway:call"  # call models through the OpenAI/Anthropic-compatible gateway
    PLAYGROUND_RUN = "playground:run"
    DATASET_READ = "dataset:read"
    DATASET_WRITE = "dataset:write"
    EVAL_READ = "eval:read"
    EVAL_RUN = "eval:run"
    PROMPT_OPTIMIZE = "prompt:optimize"  # generate, refine and optimize (PromptOpt); saves draft versions
    FEEDBACK_READ = "feedback:read"
    FEEDBACK_WRITE = "feedback:write"
    ANNOTATION_MANAGE = "annotation:manage"
    EXPERIMENT_READ = "experiment:read"
    EXPERIMENT_MANAGE = "experiment:manage"  # create, start, pause, resume, stop, ship live experiments
    EXPERIMENT_TRACK = "experiment:track"  # post outcome events of an experiment (from an application)
    ALERT_READ = "alert:read"  # see alerts with their history, alert rules, channels and the delivery log
    ALERT_MANAGE = "alert:manage"  # acknowledge/resolve alerts; create, change, delete rules and channels
    MONITORING_MANAGE = (
        "monitoring:manage"  # configure online evaluation (sample rate, scorers) of production runs
    )
    PRIVACY_READ = "privacy:read"  # see the project's retention policy
    PRIVACY_EXPORT = "privacy:export"  # find a data subject and export everything about it (DSAR)
    PRIVACY_ERASE = "privacy:erase"  # erase a data subject (crypto-shredding)
    RETENTION_MANAGE = "retention:manage"  # set and apply the project's retention policy
    APPROVAL_READ = "approval:read"  # see approval requests of gated labels (with diff, lint, evaluation)
    APPROVAL_REVIEW = "approval:review"  # approve or reject them (the label's rule names which roles count)
    APPROVAL_OVERRIDE = "approval:override"  # move a gated label without the approvals, with a note
    SSO_READ = "sso:read"  # see the organization's SSO providers, policy and the project's role mappings
    SSO_MANAGE = "sso:manage"  # configure SSO providers, the project's role mappings and "SSO only"
    AUDIT_KEY_MANAGE = "auditkey:manage"  # rotate the organization's audit/pack signing key
    PACK_EXPORT = "pack:export"  # export prompts (and datasets) as a template pack signed by the organization
    PACK_IMPORT = "pack:import"  # preview and import template packs (creates prompts, versions, datasets)


P = Permission
_VIEWER = {
    P.PROJECT_READ,
    P.PROMPT_READ,
    P.MEMBER_READ,
    P.RUN_READ,
    P.EVAL_READ,
    P.FEEDBACK_READ,
    P.DATASET_READ,
    P.EXPERIMENT_READ,
    P.APPROVAL_READ,
    P.ALERT_READ,
}
# QA analysts rate and comment (feedback), fill and work the annotation queue, curate test datasets and
# run evaluations against them.
_QA = _VIEWER | {P.FEEDBACK_WRITE, P.ANNOTATION_MANAGE, P.DATASET_WRITE, P.EVAL_RUN, P.APPROVAL_REVIEW}
_ENGINEER = _QA | {
    P.PROMPT_WRITE,
    P.LABEL_WRITE,
    P.LABEL_DEPLOY,
    P.AUDIT_READ,
    P.PLAYGROUND_RUN,
    P.RUN_WRITE,
    P.GATEWAY_CALL,
    P.EVAL_RUN,
    P.PROMPT_OPTIMIZE,
    P.EXPERIMENT_MANAGE,
    P.EXPERIMENT_TRACK,
    P.MONITORING_MANAGE,
    P.ALERT_MANAGE,
    P.PACK_EXPORT,
    P.PACK_IMPORT,
}
_COMPLIANCE = _VIEWER | {
    P.AUDIT_READ,
    P.AUDIT_VERIFY,
    P.APIKEY_READ,
    P.PRIVACY_READ,
    P.PRIVACY_EXPORT,
    P.PRIVACY_ERASE,
    P.RETENTION_MANAGE,
    P.APPROVAL_REVIEW,
    P.SSO_READ,
}
_ADMIN = set(Permission)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.QA_ANALYST: frozenset(_QA),
    Role.PROMPT_ENGINEER: frozenset(_ENGINEER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.COMPLIANCE: frozenset(_COMPLIANCE),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        from promptops.errors import ValidationProblem

        raise ValidationProblem(f"Unknown role {value!r}; expected one of: {allowed}", code="invalid_role")


def has_permission(role: Role | str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(Role(role), frozenset())


def ensure_permission(role: Role | str, permission: Permission) -> None:
    """Raise 403 unless ``role`` grants ``permission``."""
    if not has_permission(role, permission):
        raise Forbidden(
            f"Role {Role(role).value} lacks permission {permission.value}",
            code="permission_denied",
            permission=permission.value,
        )
