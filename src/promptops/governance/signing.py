"""Signing keys per organization and signed checkpoints of the audit chains.

An organization has one current Ed25519 key (made on first use) and the keys it replaced. The private key is
stored encrypted by the :class:`~promptops.crypto.SecretBox` (AES-256-GCM under the master secret, bound to
the key id). Rotation ends the current key's validity (``valid_until``) and makes a new one; old public keys
stay listed so checkpoints they signed remain verifiable, and a verifier given the key list refuses a
checkpoint signed outside its key's validity period.

A checkpoint signs (chain, chain id, organization, seq, head hash, time, key id) of one chain's head. The
periodic task ``audit.checkpoint`` signs the head of every chain that grew since its last checkpoint;
``POST /api/v1/audit/checkpoints`` signs one on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.crypto import SecretBox
from promptops.db import utcnow
from promptops.errors import ValidationProblem
from promptops.governance import audit, signatures
from promptops.governance.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditOrgChainHead,
    AuditSigningKey,
)
from promptops.governance.rbac import Permission, Role
from promptops.ids import new_id
from promptops.jobs.periodic import register_periodic
from promptops.tenancy.models import Project

if TYPE_CHECKING:
    from promptops.runtime import Runtime

CHECKPOINT_EVERY_SECONDS = 300.0
CHAINS = ("project", "org")


def _associated(kid: str) -> str:
    return f"audit-signing-key:{kid}"


def _system(org_id: str, project_id: str = "") -> Principal:
    return Principal(
        kind="system", id="system", name="system", project_id=project_id, org_id=org_id, role=Role.ADMIN
    )


@dataclass(frozen=True)
class SigningKey:
    row: AuditSigningKey
    private: Ed25519PrivateKey


async def _create_key(
    session: AsyncSession, box: SecretBox, principal: Principal, org_id: str, now: datetime
) -> AuditSigningKey:
    _, private_raw, public_raw = signatures.new_private_key()
    kid = signatures.key_id(public_raw)
    row = AuditSigningKey(
        id=kid,
        org_id=org_id,
        algorithm=signatures.ALGORITHM,
        public_key=signatures.b64(public_raw),
        private_key_ciphertext=box.encrypt(signatures.b64(private_raw), _associated(kid)),
        valid_from=now,
        valid_until=None,
        created_by=principal.id,
    )
    session.add(row)
    await session.flush()
    return row


async def _current_row(session: AsyncSession, org_id: str) -> AuditSigningKey | None:
    return (
        await session.execute(
            select(AuditSigningKey)
            .where(AuditSigningKey.org_id == org_id, AuditSigningKey.valid_until.is_(None))
            .order_by(AuditSigningKey.valid_from.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


def _unseal(box: SecretBox, row: AuditSigningKey) -> Ed25519PrivateKey:
    return signatures.private_from_raw(
        signatures.unb64(box.decrypt(row.private_key_ciphertext, _associated(row.id)))
    )


async def current_key(
    session: AsyncSession, box: SecretBox, org_id: str, principal: Principal | None = None
) -> SigningKey:
    """The organization's current signing key, made (and audited) on first use. Runs in a write transaction."""
    row = await _current_row(session, org_id)
    if row is None:
        await audit.lock_org_head(session, org_id)  # serializes first use across requests and processes
        row = await _current_row(session, org_id)
        if row is None:
            actor = principal or _system(org_id)
            row = await _create_key(session, box, actor, org_id, utcnow())
            await audit.record_org(
                session, actor, "AuditSigningKeyCreated", data={"keyId": row.id, "algorithm": row.algorithm}
            )
    elif box.needs_rotation(row.private_key_ciphertext):  # the master secret was rotated: re-seal under it
        row.private_key_ciphertext = box.encrypt(
            box.decrypt(row.private_key_ciphertext, _associated(row.id)), _associated(row.id)
        )
    return SigningKey(row, _unseal(box, row))


async def rotate_key(session: AsyncSession, box: SecretBox, principal: Principal) -> AuditSigningKey:
    """End the current key's validity now and make a new current key (audited in the organization chain)."""
    await audit.lock_org_head(session, principal.org_id)
    old = await _current_row(session, principal.org_id)
    now = utcnow()
    if old is not None:
        old.valid_until = now
    new = await _create_key(session, box, principal, principal.org_id, now)
    await audit.record_org(
        session,
        principal,
        "AuditSigningKeyRotated",
        data={"oldKeyId": old.id if old else None, "newKeyId": new.id, "algorithm": new.algorithm},
    )
    return new


async def list_keys(session: AsyncSession, org_id: str) -> list[AuditSigningKey]:
    """Every signing key of the organization, oldest first (public parts only are ever returned)."""
    rows = await session.execute(
        select(AuditSigningKey).where(AuditSigningKey.org_id == org_id).order_by(AuditSigningKey.valid_from)
    )
    return list(rows.scalars())


