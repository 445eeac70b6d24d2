"""REST face of single sign-on: the browser login (login, callback, logout) and the admin configuration."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

import structlog
from authlib.common.urls import add_params_to_uri
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from promptops.auth.deps import CSRF_COOKIE, PUBLIC, SESSION_COOKIE, require
from promptops.auth.principal import Principal
from promptops.auth.sso import service
from promptops.auth.sso.models import SsoProvider, SsoRoleMapping
from promptops.auth.sso.oidc import OidcClient, SsoProblem, UrlGuard
from promptops.auth.sso.schemas import (
    SsoEndSessionOut,
    SsoLoginOptionOut,
    SsoPolicyIn,
    SsoPolicyOut,
    SsoProviderIn,
    SsoProviderOut,
    SsoProviderUpdateIn,
    SsoRoleMappingOut,
    SsoRoleMappingsIn,
    SsoRoleMappingsOut,
)
from promptops.errors import ProblemError
from promptops.governance.rbac import Permission as P
from promptops.providers.ssrf import check_base_url
from promptops.runtime import runtime_of

log = structlog.get_logger("promptops.sso")

login_router = APIRouter(prefix="/api/v1/auth/sso", tags=["sso"])
admin_router = APIRouter(prefix="/api/v1/sso", tags=["sso"])

SSO_COOKIE = "promptops_sso"
SSO_COOKIE_PATH = "/api/v1/auth/sso"
Reader = Annotated[Principal, Depends(require(P.SSO_READ))]
Manager = Annotated[Principal, Depends(require(P.SSO_MANAGE))]


def _oidc(request: Request) -> OidcClient:
    """The process's relying-party client (discovery and JWKS caches), one per app."""
    client = getattr(request.app.state, "sso_oidc", None)
    if client is None:
        client = OidcClient()
        request.app.state.sso_oidc = client
    return client


def _guard(request: Request) -> UrlGuard:
    allowed = runtime_of(request).settings.provider_allowed_hosts

    async def guard(url: str) -> None:
        await check_base_url(url, allowed)

    return guard


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _callback_url(request: Request, name: str) -> str:
    return f"{_base(request)}/api/v1/auth/sso/{name}/callback"


