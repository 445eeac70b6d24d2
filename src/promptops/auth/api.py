"""REST face of identity: login sessions, API keys and project members."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth import hardening, service
from promptops.auth.deps import CSRF_COOKIE, PUBLIC, SESSION_COOKIE, forget_api_keys, require
from promptops.auth.models import ApiKey, Membership, User
from promptops.auth.principal import Principal
from promptops.auth.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    LoginIn,
    LoginOut,
    MemberIn,
    MemberOut,
    MemberUpdateIn,
    MeOut,
    TotpCodeIn,
    TotpSetupOut,
    TotpStateOut,
)
from promptops.auth.sso import service as sso_service
from promptops.errors import NotFound, Unauthenticated, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.logging import log
from promptops.runtime import runtime_of

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
keys_router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"])
members_router = APIRouter(prefix="/api/v1/members", tags=["members"])

KeyManager = Annotated[Principal, Depends(require(P.APIKEY_MANAGE))]
MemberManager = Annotated[Principal, Depends(require(P.MEMBER_MANAGE))]


@auth_router.post("/login", response_model=LoginOut, dependencies=[Depends(PUBLIC)], summary="Log in")
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    runtime = runtime_of(request)
    ttl = timedelta(hours=runtime.settings.session_ttl_hours)
    client = request.client.host if request.client else None
    await hardening.ensure_login_allowed(runtime.db, body.email, client)  # 429 while locked out
    try:
        async with runtime.db.transaction(write=True) as session:
            # 403 sso_required for members of an "SSO only" organization (the bootstrap admin is the break-glass).
            break_glass = await sso_service.check_password_login(
                session, body.email, runtime.settings.bootstrap_admin_email
            )
            token, user_session, principal = await service.login(
                session, body.email, body.password, ttl, body.project
            )
            if break_glass:
                await audit.record(
                    session, principal, "BreakGlassPasswordLogin", data={"sessionId": user_session.id}
                )
            # A second factor, when the user has one: a wrong code rolls the new session back with it.
            await hardening.check_login_code(session, runtime.box, principal.id, body.totp_code)
    except Unauthenticated as exc:
        counted = exc.code in ("invalid_credentials", "invalid_totp")
        if counted and await hardening.record_login_failure(runtime.db, body.email, client):
            log.warning("login_locked", client=client)
        raise
    await hardening.record_login_success(runtime.db, body.email)
    secure = runtime.settings.cookie_secure
    max_age = int(ttl.total_seconds())
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, user_session.csrf_token, max_age=max_age, samesite="lax", secure=secure)
    return LoginOut(
        token=token,
        expires_at=user_session.expires_at,
        csrf_token=user_session.csrf_token,
        user_id=principal.id,
        email=principal.name,
        project_id=principal.project_id,
        role=principal.role,
    )


@auth_router.post("/logout", status_code=204, summary="End the current login session")
async def logout(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.logout(session, principal)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@auth_router.get("/me", response_model=MeOut, summary="Who am I, in which project, with which permissions")
async def me(principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]) -> MeOut:
    return MeOut(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        project_id=principal.project_id,
        org_id=principal.org_id,
        role=principal.role,
        permissions=sorted(p.value for p in principal.permissions),
    )


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key)


@keys_router.post(
    "", status_code=201, response_model=ApiKeyCreatedOut, summary="Create an API key (shown once)"
)
# Not idempotent on purpose: a replay would have to store the key itself, and keys are kept only as digests.
async def create_key(body: ApiKeyIn, request: Request, principal: KeyManager) -> ApiKeyCreatedOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        key, raw = await service.create_api_key(
            session,
            principal,
            body.name,
            body.role,
            body.expires_at,
            rate_limit_per_minute=body.rate_limit_per_minute,
            permissions=body.permissions,
        )
    return ApiKeyCreatedOut(**key_out(key).model_dump(), key=raw)


@keys_router.get("", response_model=list[ApiKeyOut], summary="List API keys of the project")
async def list_keys(
    request: Request, principal: Annotated[Principal, Depends(require(P.APIKEY_READ))]
) -> list[ApiKeyOut]:
    async with runtime_of(request).db.transaction() as session:
        keys = await service.list_api_keys(session, principal)
    return [key_out(k) for k in keys]


@keys_router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key")
async def revoke_key(key_id: str, request: Request, principal: KeyManager) -> ApiKeyOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        key = await service.revoke_api_key(session, principal, key_id)
    forget_api_keys(request)
    return key_out(key)


def member_out(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=membership.role,
        project_id=membership.project_id,
        created_at=membership.created_at,
    )


@members_router.get("", response_model=list[MemberOut], summary="List project members")
async def list_members(
    request: Request, principal: Annotated[Principal, Depends(require(P.MEMBER_READ))]
) -> list[MemberOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.list_members(session, principal)
    return [member_out(m, u) for m, u in rows]


@members_router.post(
    "", status_code=201, response_model=MemberOut, summary="Add a member (creating the user)"
)
@idempotent
async def add_member(body: MemberIn, request: Request, principal: MemberManager) -> MemberOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        membership, user = await service.add_member(
            session, principal, body.email, body.role, body.password, body.name
        )
    return member_out(membership, user)


@members_router.patch("/{user_id}", response_model=MemberOut, summary="Change a member's role")
async def change_role(
    user_id: str, body: MemberUpdateIn, request: Request, principal: MemberManager
) -> MemberOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        membership, user = await service.change_member_role(session, principal, user_id, body.role)
    return member_out(membership, user)


@members_router.delete("/{user_id}", status_code=204, summary="Remove a member from the project")
async def remove_member(user_id: str, request: Request, principal: MemberManager) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.remove_member(session, principal, user_id)
    return Response(status_code=204)


# --- two-factor authentication (TOTP) -------------------------------------------------------------------------


async def _session_user(session: AsyncSession, principal: Principal) -> User:
    if principal.kind != "user" or principal.user_id is None:
        raise ValidationProblem(
            "Two-factor settings belong to a user: log in with a password first", code="not_a_session"
        )
    user = await session.get(User, principal.user_id)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return user


@auth_router.get("/totp", response_model=TotpStateOut, summary="Whether my account has a second factor")
async def totp_state(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> TotpStateOut:
    async with runtime_of(request).db.transaction() as session:
        user = await _session_user(session, principal)
        row = await hardening.totp_state(session, user.id)
    return TotpStateOut(
        enabled=row is not None and row.confirmed_at is not None,
        pending=row is not None and row.confirmed_at is None,
        confirmed_at=row.confirmed_at if row else None,
    )


@auth_router.post(
    "/totp",
    status_code=201,
    response_model=TotpSetupOut,
    summary="Start two-factor set-up: a new TOTP secret (shown once), confirmed by a first code",
)
async def totp_setup(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> TotpSetupOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        user = await _session_user(session, principal)
        secret, uri = await hardening.start_totp(session, runtime.box, user, principal.name)
    return TotpSetupOut(secret=secret, otpauth_uri=uri)


@auth_router.post(
    "/totp/confirm", response_model=TotpStateOut, summary="Turn two-factor login on with a first code"
)
async def totp_confirm(
    body: TotpCodeIn, request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> TotpStateOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        user = await _session_user(session, principal)
        await hardening.confirm_totp(session, runtime.box, user.id, body.code)
        await audit.record(session, principal, "TwoFactorEnabled", data={"userId": user.id})
        row = await hardening.totp_state(session, user.id)
    return TotpStateOut(enabled=True, pending=False, confirmed_at=row.confirmed_at if row else None)


@auth_router.post(
    "/totp/disable", response_model=TotpStateOut, summary="Turn two-factor login off (needs a current code)"
)
async def totp_disable(
    body: TotpCodeIn, request: Request, principal: Annotated[Principal, Depends(require(P.PROJECT_READ))]
) -> TotpStateOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        user = await _session_user(session, principal)
        await hardening.disable_totp(session, runtime.box, user.id, body.code)
        await audit.record(session, principal, "TwoFactorDisabled", data={"userId": user.id})
    return TotpStateOut(enabled=False, pending=False, confirmed_at=None)