def _signed(
    key: SigningKey, chain: str, chain_id: str, org_id: str, seq: int, head_hash: str, trigger: str
) -> AuditCheckpoint:
    now = utcnow()
    signed_at = audit.canonical_timestamp(now)
    payload = signatures.checkpoint_payload(
        chain=chain,
        chain_id=chain_id,
        org_id=org_id,
        seq=seq,
        head_hash=head_hash,
        signed_at=signed_at,
        key_id=key.row.id,
    )
    return AuditCheckpoint(
        id=new_id("audit_checkpoint"),
        org_id=org_id,
        chain=chain,
        chain_id=chain_id,
        seq=seq,
        head_hash=head_hash,
        signed_at=now,
        key_id=key.row.id,
        signature=signatures.sign(key.private, payload),
        trigger=trigger,
    )


async def head_of(session: AsyncSession, chain: str, chain_id: str) -> tuple[int, str]:
    if chain == "org":
        org_head = await session.get(AuditOrgChainHead, chain_id)
        return (org_head.last_seq, org_head.last_hash) if org_head else (0, audit.GENESIS_HASH)
    head = await session.get(AuditChainHead, chain_id)
    return (head.last_seq, head.last_hash) if head else (0, audit.GENESIS_HASH)


async def checkpoint_now(
    session: AsyncSession, box: SecretBox, principal: Principal, chain: str
) -> AuditCheckpoint:
    """Sign the current head of the principal's project chain (or organization chain) now, on demand.

    The request is audited first (``AuditCheckpointCreated`` in the project chain), so the signed head
    includes it."""
    chain_id = principal.org_id if chain == "org" else principal.project_id
    await audit.record(
        session, principal, "AuditCheckpointCreated", data={"chain": chain, "chainId": chain_id}
    )
    key = await current_key(session, box, principal.org_id, principal)
    seq, head_hash = await head_of(session, chain, chain_id)
    existing = (
        await session.execute(
            select(AuditCheckpoint).where(
                AuditCheckpoint.chain_id == chain_id,
                AuditCheckpoint.seq == seq,
                AuditCheckpoint.key_id == key.row.id,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:  # the organization chain did not move since its last checkpoint by this key
        return existing
    checkpoint = _signed(key, chain, chain_id, principal.org_id, seq, head_hash, "manual")
    session.add(checkpoint)
    await session.flush()
    return checkpoint


def sign_head(
    key: SigningKey, chain: str, chain_id: str, org_id: str, seq: int, head_hash: str
) -> AuditCheckpoint:
    """A signed head that is not stored (the trailer of an export)."""
    return _signed(key, chain, chain_id, org_id, seq, head_hash, "export")


async def checkpoints_of(session: AsyncSession, chain_id: str, up_to_seq: int) -> Sequence[AuditCheckpoint]:
    rows = await session.execute(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.chain_id == chain_id, AuditCheckpoint.seq <= up_to_seq)
        .order_by(AuditCheckpoint.seq, AuditCheckpoint.signed_at)
    )
    return rows.scalars().all()


async def list_checkpoints(
    session: AsyncSession, principal: Principal, chain: str, cursor: str | None, limit: int
) -> tuple[list[AuditCheckpoint], str | None]:
    """Checkpoints of the principal's project (or organization) chain, newest first; ``cursor``: a seq."""
    chain_id = principal.org_id if chain == "org" else principal.project_id
    if chain == "org":
        principal.require(Permission.AUDIT_VERIFY)
    stmt = select(AuditCheckpoint).where(
        AuditCheckpoint.org_id == principal.org_id, AuditCheckpoint.chain_id == chain_id
    )
    if cursor:
        if not cursor.isdigit():
            raise ValidationProblem("Invalid cursor", code="invalid_cursor")
        stmt = stmt.where(AuditCheckpoint.seq < int(cursor))
    rows = list(
        (
            await session.execute(
                stmt.order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.signed_at.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def checkpoint_all(runtime: Runtime) -> None:
    """One round of the periodic task: sign the head of every chain that grew since its last checkpoint.

    Idempotent: a chain whose head is already checkpointed is skipped. One short transaction per
    organization."""
    async with runtime.db.transaction() as session:
        last = {
            chain_id: seq
            for chain_id, seq in (
                await session.execute(
                    select(AuditCheckpoint.chain_id, func.max(AuditCheckpoint.seq)).group_by(
                        AuditCheckpoint.chain_id
                    )
                )
            ).all()
        }
        project_heads = (
            await session.execute(
                select(Project.org_id, AuditChainHead.project_id, AuditChainHead.last_seq).join(
                    Project, Project.id == AuditChainHead.project_id
                )
            )
        ).all()
        org_heads = (
            await session.execute(select(AuditOrgChainHead.org_id, AuditOrgChainHead.last_seq))
        ).all()
    due: dict[str, list[tuple[str, str]]] = {}
    for org_id, project_id, seq in project_heads:
        if seq > last.get(project_id, 0):
            due.setdefault(org_id, []).append(("project", project_id))
    for org_id, seq in org_heads:
        if seq > last.get(org_id, 0):
            due.setdefault(org_id, []).append(("org", org_id))
    for org_id, chains in due.items():
        async with runtime.db.transaction(write=True) as session:
            key = await current_key(session, runtime.box, org_id)
            for chain, chain_id in chains:
                seq, head_hash = await head_of(session, chain, chain_id)
                if seq > last.get(chain_id, 0):
                    session.add(_signed(key, chain, chain_id, org_id, seq, head_hash, "periodic"))
            await session.flush()


register_periodic("audit.checkpoint", every_seconds=CHECKPOINT_EVERY_SECONDS, run=checkpoint_all)