def _provider_out(request: Request, row: SsoProvider) -> SsoProviderOut:
    return SsoProviderOut(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        kind=row.kind,
        issuer=row.issuer,
        client_id=row.client_id,
        scopes=list(row.scopes),
        allowed_domains=list(row.allowed_domains),
        groups_claim=row.groups_claim,
        link_existing_users=row.link_existing_users,
        enabled=row.enabled,
        login_url=f"/api/v1/auth/sso/{row.name}/login",
        callback_url=_callback_url(request, row.name),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _mappings_out(name: str, project_id: str, rows: list[SsoRoleMapping]) -> SsoRoleMappingsOut:
    return SsoRoleMappingsOut(
        provider=name,
        project_id=project_id,
        mappings=[SsoRoleMappingOut(group=r.group_value, role=r.role) for r in rows],
    )


# --- browser login -------------------------------------------------------------------------------------------------


@login_router.get(
    "/providers",
    response_model=list[SsoLoginOptionOut],
    dependencies=[Depends(PUBLIC)],
    summary="SSO providers offered on the login page",
)
async def login_options(request: Request) -> list[SsoLoginOptionOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.login_options(session)
    return [
        SsoLoginOptionOut(
            name=r.name, display_name=r.display_name, login_url=f"/api/v1/auth/sso/{r.name}/login"
        )
        for r in rows
    ]


@login_router.get(
    "/{provider}/login",
    status_code=302,
    response_class=RedirectResponse,
    dependencies=[Depends(PUBLIC)],
    summary="Start an SSO login: redirect to the identity provider",
    responses={302: {"description": "To the identity provider's authorization endpoint"}},
)
async def sso_login(
    provider: str,
    request: Request,
    next: Annotated[str | None, Query(max_length=500, description="Local path to return to")] = None,
) -> RedirectResponse:
    runtime = runtime_of(request)
    next_path = service.safe_next_path(next)
    async with runtime.db.transaction() as session:
        row = await service.provider_for_login(session, provider)
    oidc = _oidc(request)
    metadata = await oidc.metadata(row.issuer, _guard(request))
    extra: dict[str, str] = {}
    if row.kind == "google" and len(row.allowed_domains) == 1:
        extra["hd"] = row.allowed_domains[
            0
        ]  # a hint for Google's account chooser; the callback checks the claim
    redirect_uri = _callback_url(request, row.name)
    authorization = oidc.authorization_request(
        metadata, row.client_id, redirect_uri, list(row.scopes), **extra
    )
    browser_secret = secrets.token_urlsafe(32)
    async with runtime.db.transaction(write=True) as session:
        await service.start_login(
            session,
            row,
            authorization,
            browser_secret=browser_secret,
            redirect_uri=redirect_uri,
            next_path=next_path,
        )
    response = RedirectResponse(authorization.url, status_code=302)
    response.set_cookie(
        SSO_COOKIE,
        browser_secret,
        max_age=int(service.LOGIN_STATE_TTL.total_seconds()),
        path=SSO_COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=runtime.settings.cookie_secure,
    )
    return response


@login_router.get(
    "/{provider}/callback",
    status_code=303,
    response_class=RedirectResponse,
    dependencies=[Depends(PUBLIC)],
    summary="Finish an SSO login: check the code and ID token, provision, start the session",
    responses={303: {"description": "To the page the login started from, with the session cookies set"}},
)
async def sso_callback(
    provider: str,
    request: Request,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
    iss: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    try:
        return await _callback(provider, request, state, code, error, error_description, iss)
    except ProblemError as exc:
        log.warning("sso_login_refused", provider=provider, code=exc.code, status=exc.status)
        if "text/html" in request.headers.get("accept", ""):
            # A browser: back to the login page, which explains the code.
            response = RedirectResponse(f"/login?ssoError={exc.code}", status_code=303)
            response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
            return response
        raise


async def _callback(
    provider: str,
    request: Request,
    state: str,
    code: str | None,
    error: str | None,
    error_description: str | None,
    iss: str | None,
) -> Response:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        pending = await service.consume_state(
            session, provider, state, request.cookies.get(SSO_COOKIE), runtime.box
        )
    if isinstance(pending, SsoProblem):
        raise pending
    row = pending.provider
    if error:
        raise SsoProblem(
            f"The identity provider refused the sign-in: {error}"
            + (f" ({error_description[:300]})" if error_description else ""),
            code="sso_denied",
        )
    if not code:
        raise SsoProblem("The callback carries no authorization code", code="sso_code_missing", status=400)
    if iss is not None and iss != row.issuer:
        # RFC 9207: the response names its issuer; another one is a mix-up attack.
        raise SsoProblem("The authorization response comes from another issuer", code="sso_wrong_issuer")
    oidc, guard = _oidc(request), _guard(request)
    metadata = await oidc.metadata(row.issuer, guard)
    tokens = await oidc.exchange_code(
        metadata,
        guard,
        client_id=row.client_id,
        client_secret=pending.client_secret,
        code=code,
        redirect_uri=pending.redirect_uri,
        code_verifier=pending.code_verifier,
    )
    access_token = tokens.get("access_token")
    claims = await oidc.validate_id_token(
        metadata,
        guard,
        tokens["id_token"],
        client_id=row.client_id,
        nonce=pending.nonce,
        access_token=access_token if isinstance(access_token, str) else None,
    )
    identity = service.identity_from_claims(row, claims)
    ttl = timedelta(hours=runtime.settings.session_ttl_hours)
    async with runtime.db.transaction(write=True) as session:
        row = await service.provider_for_login(session, provider)
        opened = await service.provision(session, row, identity, ttl)
    if opened is None:
        raise SsoProblem(
            f"No project maps your groups at provider {provider!r} to a role; ask an admin to add a mapping",
            code="sso_no_role",
        )
    token, user_session, _principal = opened
    response = RedirectResponse(pending.next_path, status_code=303)
    secure = runtime.settings.cookie_secure
    max_age = int(ttl.total_seconds())
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, user_session.csrf_token, max_age=max_age, samesite="lax", secure=secure)
    response.delete_cookie(SSO_COOKIE, path=SSO_COOKIE_PATH)
    return response


@login_router.get(
    "/end-session",
    response_model=SsoEndSessionOut,
    summary="Where to end the identity provider's session too (RP-initiated logout); call before logging out",
)
async def sso_end_session(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> SsoEndSessionOut:
    async with runtime_of(request).db.transaction() as session:
        target = await service.end_session_target(session, principal)
    end_session_url: str | None = None
    if target is not None:
        try:
            metadata = await _oidc(request).metadata(target.issuer, _guard(request))
        except ProblemError:
            metadata = None
        if metadata is not None and metadata.end_session_endpoint:
            end_session_url = add_params_to_uri(
                metadata.end_session_endpoint,
                [("client_id", target.client_id), ("post_logout_redirect_uri", f"{_base(request)}/login")],
            )
    return SsoEndSessionOut(end_session_url=end_session_url)


# --- configuration -----------------------------------------------------------------------------------------------


@admin_router.get(
    "/providers", response_model=list[SsoProviderOut], summary="The organization's SSO providers"
)
async def list_providers(request: Request, principal: Reader) -> list[SsoProviderOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.list_providers(session, principal)
    return [_provider_out(request, r) for r in rows]


@admin_router.post(
    "/providers", status_code=201, response_model=SsoProviderOut, summary="Add an OpenID Connect provider"
)
async def create_provider(body: SsoProviderIn, request: Request, principal: Manager) -> SsoProviderOut:
    runtime = runtime_of(request)
    service.check_issuer_url(body.issuer)
    # Discovery first (outside the transaction): the issuer must answer and name itself exactly.
    await _oidc(request).metadata(body.issuer, _guard(request), fresh=True)
    async with runtime.db.transaction(write=True) as session:
        row = await service.create_provider(session, principal, body, runtime.box)
    return _provider_out(request, row)


@admin_router.get("/providers/{name}", response_model=SsoProviderOut, summary="One SSO provider")
async def get_provider(name: str, request: Request, principal: Reader) -> SsoProviderOut:
    async with runtime_of(request).db.transaction() as session:
        row = await service.get_provider(session, principal, name)
    return _provider_out(request, row)


@admin_router.patch("/providers/{name}", response_model=SsoProviderOut, summary="Change an SSO provider")
async def update_provider(
    name: str, body: SsoProviderUpdateIn, request: Request, principal: Manager
) -> SsoProviderOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        row = await service.update_provider(session, principal, name, body, runtime.box)
    return _provider_out(request, row)


@admin_router.delete("/providers/{name}", status_code=204, summary="Remove an SSO provider")
async def delete_provider(name: str, request: Request, principal: Manager) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.delete_provider(session, principal, name)
    return Response(status_code=204)


@admin_router.get(
    "/providers/{name}/mappings",
    response_model=SsoRoleMappingsOut,
    summary="The project's group -> role mappings for a provider",
)
async def get_mappings(name: str, request: Request, principal: Reader) -> SsoRoleMappingsOut:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.get_mappings(session, principal, name)
    return _mappings_out(name, principal.project_id, rows)


@admin_router.put(
    "/providers/{name}/mappings",
    response_model=SsoRoleMappingsOut,
    summary="Replace the project's group -> role mappings for a provider",
)
async def set_mappings(
    name: str, body: SsoRoleMappingsIn, request: Request, principal: Manager
) -> SsoRoleMappingsOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        rows = await service.set_mappings(session, principal, name, body.mappings)
    return _mappings_out(name, principal.project_id, rows)


def _policy_out(request: Request, org_id: str, sso_only: bool) -> SsoPolicyOut:
    return SsoPolicyOut(
        org_id=org_id, sso_only=sso_only, break_glass_email=runtime_of(request).settings.bootstrap_admin_email
    )


@admin_router.get("/policy", response_model=SsoPolicyOut, summary="The organization's SSO policy")
async def get_policy(request: Request, principal: Reader) -> SsoPolicyOut:
    async with runtime_of(request).db.transaction() as session:
        policy = await service.get_policy(session, principal.org_id)
    return _policy_out(request, principal.org_id, policy.sso_only)


@admin_router.put("/policy", response_model=SsoPolicyOut, summary="Turn 'SSO only' on or off")
async def set_policy(body: SsoPolicyIn, request: Request, principal: Manager) -> SsoPolicyOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        policy = await service.set_policy(session, principal, body.sso_only)
    return _policy_out(request, principal.org_id, policy.sso_only)
