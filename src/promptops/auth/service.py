"""Authentication (API keys, login sessions) and management of keys and members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from promptops.auth import hardening
from promptops.auth.models import ApiKey, Membership, User, UserSession, UserTotp
from promptops.auth.passwords import hash_password, verify_password
from promptops.auth.principal import Principal
from promptops.auth.sso.models import SsoIdentity
from promptops.auth.tokens import digest, is_api_key, new_api_key, new_session_token
from promptops.db import utcnow
from promptops.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Permission, Role, parse_role
from promptops.ids import new_id
from promptops.personal import vault
from promptops.tenancy.models import Project
from promptops.tenancy.service import scoped

LAST_USED_RESOLUTION = timedelta(seconds=60)


# --- authentication -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAuth:
    principal: Principal
    key_id: str
    expires_at: datetime | None
    needs_touch: bool


_KEY_BY_HASH = (
    select(ApiKey, Project.org_id)
    .join(Project, Project.id == ApiKey.project_id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)


def authenticate_api_key(session: Session, raw_key: str) -> KeyAuth:
    """The principal of a valid API key; 401 for an unknown, revoked or expired key.

    A sync unit of work for :meth:`promptops.db.Database.read` (it runs on every uncached request).
    """
    if not is_api_key(raw_key):
        raise Unauthenticated("Malformed API key", code="invalid_credentials")
    row = session.execute(_KEY_BY_HASH, {"key_hash": digest(raw_key)}).one_or_none()
    if row is None:
        raise Unauthenticated("Unknown API key", code="invalid_credentials")
    key, org_id = row
    now = utcnow()
    if key.revoked_at is not None:
        raise Unauthenticated("This API key has been revoked", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated("This API key has expired", code="api_key_expired")
    principal = Principal(
        kind="api_key",
        id=key.id,
        name=key.name,
        project_id=key.project_id,
        org_id=org_id,
        role=Role(key.role),
        scopes=frozenset(Permission(p) for p in key.permissions) if key.permissions is not None else None,
    )
    needs_touch = key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION
    return KeyAuth(principal, key.id, key.expires_at, needs_touch)


async def touch_api_key(session: AsyncSession, key_id: str) -> None:
    key = await session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = utcnow()


async def authenticate_session(
    session: AsyncSession, token: str, project_ref: str | None
) -> tuple[Principal, UserSession]:
    """The principal of a login session token in the requested project (or the user's first project)."""
    user_session = (
        await session.execute(select(UserSession).where(UserSession.token_hash == digest(token)))
    ).scalar_one_or_none()
    if user_session is None or user_session.revoked_at is not None or user_session.expires_at <= utcnow():
        raise Unauthenticated("Session is invalid or expired; log in again", code="session_invalid")
    user = await session.get(User, user_session.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("User is disabled", code="user_disabled")
    await reveal_users(session, [user])
    principal = await user_principal(session, user, project_ref, session_id=user_session.id)
    return principal, user_session


async def user_principal(
    session: AsyncSession, user: User, project_ref: str | None, *, session_id: str | None = None
) -> Principal:
    if vault.is_sealed(user.email):
        await reveal_users(session, [user])
    stmt = (
        select(Membership, Project)
        .join(Project, Project.id == Membership.project_id)
        .where(Membership.user_id == user.id)
    )
    if project_ref:
        stmt = stmt.where((Project.id == project_ref) | (Project.name == project_ref))
    row = (await session.execute(stmt.order_by(Membership.created_at).limit(1))).one_or_none()
    if row is None:
        if project_ref:
            raise NotFound(f"Project {project_ref!r} not found", code="project_not_found")
        raise Forbidden("You are not a member of any project", code="no_membership")
    membership, project = row
    return Principal(
        kind="user",
        id=user.id,
        name=user.email,
        project_id=project.id,
        org_id=project.org_id,
        role=Role(membership.role),
        user_id=user.id,
        session_id=session_id,
    )


async def login(
    session: AsyncSession, email: str, password: str, ttl: timedelta, project_ref: str | None = None
) -> tuple[str, UserSession, Principal]:
    """Check a password and open a session; returns the bearer token (shown once) and the session row."""
    user = await user_by_email(session, email.strip().lower())
    if (
        not verify_password(user.password_hash if user else None, password)
        or user is None
        or not user.is_active
    ):
        raise Unauthenticated("Wrong email or password", code="invalid_credentials")
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
    principal = await user_principal(session, user, project_ref, session_id=user_session.id)
    await audit.record(session, principal, "UserLoggedIn", data={"sessionId": user_session.id})
    return token, user_session, principal


async def logout(session: AsyncSession, principal: Principal) -> None:
    if principal.session_id is None:
        raise ValidationProblem("Only a login session can be logged out", code="not_a_session")
    user_session = await session.get(UserSession, principal.session_id)
    if user_session is not None and user_session.revoked_at is None:
        user_session.revoked_at = utcnow()
        await audit.record(session, principal, "UserLoggedOut", data={"sessionId": user_session.id})


# --- API keys -------------------------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession,
    principal: Principal,
    name: str,
    role: str,
    expires_at: datetime | None = None,
    *,
    raw_key: str | None = None,
    rate_limit_per_minute: int | None = None,
    permissions: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key bound to the principal's project; returns the row and the key (its only appearance).

    ``rate_limit_per_minute`` is the key's own gateway limit (0: none); None defers to the project's setting."""
    parsed_role = parse_role(role)
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationProblem("expiresAt must be in the future", code="invalid_expiry")
    if principal.kind != "system":  # the bootstrap key is the operator's own, set in the environment
        hardening.check_key_expiry(expires_at)
    scopes = hardening.key_scopes(parsed_role, permissions)
    hardening.check_not_broader(principal.scopes, parsed_role, scopes)
    if rate_limit_per_minute is not None and not 0 <= rate_limit_per_minute <= 1_000_000:
        raise ValidationProblem(
            "rateLimitPerMinute must be between 0 (no limit) and 1000000", code="invalid_rate_limit"
        )
    if raw_key is None:
        raw_key, prefix = new_api_key()
    else:
        if not is_api_key(raw_key):
            raise ValidationProblem(
                "API key must look like po_<8 lowercase letters/digits>_<32-64 url-safe characters>",
                code="invalid_api_key_format",
            )
        prefix = raw_key[:11]
    key = ApiKey(
        id=new_id("api_key"),
        project_id=principal.project_id,
        name=name,
        role=parsed_role.value,
        prefix=prefix,
        key_hash=digest(raw_key),
        created_by=principal.id,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        permissions=scopes,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        principal,
        "ApiKeyCreated",
        data={
            "apiKeyId": key.id,
            "name": name,
            "role": parsed_role.value,
            "prefix": prefix,
            "expiresAt": expires_at.isoformat() if expires_at else None,
            "rateLimitPerMinute": rate_limit_per_minute,
            "permissions": scopes,
        },
    )
    return key, raw_key


async def api_key_rate_limit(session: AsyncSession, key_id: str) -> int | None:
    """A key's own gateway rate limit (requests a minute, 0: none), or None when it has none."""
    return await session.scalar(select(ApiKey.rate_limit_per_minute).where(ApiKey.id == key_id))


async def list_api_keys(session: AsyncSession, principal: Principal) -> list[ApiKey]:
    rows = await session.execute(scoped(select(ApiKey), ApiKey, principal).order_by(ApiKey.created_at))
    return list(rows.scalars())


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    key = (
        await session.execute(scoped(select(ApiKey), ApiKey, principal).where(ApiKey.id == key_id))
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await audit.record(
            session, principal, "ApiKeyRevoked", data={"apiKeyId": key.id, "prefix": key.prefix}
        )
    return key


# --- users and members ----------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or len(email) > 254:
        raise ValidationProblem(f"{email!r} is not a valid email address", code="invalid_email")
    return email


def check_password_strength(password: str, *, email: str = "", name: str = "") -> None:
    """422 ``weak_password`` unless the password meets the policy (promptops.auth.hardening)."""
    hardening.check_password_policy(password, email=email, name=name)


async def create_user(session: AsyncSession, email: str, password: str | None, name: str = "") -> User:
    email = normalize_email(email)
    email_hash = await email_lookup_hash(session, email)
    if (await session.execute(select(User.id).where(User.email_hash == email_hash))).first() is not None:
        raise Conflict(f"A user with email {email} already exists", code="user_exists")
    if password is not None:
        check_password_strength(password, email=email, name=name)
    user_id = new_id("user")
    user = User(
        id=user_id,
        email=await vault.seal(session, user_id, email, kind="user"),
        email_hash=email_hash,
        name=await vault.seal(session, user_id, name, kind="user"),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    await session.flush()
    set_committed_value(user, "email", email)
    set_committed_value(user, "name", name)
    return user


# --- personal fields (sealed under the user's key; see promptops.personal.vault) -------------------------------


async def email_lookup_hash(session: AsyncSession, email: str) -> str:
    return await vault.lookup_hash(session, "email\x00" + email)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this (normalized) email, found by its keyed hash; its personal fields revealed."""
    user = (
        await session.execute(select(User).where(User.email_hash == await email_lookup_hash(session, email)))
    ).scalar_one_or_none()
    if user is not None:
        await reveal_users(session, [user])
    return user


async def reveal_users(session: AsyncSession, users: list[User]) -> None:
    """Replace the sealed email and name of loaded users by their plaintext (``[erased]`` once erased).

    Set as the committed value, so a later flush never writes the plaintext back.
    """
    plain = await vault.reveal_many(session, [v for u in users for v in (u.email, u.name)])
    for user in users:
        set_committed_value(user, "email", plain.get(user.email, user.email))
        set_committed_value(user, "name", plain.get(user.name, user.name) if user.name else "")


async def seal_plaintext_users(session: AsyncSession) -> int:
    """Seal the users still holding a plaintext email and name (rows written before personal-data
    encryption: migration 0019 leaves them for the first start, which has the master key); the count."""
    users = list((await session.execute(select(User).where(User.email_hash.is_(None)))).scalars())
    sealed = 0
    for user in users:
        if vault.is_sealed(user.email):
            continue  # an erased user: its hash was dropped on purpose
        email = user.email.strip().lower()
        user.email_hash = await email_lookup_hash(session, email)
        user.email = await vault.seal(session, user.id, email, kind="user")
        if user.name and not vault.is_sealed(user.name):
            user.name = await vault.seal(session, user.id, user.name, kind="user")
        sealed += 1
    await session.flush()
    return sealed


async def member_user(
    session: AsyncSession, principal: Principal, user_id: str
) -> tuple[User, list[Membership]]:
    """A user who is a member of the principal's project, revealed, with that membership; 404 otherwise."""
    membership, user = await _membership(session, principal, user_id)
    return user, [membership]


async def erase_user_account(session: AsyncSession, user_id: str) -> int:
    """After the user's key was shredded: disable the account, drop what could still identify or log it in
    (email lookup hash, password hash) and revoke its sessions; the number of sessions revoked."""
    user = await session.get(User, user_id)
    if user is None:
        return 0
    user.is_active = False
    user.email_hash = None
    user.password_hash = None
    open_sessions = list(
        (
            await session.execute(
                select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            )
        ).scalars()
    )
    for user_session in open_sessions:
        user_session.revoked_at = utcnow()
    # Nothing may sign in to the erased account again: its second factor and its SSO links go too (the same
    # identity provider subject signing in later gets a new account).
    await session.execute(delete(UserTotp).where(UserTotp.user_id == user_id))
    await session.execute(delete(SsoIdentity).where(SsoIdentity.user_id == user_id))
    await session.flush()
    return len(open_sessions)


async def user_display_names(session: AsyncSession, user_ids: list[str]) -> dict[str, str]:
    """Each user's email for display (``[erased]`` once erased); unknown ids are left out."""
    if not user_ids:
        return {}
    users = list((await session.execute(select(User).where(User.id.in_(set(user_ids))))).scalars())
    await reveal_users(session, users)
    return {u.id: u.email for u in users}


async def list_members(session: AsyncSession, principal: Principal) -> list[tuple[Membership, User]]:
    rows = await session.execute(
        scoped(
            select(Membership, User).join(User, User.id == Membership.user_id), Membership, principal
        ).order_by(Membership.created_at)
    )
    pairs = [(m, u) for m, u in rows]
    await reveal_users(session, [u for _, u in pairs])
    return sorted(pairs, key=lambda pair: pair[1].email)


async def add_member(
    session: AsyncSession,
    principal: Principal,
    email: str,
    role: str,
    password: str | None = None,
    name: str = "",
) -> tuple[Membership, User]:
    """Add a user to the principal's project, creating the user (with ``password``) if new."""
    parsed_role = parse_role(role)
    email = normalize_email(email)
    user = await user_by_email(session, email)
    created = False
    if user is None:
        if password is None:
            raise ValidationProblem(
                f"No user {email} exists yet; give a password to create the account", code="password_required"
            )
        user = await create_user(session, email, password, name)
        created = True
    elif password is not None:
        raise ValidationProblem(
            f"User {email} already exists; omit the password (it cannot be set for an existing user here)",
            code="password_not_allowed",
        )
    existing = (
        await session.execute(
            scoped(select(Membership), Membership, principal).where(Membership.user_id == user.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{email} is already a member of this project", code="member_exists")
    membership = Membership(
        id=new_id("membership"), project_id=principal.project_id, user_id=user.id, role=parsed_role.value
    )
    session.add(membership)
    await session.flush()
    if created:
        await audit.record(session, principal, "UserCreated", data={"userId": user.id})
    # Audit events carry user ids, never emails: the chain must not hold personal data (erasure).
    await audit.record(session, principal, "MemberAdded", data={"userId": user.id, "role": parsed_role.value})
    return membership, user


async def _membership(session: AsyncSession, principal: Principal, user_id: str) -> tuple[Membership, User]:
    row = (
        await session.execute(
            scoped(
                select(Membership, User).join(User, User.id == Membership.user_id), Membership, principal
            ).where(Membership.user_id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"Member {user_id} not found in this project", code="member_not_found")
    await reveal_users(session, [row[1]])
    return row[0], row[1]


async def _ensure_other_admin(session: AsyncSession, project_id: str, user_id: str) -> None:
    count = (
        await session.execute(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.project_id == project_id,
                Membership.role == Role.ADMIN.value,
                Membership.user_id != user_id,
            )
        )
    ).scalar_one()
    if count == 0:
        raise Conflict("A project must keep at least one PromptOpsAdmin member", code="last_admin")


async def change_member_role(
    session: AsyncSession, principal: Principal, user_id: str, role: str
) -> tuple[Membership, User]:
    parsed_role = parse_role(role)
    membership, user = await _membership(session, principal, user_id)
    if membership.role == parsed_role.value:
        return membership, user
    if membership.role == Role.ADMIN.value:
        await _ensure_other_admin(session, principal.project_id, user_id)
    previous = membership.role
    membership.role = parsed_role.value
    revoked = await hardening.revoke_sessions(
        session, user_id
    )  # a session must not keep the old role's rights
    await audit.record(
        session,
        principal,
        "MemberRoleChanged",
        data={"userId": user_id, "from": previous, "to": parsed_role.value, "sessionsRevoked": revoked},
    )
    return membership, user


async def remove_member(session: AsyncSession, principal: Principal, user_id: str) -> None:
    membership, _user = await _membership(session, principal, user_id)
    if membership.role == Role.ADMIN.value:
        await _ensure_other_admin(session, principal.project_id, user_id)
    await session.delete(membership)
    revoked = await hardening.revoke_sessions(session, user_id)
    await audit.record(
        session, principal, "MemberRemoved", data={"userId": user_id, "sessionsRevoked": revoked}
    )
