"""Crypto-shredding: personal fields sealed under per-subject keys; keyed hashes for equality lookups.

A *subject* is a person the product stores data about: a user (``usr_...``) or an end user named by an
application (feedback's ``user``), which is pseudonymous per project (``eus_`` + a keyed hash of project and
name). Each subject has one random AES-256-GCM data key, stored only wrapped by the master key
(``privacy_subject_keys``). A sealed field is ``pd1.<subject>.<generation>.<base64url(nonce | ciphertext)>``;
the subject and generation are its associated data, so a token copied onto another subject does not open.

Erasing a subject deletes its data key: every sealed field of that subject, in every table, backup and copy,
becomes unreadable at once, and :func:`reveal_many` answers :data:`ERASED` for it. Nothing else changes, so the
audit chain (which never holds personal data, only subject ids and digests) still verifies.

Equality lookups (login by email, feedback filtered by user) use :func:`lookup_hash`: HMAC-SHA256 under a
random key kept (wrapped by the master key) in the same table as subject ``sys_lookup``; rotating the master
secret re-wraps nothing else, since old master secrets stay readable through ``PROMPTOPS_PREVIOUS_SECRET_KEYS``.

The keyring is per database: :func:`configure` is called by ``build_runtime`` and service code reaches it
through the session's engine (:func:`keyring`), so two apps in one process (tests) keep their own secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.crypto import SecretBox
from promptops.db import utcnow
from promptops.personal.models import SubjectKey

ERASED = "[erased]"
"""What a sealed field of an erased subject reads as, in every answer and export."""

TOKEN_VERSION = "pd1"
LOOKUP_SUBJECT = "sys_lookup"
END_USER_PREFIX = "eus_"


@dataclass
class Keyring:
    box: SecretBox
    lookup_key: bytes | None = None


_KEYRINGS: dict[tuple[str, str | None, int | None, str | None], Keyring] = {}


def _database_key(url: str) -> tuple[str, str | None, int | None, str | None]:
    parsed = make_url(url)
    return (parsed.get_backend_name(), parsed.host, parsed.port, parsed.database)


def configure(database_url: str, box: SecretBox) -> None:
    """Use ``box`` (the master key) for the personal data in the database at ``database_url``."""
    _KEYRINGS[_database_key(database_url)] = Keyring(box)


def keyring(session: AsyncSession) -> Keyring:
    url = session.get_bind().engine.url
    found = _KEYRINGS.get(_database_key(url.render_as_string(hide_password=False)))
    if found is None:
        raise RuntimeError("personal-data keys are not configured for this database (build_runtime does it)")
    return found


def is_sealed(value: str | None) -> bool:
    return bool(value) and value.startswith(TOKEN_VERSION + ".")  # type: ignore[union-attr]


def subject_of(token: str) -> str | None:
    """The subject a sealed field belongs to (None for a plain value)."""
    return token.split(".", 3)[1] if is_sealed(token) and token.count(".") >= 3 else None


def _wrap_context(subject_id: str, generation: int) -> str:
    return f"subject-key:{subject_id}:{generation}"


async def _insert_ignore(session: AsyncSession, values: dict[str, object]) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SubjectKey).values(**values).on_conflict_do_nothing(index_elements=["subject_id"])
    await session.execute(stmt)


async def _lookup_key(session: AsyncSession) -> bytes:
    ring = keyring(session)
    if ring.lookup_key is not None:
        return ring.lookup_key
    row = await _key_row(session, LOOKUP_SUBJECT)
    if row is None or row.wrapped_key is None:
        raw = base64.urlsafe_b64encode(os.urandom(32)).decode()
        await _insert_ignore(
            session,
            {
                "subject_id": LOOKUP_SUBJECT,
                "kind": "system",
                "generation": 1,
                "wrapped_key": ring.box.encrypt(raw, _wrap_context(LOOKUP_SUBJECT, 1)),
                "created_at": utcnow(),
            },
        )
        row = await _key_row(session, LOOKUP_SUBJECT)
        assert row is not None and row.wrapped_key is not None
    ring.lookup_key = base64.urlsafe_b64decode(
        ring.box.decrypt(row.wrapped_key, _wrap_context(LOOKUP_SUBJECT, 1))
    )
    return ring.lookup_key


async def lookup_hash(session: AsyncSession, value: str) -> str:
    """A keyed hash of ``value`` (64 hex digits) for equality lookups; reveals nothing without the key."""
    key = await _lookup_key(session)
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


async def end_user_subject(session: AsyncSession, project_id: str, name: str) -> str:
    """The pseudonymous subject id of an end user ``name`` as one project's applications call it."""
    return END_USER_PREFIX + (await lookup_hash(session, f"end-user\x00{project_id}\x00{name}"))[:32]


async def digest(session: AsyncSession, value: str) -> str:
    """A keyed digest for audit events: proves what a field was when its plaintext is shown, reveals nothing."""
    return "hmac-sha256:" + await lookup_hash(session, f"digest\x00{value}")


