"""Login hardening: the password policy, failed-login throttling and lockout, and the TOTP second factor.

* **Password policy** (:func:`check_password_policy`): a minimum length and a minimum zxcvbn strength score
  (0-4, default 3) judged against the user's own email and name, so dictionary words, keyboard walks, dates
  and the user's own name are refused with zxcvbn's explanation. No composition rules (NIST SP 800-63B).
* **Throttling** (:func:`ensure_login_allowed`, :func:`record_login_failure`): failed password logins count per
  email (its digest, so unknown emails lock exactly like known ones and reveal nothing) and per client address;
  ``PROMPTOPS_LOGIN_MAX_FAILURES`` failures within ``PROMPTOPS_LOGIN_LOCKOUT_MINUTES`` lock that email for the
  same time (429 with Retry-After); ``PROMPTOPS_LOGIN_IP_MAX_FAILURES`` lock the address (password spraying).
  Counts live in the database, so every server process of an installation shares them. A success clears the
  email's count.
* **TOTP** (RFC 6238, 30 s steps, 6 digits, one step of clock drift either way): a user enrols
  (:func:`start_totp`, the secret shown once as an ``otpauth://`` URI), confirms with a first code, and from then
  on a password login needs a current code; each code is accepted once (the last used step is stored).
  The secret is sealed by the server's SecretBox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from zxcvbn import zxcvbn

from promptops.auth.models import LoginThrottle, User, UserSession, UserTotp
from promptops.db import Database, utcnow
from promptops.errors import Conflict, Forbidden, ProblemError, Unauthenticated, ValidationProblem
from promptops.governance.rbac import ROLE_PERMISSIONS, Permission, Role
from promptops.jobs.periodic import register_periodic
from promptops.personal import vault

if TYPE_CHECKING:
    from promptops.config import Settings
    from promptops.crypto import SecretBox
    from promptops.runtime import Runtime

MAX_PASSWORD_LENGTH = 1024
ZXCVBN_CHARS = 72  # zxcvbn judges at most 72 characters (and refuses longer input); a longer one: its start
TOTP_ISSUER = "PromptOps"
TOTP_DRIFT_STEPS = 1


@dataclass
class Policy:
    password_min_length: int = 8
    password_min_score: int = 3
    max_failures: int = 5
    ip_max_failures: int = 50
    lockout: timedelta = timedelta(minutes=15)
    api_key_max_days: int = 0  # > 0: every new API key must expire within this many days


policy = Policy()


def configure(settings: Settings) -> None:
    """Take the hardening settings of this process (called when the runtime is built)."""
    policy.password_min_length = settings.password_min_length
    policy.password_min_score = settings.password_min_score
    policy.max_failures = settings.login_max_failures
    policy.ip_max_failures = settings.login_ip_max_failures
    policy.lockout = timedelta(minutes=settings.login_lockout_minutes)
    policy.api_key_max_days = settings.api_key_max_days


class TooManyRequests(ProblemError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


# --- password policy ------------------------------------------------------------------------------------------


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    """422 ``weak_password`` naming what is wrong, unless ``password`` meets the policy."""
    if len(password) < policy.password_min_length:
        raise ValidationProblem(
            f"Password must be at least {policy.password_min_length} characters", code="weak_password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationProblem(
            f"Password must be at most {MAX_PASSWORD_LENGTH} characters", code="weak_password"
        )
    if policy.password_min_score <= 0:
        return
    local = email.split("@", 1)[0]
    inputs = [v for v in (email, local, *name.split(), "promptops") if v]
    verdict = zxcvbn(password[:ZXCVBN_CHARS], user_inputs=inputs)
    score = int(verdict["score"])
    if score < policy.password_min_score:
        feedback = verdict.get("feedback") or {}
        hints = " ".join(
            h for h in [feedback.get("warning") or "", *(feedback.get("suggestions") or [])] if h
        )
        raise ValidationProblem(
            f"Password is too easy to guess (strength {score}/4, at least {policy.password_min_score} needed)."
            + (f" {hints}" if hints else " Use a longer passphrase of unrelated words."),
            code="weak_password",
        )


# --- throttling and lockout -----------------------------------------------------------------------------------


async def _email_key(session: AsyncSession, email: str) -> str:
    # A keyed hash (promptops.personal.vault): the row reveals nothing about the email to a database reader.
    return "email:" + (await vault.lookup_hash(session, "login-throttle\x00" + email.strip().lower()))[:64]


def _ip_key(ip: str | None) -> str | None:
    return f"ip:{ip[:70]}" if ip else None


async def _keys(session: AsyncSession, email: str, ip: str | None) -> list[str]:
    return [k for k in (await _email_key(session, email), _ip_key(ip)) if k]


async def ensure_login_allowed(db: Database, email: str, ip: str | None) -> None:
    """429 ``login_locked`` (with the seconds to wait) while the email or the client address is locked."""
    now = utcnow()
    async with db.transaction() as session:
        keys = await _keys(session, email, ip)
        rows = (await session.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))).scalars()
        locked = [r for r in rows if r.locked_until is not None and r.locked_until > now]
    if locked:
        until = max(r.locked_until for r in locked if r.locked_until is not None)
        wait = max(1, int((until - now).total_seconds() + 0.999))
        what = "this account" if any(r.key.startswith("email:") for r in locked) else "this address"
        raise TooManyRequests(
            f"Too many failed logins for {what}; try again in {wait} s",
            code="login_locked",
            retryAfterSeconds=wait,
        )


async def record_login_failure(db: Database, email: str, ip: str | None) -> bool:
    """Count a failed login (own transaction: the failed login's own transaction is rolled back).

    True when this failure locked the email or the address."""
    now = utcnow()
    locked = False
    async with db.transaction(write=True) as session:
        for key in await _keys(session, email, ip):
            limit = policy.ip_max_failures if key.startswith("ip:") else policy.max_failures
            row = await session.get(LoginThrottle, key, with_for_update=True)
            if row is None:
                row = LoginThrottle(key=key, failures=0, window_started_at=now)
                session.add(row)
            if now - row.window_started_at > policy.lockout:
                row.failures, row.window_started_at = 0, now
            row.failures += 1
            if limit > 0 and row.failures >= limit and (row.locked_until is None or row.locked_until <= now):
                row.locked_until = now + policy.lockout
                row.failures, row.window_started_at = 0, now
                locked = True
    return locked


async def record_login_success(db: Database, email: str) -> None:
    async with db.transaction(write=True) as session:
        await session.execute(
            delete(LoginThrottle).where(LoginThrottle.key == await _email_key(session, email))
        )


async def clear_expired(session: AsyncSession, now: datetime) -> int:
    """Forget throttle rows whose window and lock are over (kept small by the login route itself)."""
    result = await session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_started_at < now - policy.lockout,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _forget_old_failures(runtime: Runtime) -> None:
    async with runtime.db.transaction(write=True) as session:
        await clear_expired(session, utcnow())


register_periodic("auth.login-throttle-cleanup", every_seconds=3600, run=_forget_old_failures)


# --- sessions and API keys -----------------------------------------------------------------------------------


async def revoke_sessions(session: AsyncSession, user_id: str) -> int:
    """End every open login session of ``user_id`` (after a role change or removal); how many were open."""
    result = await session.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > utcnow(),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def check_key_expiry(expires_at: datetime | None) -> None:
    """Under a key-expiry policy (``PROMPTOPS_API_KEY_MAX_DAYS``), a key must expire, within that many days."""
    days = policy.api_key_max_days
    if days <= 0:
        return
    if expires_at is None:
        raise ValidationProblem(
            f"This server requires every API key to expire: give expiresAt (at most {days} days ahead)",
            code="expiry_required",
        )
    if expires_at > utcnow() + timedelta(days=days):
        raise ValidationProblem(
            f"expiresAt may be at most {days} days ahead on this server", code="invalid_expiry"
        )


MAX_KEY_PERMISSIONS = 64


def key_scopes(role: Role, permissions: list[str] | None) -> list[str] | None:
    """The sorted permissions a key is limited to, checked against its role; None: the whole role.

    ``["read"]`` is a shorthand for every ``*:read`` permission of the role (a read-only key)."""
    if permissions is None:
        return None
    granted = ROLE_PERMISSIONS[role]
    if len(permissions) > MAX_KEY_PERMISSIONS:
        raise ValidationProblem(
            f"permissions: at most {MAX_KEY_PERMISSIONS} entries", code="invalid_permissions"
        )
    chosen: set[Permission] = set()
    for name in permissions:
        if name == "read":
            chosen |= {p for p in granted if p.value.endswith(":read")}
            continue
        try:
            permission = Permission(name)
        except ValueError:
            raise ValidationProblem(
                f"permissions: unknown permission {name!r} (e.g. 'prompt:read', or 'read' for every read permission)",
                code="invalid_permissions",
            ) from None
        if permission not in granted:
            raise ValidationProblem(
                f"permissions: role {role.value} does not grant {permission.value}; a key can only narrow its role",
                code="invalid_permissions",
            )
        chosen.add(permission)
    if not chosen:
        raise ValidationProblem(
            "permissions: give at least one permission (or omit it for the whole role)",
            code="invalid_permissions",
        )
    return sorted(p.value for p in chosen)


def check_not_broader(
    creator_scopes: frozenset[Permission] | None, role: Role, scopes: list[str] | None
) -> None:
    """A key limited to some permissions may not mint a key that can do more than it can."""
    if creator_scopes is None:
        return
    wanted = set(scopes) if scopes is not None else {p.value for p in ROLE_PERMISSIONS[role]}
    beyond = sorted(wanted - {p.value for p in creator_scopes})
    if beyond:
        raise Forbidden(
            "A limited API key cannot create a key with rights it lacks: " + ", ".join(beyond[:8]),
            code="permission_denied",
        )


# --- TOTP -----------------------------------------------------------------------------------------------------


def _associated(user_id: str) -> str:
    return f"user_totp:{user_id}"


async def totp_state(session: AsyncSession, user_id: str) -> UserTotp | None:
    return await session.get(UserTotp, user_id)


async def totp_enabled(session: AsyncSession, user_id: str) -> bool:
    row = await session.get(UserTotp, user_id)
    return row is not None and row.confirmed_at is not None


async def start_totp(session: AsyncSession, box: SecretBox, user: User, account_name: str) -> tuple[str, str]:
    """A new (unconfirmed) secret for ``user``; returns the secret and its ``otpauth://`` URI (shown once).

    409 when a confirmed factor exists (disable it first)."""
    row = await session.get(UserTotp, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("Two-factor authentication is already on; turn it off first", code="totp_enabled")
    secret = pyotp.random_base32()
    sealed = box.encrypt(secret, _associated(user.id))
    if row is None:
        session.add(UserTotp(user_id=user.id, secret=sealed, created_at=utcnow()))
    else:
        row.secret, row.created_at, row.last_step = sealed, utcnow(), None
    uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=TOTP_ISSUER)
    return secret, uri


def _accept(box: SecretBox, row: UserTotp, code: str, at: datetime) -> bool:
    """Whether ``code`` is valid for ``row`` now and newer than the last accepted one (updates ``last_step``)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(box.decrypt(row.secret, _associated(row.user_id)))
    step = int(at.timestamp()) // totp.interval
    for candidate in range(step - TOTP_DRIFT_STEPS, step + TOTP_DRIFT_STEPS + 1):
        if row.last_step is not None and candidate <= row.last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            row.last_step = candidate
            return True
    return False


async def confirm_totp(session: AsyncSession, box: SecretBox, user_id: str, code: str) -> None:
    row = await session.get(UserTotp, user_id)
    if row is None:
        raise ValidationProblem(
            "Start two-factor set-up first (POST /api/v1/auth/totp)", code="totp_not_started"
        )
    if row.confirmed_at is not None:
        raise Conflict("Two-factor authentication is already on", code="totp_enabled")
    if not _accept(box, row, code, utcnow()):
        raise ValidationProblem(
            "That code is not valid; check the authenticator's clock", code="invalid_totp"
        )
    row.confirmed_at = utcnow()


async def disable_totp(session: AsyncSession, box: SecretBox, user_id: str, code: str) -> None:
    row = await session.get(UserTotp, user_id)
    if row is None or row.confirmed_at is None:
        raise Conflict("Two-factor authentication is not on", code="totp_not_enabled")
    if not _accept(box, row, code, utcnow()):
        raise ValidationProblem("That code is not valid", code="invalid_totp")
    await session.delete(row)


async def check_login_code(session: AsyncSession, box: SecretBox, user_id: str, code: str | None) -> None:
    """For a password login: nothing when the user has no confirmed factor; else the code must be valid once."""
    row = await session.get(UserTotp, user_id)
    if row is None or row.confirmed_at is None:
        return
    if not code:
        raise Unauthenticated("This account needs a two-factor code (totpCode)", code="totp_required")
    if not _accept(box, row, code, utcnow()):
        raise Unauthenticated("Wrong or already used two-factor code", code="invalid_totp")
