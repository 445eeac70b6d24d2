"""SSO behaviour: an organization's providers, group -> role mappings per project, login states, just-in-time
provisioning, and the organization's "SSO only" policy.

A login is three short steps, so no database transaction stays open across a call to the identity provider:
``start_login`` stores a state (single use, 10 minutes, bound to the browser by a cookie digest);
``consume_state`` deletes it and returns what the callback needs (a replayed state is gone); after the code
exchange and the ID token checks (:mod:`promptops.auth.sso.oidc`), ``provision`` maps the claims to roles, creates
or updates the user and their memberships, and opens the normal login session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth import service as auth_service
from promptops.auth.models import Membership, User, UserSession
from promptops.auth.principal import Principal
from promptops.auth.sso.models import SsoIdentity, SsoLoginState, SsoOrgPolicy, SsoProvider, SsoRoleMapping
from promptops.auth.sso.oidc import AuthorizationRequest, SsoProblem
from promptops.auth.sso.schemas import SsoProviderIn, SsoProviderUpdateIn, SsoRoleMappingIn
from promptops.auth.tokens import digest, new_session_token
from promptops.crypto import SecretBox
from promptops.db import utcnow
from promptops.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.ids import new_id
from promptops.tenancy.models import Project

log = structlog.get_logger("promptops.sso")

LOGIN_STATE_TTL = timedelta(minutes=10)
MAX_GROUPS = 1000
DEFAULT_SCOPES: dict[str, list[str]] = {
    "generic": ["openid", "email", "profile"],
    "entra": ["openid", "email", "profile"],
    "okta": ["openid", "email", "profile", "groups"],
    "keycloak": ["openid", "email", "profile"],
    "google": ["openid", "email", "profile"],
}
# Where each provider puts groups: Entra ID `groups` (object ids, or names with cloud-only groups) and `roles`
# (app roles); Okta a `groups` claim (a Groups claim filter on the authorization server); Keycloak `groups` (the
# "Group Membership" mapper) or `realm_access.roles`; Google has no groups claim (map '*' or the hd domain).
DEFAULT_GROUPS_CLAIM: dict[str, str] = {
    "generic": "groups",
    "entra": "groups,roles",
    "okta": "groups",
    "keycloak": "groups,realm_access.roles",
    "google": "",
}
# When a user's groups map to several roles in one project, the first of these wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.PROMPT_ENGINEER, Role.COMPLIANCE, Role.QA_ANALYST, Role.VIEWER)
ANY_GROUP = "*"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
NEXT_PATH_RE = re.compile(r"^/(?![/\\])[\x21-\x7e]{0,499}$")


def _associated(provider_id: str) -> str:
    return f"sso_providers:{provider_id}:client_secret"


def _system(provider: SsoProvider, project_id: str) -> Principal:
    """Who changes memberships during a login: the provider (audited as ``sso:<name>``)."""
    return Principal(
        kind="system",
        id=provider.id,
        name=f"sso:{provider.name}",
        project_id=project_id,
        org_id=provider.org_id,
        role=Role.ADMIN,
    )


def check_issuer_url(issuer: str) -> str:
    """An https issuer (http only on loopback, for a local test IdP), without query, fragment or credentials."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationProblem(f"Issuer {issuer!r} must be an https URL", code="sso_invalid_issuer")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationProblem(
            f"Issuer {issuer!r} must use https (plain http is accepted only on loopback)",
            code="sso_invalid_issuer",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationProblem(
            f"Issuer {issuer!r} must not carry a query, fragment or credentials", code="sso_invalid_issuer"
        )
    return issuer