async def _key_row(session: AsyncSession, subject_id: str) -> SubjectKey | None:
    return (
        await session.execute(
            select(SubjectKey)
            .where(SubjectKey.subject_id == subject_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _active_key(
    session: AsyncSession, subject_id: str, kind: str, project_id: str | None
) -> tuple[int, AESGCM]:
    ring = keyring(session)
    row = await _key_row(session, subject_id)
    if row is None:
        raw = base64.urlsafe_b64encode(os.urandom(32)).decode()
        await _insert_ignore(
            session,
            {
                "subject_id": subject_id,
                "kind": kind,
                "project_id": project_id,
                "generation": 1,
                "wrapped_key": ring.box.encrypt(raw, _wrap_context(subject_id, 1)),
                "created_at": utcnow(),
            },
        )
        row = await _key_row(session, subject_id)
        assert row is not None
    if row.wrapped_key is None:
        # Seen again after erasure: a fresh key of the next generation; the erased data stays unreadable.
        generation = row.generation + 1
        raw = base64.urlsafe_b64encode(os.urandom(32)).decode()
        await session.execute(
            update(SubjectKey)
            .where(SubjectKey.subject_id == subject_id, SubjectKey.wrapped_key.is_(None))
            .values(
                generation=generation,
                wrapped_key=ring.box.encrypt(raw, _wrap_context(subject_id, generation)),
            )
        )
        row = await _key_row(session, subject_id)
        assert row is not None and row.wrapped_key is not None
    plain = ring.box.decrypt(row.wrapped_key, _wrap_context(subject_id, row.generation))
    return row.generation, AESGCM(base64.urlsafe_b64decode(plain))


async def seal(
    session: AsyncSession, subject_id: str, plaintext: str, *, kind: str, project_id: str | None = None
) -> str:
    """Encrypt one personal field under the subject's key (created on first use). Empty stays empty."""
    if plaintext == "":
        return ""
    generation, aead = await _active_key(session, subject_id, kind, project_id)
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, plaintext.encode(), f"{subject_id}.{generation}".encode())
    return f"{TOKEN_VERSION}.{subject_id}.{generation}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


async def sealer(
    session: AsyncSession, subject_id: str, *, kind: str, project_id: str | None = None
) -> Callable[[str], str]:
    """:func:`seal` for many fields of one subject: the key is read (or made) once, the returned function
    seals without touching the database (a batch of runs costs one key query per subject, not per field)."""
    generation, aead = await _active_key(session, subject_id, kind, project_id)
    associated = f"{subject_id}.{generation}".encode()

    def seal_one(plaintext: str) -> str:
        if plaintext == "":
            return ""
        nonce = os.urandom(12)
        sealed = base64.urlsafe_b64encode(
            nonce + aead.encrypt(nonce, plaintext.encode(), associated)
        ).decode()
        return f"{TOKEN_VERSION}.{subject_id}.{generation}.{sealed}"

    return seal_one


async def reveal_many(session: AsyncSession, values: Iterable[str | None]) -> dict[str, str]:
    """Plaintext of each sealed value (``ERASED`` where its subject's key is gone); plain values map to
    themselves. One query for all the keys involved."""
    given: set[str] = {v for v in values if v}
    sealed = {v for v in given if is_sealed(v)}
    out = {v: v for v in given - sealed}
    subjects = {s for v in sealed if (s := subject_of(v))}
    rows = {}
    if subjects:
        result = await session.execute(
            select(SubjectKey)
            .where(SubjectKey.subject_id.in_(subjects))
            .execution_options(populate_existing=True)
        )
        rows = {row.subject_id: row for row in result.scalars()}
    box = keyring(session).box if sealed else None
    keys: dict[tuple[str, int], AESGCM] = {}
    for row in rows.values():
        if row.wrapped_key is not None and box is not None:
            raw = box.decrypt(row.wrapped_key, _wrap_context(row.subject_id, row.generation))
            keys[(row.subject_id, row.generation)] = AESGCM(base64.urlsafe_b64decode(raw))
    for token in sealed:
        _, subject, generation, payload = token.split(".", 3)
        aead = keys.get((subject, int(generation))) if generation.isdigit() else None
        if aead is None:
            out[token] = ERASED
            continue
        blob = base64.urlsafe_b64decode(payload)
        try:
            out[token] = aead.decrypt(blob[:12], blob[12:], f"{subject}.{generation}".encode()).decode()
        except InvalidTag:
            out[token] = ERASED
    return out


async def reveal(session: AsyncSession, value: str | None) -> str:
    if not value:
        return ""
    return (await reveal_many(session, [value]))[value]


@dataclass(frozen=True)
class SubjectState:
    subject_id: str
    kind: str
    project_id: str | None
    erased: bool


async def subject_state(session: AsyncSession, subject_id: str) -> SubjectState | None:
    row = await _key_row(session, subject_id)
    if row is None:
        return None
    return SubjectState(row.subject_id, row.kind, row.project_id, row.wrapped_key is None)


async def shred(
    session: AsyncSession, subject_id: str, *, kind: str, project_id: str | None, actor_id: str
) -> None:
    """Destroy the subject's data key (recording that it was erased, also for a subject never keyed)."""
    now = utcnow()
    await _insert_ignore(
        session,
        {
            "subject_id": subject_id,
            "kind": kind,
            "project_id": project_id,
            "generation": 1,
            "wrapped_key": None,
            "created_at": now,
        },
    )
    await session.execute(
        update(SubjectKey)
        .where(SubjectKey.subject_id == subject_id)
        .values(wrapped_key=None, erased_at=now, erased_by=actor_id)
    )