def _scopes(kind: str, scopes: list[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(scopes if scopes else DEFAULT_SCOPES[kind]))
    if "openid" not in chosen:
        raise ValidationProblem("scopes must include 'openid'", code="sso_openid_scope_required")
    return chosen


def _domains(domains: list[str]) -> list[str]:
    return sorted({d.strip().lower() for d in domains})


# --- configuration (the principal's organization) ----------------------------------------------------------------


async def list_providers(session: AsyncSession, principal: Principal) -> list[SsoProvider]:
    rows = await session.execute(
        select(SsoProvider).where(SsoProvider.org_id == principal.org_id).order_by(SsoProvider.name)
    )
    return list(rows.scalars())


async def get_provider(session: AsyncSession, principal: Principal, name: str) -> SsoProvider:
    row = (
        await session.execute(
            select(SsoProvider).where(SsoProvider.org_id == principal.org_id, SsoProvider.name == name)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"SSO provider {name!r} not found", code="sso_provider_not_found")
    return row


def _audit_view(row: SsoProvider) -> dict[str, Any]:
    # No secret: only that one is set.
    return {
        "providerId": row.id,
        "name": row.name,
        "kind": row.kind,
        "issuer": row.issuer,
        "clientId": row.client_id,
        "scopes": row.scopes,
        "allowedDomains": row.allowed_domains,
        "groupsClaim": row.groups_claim,
        "linkExistingUsers": row.link_existing_users,
        "enabled": row.enabled,
    }


async def create_provider(
    session: AsyncSession, principal: Principal, body: SsoProviderIn, box: SecretBox
) -> SsoProvider:
    """Add a provider to the principal's organization (its issuer was checked by discovery beforehand)."""
    check_issuer_url(body.issuer)
    if (
        await session.execute(select(SsoProvider.id).where(SsoProvider.name == body.name))
    ).first() is not None:
        raise Conflict(f"An SSO provider named {body.name!r} already exists", code="sso_provider_exists")
    now = utcnow()
    row = SsoProvider(
        id=new_id("sso_provider"),
        org_id=principal.org_id,
        name=body.name,
        display_name=body.display_name or body.name,
        kind=body.kind,
        issuer=body.issuer,
        client_id=body.client_id,
        scopes=_scopes(body.kind, body.scopes),
        allowed_domains=_domains(body.allowed_domains),
        groups_claim=DEFAULT_GROUPS_CLAIM[body.kind] if body.groups_claim is None else body.groups_claim,
        link_existing_users=body.link_existing_users,
        enabled=body.enabled,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    row.client_secret_enc = box.encrypt(body.client_secret, _associated(row.id))
    session.add(row)
    await session.flush()
    await audit.record(session, principal, "SsoProviderCreated", data=_audit_view(row))
    return row


async def update_provider(
    session: AsyncSession, principal: Principal, name: str, body: SsoProviderUpdateIn, box: SecretBox
) -> SsoProvider:
    row = await get_provider(session, principal, name)
    changed: list[str] = []
    if body.display_name is not None and body.display_name != row.display_name:
        row.display_name = body.display_name or row.name
        changed.append("displayName")
    if body.client_secret is not None:
        row.client_secret_enc = box.encrypt(body.client_secret, _associated(row.id))
        changed.append("clientSecret")
    if body.scopes is not None and _scopes(row.kind, body.scopes) != row.scopes:
        row.scopes = _scopes(row.kind, body.scopes)
        changed.append("scopes")
    if body.allowed_domains is not None and _domains(body.allowed_domains) != row.allowed_domains:
        row.allowed_domains = _domains(body.allowed_domains)
        changed.append("allowedDomains")
    if body.groups_claim is not None and body.groups_claim != row.groups_claim:
        row.groups_claim = body.groups_claim
        changed.append("groupsClaim")
    if body.link_existing_users is not None and body.link_existing_users != row.link_existing_users:
        row.link_existing_users = body.link_existing_users
        changed.append("linkExistingUsers")
    if body.enabled is not None and body.enabled != row.enabled:
        row.enabled = body.enabled
        changed.append("enabled")
    if changed:
        row.updated_at = utcnow()
        await audit.record(
            session, principal, "SsoProviderUpdated", data={**_audit_view(row), "changed": changed}
        )
    return row


async def delete_provider(session: AsyncSession, principal: Principal, name: str) -> None:
    """Remove a provider with its mappings and identities; the memberships it gave stay (remove members to revoke)."""
    row = await get_provider(session, principal, name)
    view = _audit_view(row)
    await session.delete(row)
    await session.flush()
    await audit.record(session, principal, "SsoProviderDeleted", data=view)


async def get_mappings(session: AsyncSession, principal: Principal, name: str) -> list[SsoRoleMapping]:
    provider = await get_provider(session, principal, name)
    rows = await session.execute(
        select(SsoRoleMapping)
        .where(SsoRoleMapping.provider_id == provider.id, SsoRoleMapping.project_id == principal.project_id)
        .order_by(SsoRoleMapping.group_value)
    )
    return list(rows.scalars())


async def set_mappings(
    session: AsyncSession, principal: Principal, name: str, mappings: list[SsoRoleMappingIn]
) -> list[SsoRoleMapping]:
    """Replace the principal's project's mappings for a provider (applied at each member's next login)."""
    provider = await get_provider(session, principal, name)
    seen: set[str] = set()
    for mapping in mappings:
        if mapping.group in seen:
            raise ValidationProblem(f"Group {mapping.group!r} is mapped twice", code="sso_duplicate_mapping")
        seen.add(mapping.group)
    before = await get_mappings(session, principal, name)
    previous = {m.group_value: m.role for m in before}
    await session.execute(
        delete(SsoRoleMapping).where(
            SsoRoleMapping.provider_id == provider.id, SsoRoleMapping.project_id == principal.project_id
        )
    )
    rows = [
        SsoRoleMapping(
            id=new_id("sso_mapping"),
            provider_id=provider.id,
            project_id=principal.project_id,
            group_value=m.group,
            role=m.role.value,
        )
        for m in mappings
    ]
    session.add_all(rows)
    await session.flush()
    current = {m.group: m.role.value for m in mappings}
    if current != previous:
        await audit.record(
            session,
            principal,
            "SsoMappingsChanged",
            data={"provider": provider.name, "from": previous, "to": current},
        )
    return sorted(rows, key=lambda r: r.group_value)


async def get_policy(session: AsyncSession, org_id: str) -> SsoOrgPolicy:
    policy = await session.get(SsoOrgPolicy, org_id)
    return policy if policy is not None else SsoOrgPolicy(org_id=org_id, sso_only=False, updated_at=utcnow())


async def set_policy(session: AsyncSession, principal: Principal, sso_only: bool) -> SsoOrgPolicy:
    policy = await session.get(SsoOrgPolicy, principal.org_id)
    if sso_only:
        enabled = (
            await session.execute(
                select(SsoProvider.id).where(
                    SsoProvider.org_id == principal.org_id, SsoProvider.enabled.is_(True)
                )
            )
        ).first()
        if enabled is None:
            raise ValidationProblem(
                "Add an enabled SSO provider before making single sign-on the only way in",
                code="sso_no_provider",
            )
    if policy is None:
        policy = SsoOrgPolicy(org_id=principal.org_id, sso_only=False, updated_at=utcnow())
        session.add(policy)
    if policy.sso_only != sso_only:
        previous = policy.sso_only
        policy.sso_only = sso_only
        policy.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            principal,
            "SsoPolicyChanged",
            data={"orgId": principal.org_id, "ssoOnly": {"from": previous, "to": sso_only}},
        )
    return policy


async def check_password_login(session: AsyncSession, email: str, break_glass_email: str) -> bool:
    """Refuse a password login (401 ``sso_required``, like ``user_disabled``) for a member of an "SSO only" organization.

    The bootstrap admin (``break_glass_email``) is exempt, so a broken IdP cannot lock everyone out; returns
    True when that exemption was used (the caller audits it).
    """
    normalized = email.strip().lower()
    user = await auth_service.user_by_email(session, normalized)
    if user is None:
        return False
    orgs = (
        await session.execute(
            select(SsoOrgPolicy.org_id)
            .join(Project, Project.org_id == SsoOrgPolicy.org_id)
            .join(Membership, Membership.project_id == Project.id)
            .where(Membership.user_id == user.id, SsoOrgPolicy.sso_only.is_(True))
            .limit(1)
        )
    ).first()
    if orgs is None:
        return False
    if normalized == break_glass_email.strip().lower():
        return True
    raise Unauthenticated(
        "Your organization requires single sign-on: use 'Sign in with SSO' (password logins are turned off)",
        code="sso_required",
    )


# --- login ---------------------------------------------------------------------------------------------------------


async def login_options(session: AsyncSession) -> list[SsoProvider]:
    """Enabled providers, for the login page (name and display name only)."""
    rows = await session.execute(
        select(SsoProvider).where(SsoProvider.enabled.is_(True)).order_by(SsoProvider.name)
    )
    return list(rows.scalars())


async def provider_for_login(session: AsyncSession, name: str) -> SsoProvider:
    row = (await session.execute(select(SsoProvider).where(SsoProvider.name == name))).scalar_one_or_none()
    if row is None or not row.enabled:
        raise NotFound(f"No enabled SSO provider named {name!r}", code="sso_provider_not_found")
    return row


def safe_next_path(next_path: str | None) -> str:
    """Only a local path (no scheme, host or '//'): the callback must not become an open redirect."""
    if not next_path:
        return "/"
    if not NEXT_PATH_RE.match(next_path):
        raise ValidationProblem(
            "next must be a local path starting with a single '/'", code="sso_invalid_next"
        )
    return next_path


async def start_login(
    session: AsyncSession,
    provider: SsoProvider,
    request: AuthorizationRequest,
    *,
    browser_secret: str,
    redirect_uri: str,
    next_path: str,
) -> None:
    """Store a started login (its state, nonce and PKCE verifier) and sweep expired ones."""
    now = utcnow()
    await session.execute(delete(SsoLoginState).where(SsoLoginState.expires_at <= now))
    session.add(
        SsoLoginState(
            state_hash=digest(request.state),
            provider_id=provider.id,
            browser_hash=digest(browser_secret),
            nonce=request.nonce,
            code_verifier=request.code_verifier,
            redirect_uri=redirect_uri,
            next_path=next_path,
            created_at=now,
            expires_at=now + LOGIN_STATE_TTL,
        )
    )
    await session.flush()


@dataclass(frozen=True)
class PendingLogin:
    provider: SsoProvider
    client_secret: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str


async def consume_state(
    session: AsyncSession, provider_name: str, state: str, browser_secret: str | None, box: SecretBox
) -> PendingLogin | SsoProblem:
    """Take a started login out of the store: a state works once, within 10 minutes, from the same browser.

    A state presented at all is spent, even when a check fails (the caller commits, then raises the problem
    returned): a state that reached another browser must not work afterwards for anyone.
    """
    row = await session.get(SsoLoginState, digest(state), with_for_update=True)
    if row is None:
        return SsoProblem(
            "Unknown or already used login state; start the sign-in again",
            code="sso_state_invalid",
            status=400,
        )
    await session.delete(row)
    await session.flush()
    provider = await session.get(SsoProvider, row.provider_id)
    if provider is None or provider.name != provider_name or not provider.enabled:
        return SsoProblem("This login was started for another provider", code="sso_state_invalid", status=400)
    if row.expires_at <= utcnow():
        return SsoProblem("The sign-in took too long; start it again", code="sso_state_expired", status=400)
    if not browser_secret or digest(browser_secret) != row.browser_hash:
        return SsoProblem(
            "This sign-in was started in another browser (or its cookie is missing); start it again",
            code="sso_browser_mismatch",
            status=400,
        )
    return PendingLogin(
        provider=provider,
        client_secret=box.decrypt(provider.client_secret_enc, _associated(provider.id)),
        nonce=row.nonce,
        code_verifier=row.code_verifier,
        redirect_uri=row.redirect_uri,
        next_path=row.next_path,
    )


@dataclass(frozen=True)
class SsoIdentityClaims:
    subject: str
    email: str
    name: str
    groups: frozenset[str]


def _claim_path(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def identity_from_claims(provider: SsoProvider, claims: dict[str, Any]) -> SsoIdentityClaims:
    """Subject, email, name and groups from validated ID token claims, with each provider's quirks."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SsoProblem("The ID token's 'sub' is missing or too long", code="sso_token_invalid")
    email = claims.get("email")
    if not email and provider.kind == "entra":
        # Entra ID sends `email` only when the account has a mailbox / the optional claim is configured;
        # preferred_username (v2.0) or upn is the sign-in name, usually the address.
        email = claims.get("preferred_username") or claims.get("upn")
    if not isinstance(email, str) or "@" not in email:
        raise SsoProblem(
            "The identity provider sent no email address; add the 'email' scope (and, for Entra ID, the email "
            "optional claim)",
            code="sso_email_missing",
        )
    email = email.strip().lower()
    if claims.get("email_verified") is False:
        raise SsoProblem(f"The identity provider has not verified {email}", code="sso_email_unverified")
    domain = email.rsplit("@", 1)[1]
    if provider.allowed_domains and domain not in provider.allowed_domains:
        raise SsoProblem(
            f"Email domain {domain!r} is not allowed for provider {provider.name!r}",
            code="sso_domain_not_allowed",
        )
    # Google Workspace accounts carry `hd`; a consumer account with an address in the domain does not.
    google_domain = claims.get("hd")
    if (
        provider.kind == "google"
        and provider.allowed_domains
        and google_domain not in provider.allowed_domains
    ):
        raise SsoProblem(
            "The Google account is not in an allowed Workspace domain (hd claim)",
            code="sso_domain_not_allowed",
        )
    groups: set[str] = set()
    for path in filter(None, (p.strip() for p in provider.groups_claim.split(","))):
        names = claims.get("_claim_names")
        if (isinstance(names, dict) and path in names) or (
            path == "groups" and claims.get("hasgroups") is True
        ):
            # Entra ID group overage: too many groups for a token, sent by reference to Microsoft Graph instead.
            raise SsoProblem(
                "The identity provider sent the groups by reference (Entra ID group overage: more than 200 "
                "groups); assign groups to the application and emit only those, or map app roles ('roles')",
                code="sso_group_overage",
            )
        value = _claim_path(claims, path)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            groups.update(str(v) for v in value if isinstance(v, str | int) and len(str(v)) <= 256)
    if len(groups) > MAX_GROUPS:
        raise SsoProblem(f"More than {MAX_GROUPS} groups in the token", code="sso_too_many_groups")
    name = claims.get("name")
    return SsoIdentityClaims(
        subject=subject,
        email=email,
        name=name[:200] if isinstance(name, str) else "",
        groups=frozenset(groups),
    )


async def _desired_roles(
    session: AsyncSession, provider: SsoProvider, groups: frozenset[str]
) -> dict[str, Role]:
    rows = await session.execute(
        select(SsoRoleMapping)
        .join(Project, Project.id == SsoRoleMapping.project_id)
        .where(SsoRoleMapping.provider_id == provider.id, Project.org_id == provider.org_id)
    )
    desired: dict[str, Role] = {}
    for mapping in rows.scalars():
        if mapping.group_value != ANY_GROUP and mapping.group_value not in groups:
            continue
        role = Role(mapping.role)
        current = desired.get(mapping.project_id)
        if current is None or ROLE_PRECEDENCE.index(role) < ROLE_PRECEDENCE.index(current):
            desired[mapping.project_id] = role
    return desired


async def provision(
    session: AsyncSession, provider: SsoProvider, identity: SsoIdentityClaims, ttl: timedelta
) -> tuple[str, UserSession, Principal] | None:
    """Find or create the user, bring the memberships the mappings manage in line, and open a login session.

    None when the user is left without any membership (nothing to sign in to; the revocations stand)."""
    link = (
        await session.execute(
            select(SsoIdentity).where(
                SsoIdentity.provider_id == provider.id, SsoIdentity.subject == identity.subject
            )
        )
    ).scalar_one_or_none()
    desired = await _desired_roles(session, provider, identity.groups)
    first_project = next(iter(sorted(desired)), None)
    user: User | None
    if link is not None:
        user = await session.get(User, link.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("This user is disabled", code="user_disabled")
    else:
        if not desired:
            raise SsoProblem(
                f"No project maps your groups at provider {provider.name!r} to a role; ask an admin to add a mapping",
                code="sso_no_role",
            )
        user = await auth_service.user_by_email(session, identity.email)
        if user is not None:
            if not provider.link_existing_users:
                raise Conflict(
                    f"A PromptOps account with this email already exists; an admin can allow provider "
                    f"{provider.name!r} to sign in existing users (linkExistingUsers)",
                    code="sso_account_exists",
                )
            if not user.is_active:
                raise Unauthenticated("This user is disabled", code="user_disabled")
            linked = True
        else:
            user = await auth_service.create_user(session, identity.email, None, identity.name)
            linked = False
        link = SsoIdentity(
            id=new_id("sso_identity"),
            provider_id=provider.id,
            subject=identity.subject,
            user_id=user.id,
            managed_projects=[],
            created_at=utcnow(),
        )
        session.add(link)
        await session.flush()
        assert first_project is not None
        await audit.record(
            session,
            _system(provider, first_project),
            "SsoIdentityLinked" if linked else "SsoUserProvisioned",
            data={"userId": user.id, "provider": provider.name, "identityId": link.id},
        )
    await _sync_memberships(session, provider, link, user.id, desired)
    link.last_login_at = utcnow()
    token = new_session_token()
    user_session = UserSession(
        id=new_id("session"),
        user_id=user.id,
        token_hash=digest(token),
        csrf_token=new_session_token()[4:],
        expires_at=utcnow() + ttl,
    )
    session.add(user_session)
    await session.flush()
    try:
        principal = await auth_service.user_principal(
            session, user, first_project, session_id=user_session.id
        )
    except (NotFound, Forbidden):
        # Memberships were just revoked by the mapping: keep that (the caller commits), open no session.
        await session.delete(user_session)
        return None
    await audit.record(
        session,
        principal,
        "UserLoggedIn",
        data={"sessionId": user_session.id, "method": "sso", "provider": provider.name},
    )
    return token, user_session, principal


async def _sync_memberships(
    session: AsyncSession, provider: SsoProvider, link: SsoIdentity, user_id: str, desired: dict[str, Role]
) -> None:
    managed = set(link.managed_projects or [])
    existing = {
        m.project_id: m
        for m in (await session.execute(select(Membership).where(Membership.user_id == user_id))).scalars()
    }
    for project_id, role in sorted(desired.items()):
        actor = _system(provider, project_id)
        membership = existing.get(project_id)
        if membership is None:
            session.add(
                Membership(id=new_id("membership"), project_id=project_id, user_id=user_id, role=role.value)
            )
            await session.flush()
            await audit.record(
                session,
                actor,
                "MemberAdded",
                data={"userId": user_id, "role": role.value, "via": provider.name},
            )
        elif membership.role != role.value:
            previous = membership.role
            membership.role = role.value
            await audit.record(
                session,
                actor,
                "MemberRoleChanged",
                data={"userId": user_id, "from": previous, "to": role.value, "via": provider.name},
            )
    for project_id in sorted(managed - set(desired)):
        membership = existing.get(project_id)
        if membership is not None:
            await session.delete(membership)
            await session.flush()
            await audit.record(
                session,
                _system(provider, project_id),
                "MemberRemoved",
                data={"userId": user_id, "via": provider.name},
            )
    link.managed_projects = sorted(desired)


async def end_session_target(session: AsyncSession, principal: Principal) -> SsoProvider | None:
    """The provider this user signs in with (when exactly one), whose session a logout may end too."""
    if principal.user_id is None:
        return None
    rows = list(
        (
            await session.execute(
                select(SsoProvider)
                .join(SsoIdentity, SsoIdentity.provider_id == SsoProvider.id)
                .where(SsoIdentity.user_id == principal.user_id)
            )
        ).scalars()
    )
    return rows[0] if len(rows) == 1 else None
