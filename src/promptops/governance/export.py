"""Streaming a chain as an audit export (format: :mod:`promptops.governance.exportfile`).

:func:`prepare` runs in one write transaction: it records ``AuditExported``, then takes the chain head and signs
it (the trailer). :func:`lines` then streams the events up to that head in short read transactions, so the
export is consistent while new events keep arriving and never holds a transaction open for the whole file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.crypto import SecretBox
from promptops.db import Database, utcnow
from promptops.governance import audit, signing
from promptops.governance.exportfile import FORMAT, FORMAT_VERSION
from promptops.governance.models import AuditCheckpoint, AuditEvent, AuditOrgEvent, AuditSigningKey
from promptops.governance.rbac import Permission

BATCH = 1000


@dataclass(frozen=True)
class ExportPlan:
    chain: str
    chain_id: str
    org_id: str
    head_seq: int
    head_hash: str
    exported_at: str
    trailer: dict[str, Any]


def require_chain(principal: Principal, chain: str) -> str:
    """The chain id the principal may export or checkpoint; the organization chain (logins of every project of
    the organization) needs ``audit:verify`` (compliance officers and admins)."""
    if chain == "org":
        principal.require(Permission.AUDIT_VERIFY)
        return principal.org_id
    return principal.project_id


def checkpoint_line(cp: AuditCheckpoint, kind: str = "checkpoint") -> dict[str, Any]:
    return {
        "type": kind,
        "chain": cp.chain,
        "chainId": cp.chain_id,
        "orgId": cp.org_id,
        "seq": cp.seq,
        "headHash": cp.head_hash,
        "signedAt": audit.canonical_timestamp(cp.signed_at),
        "keyId": cp.key_id,
        "signature": cp.signature,
        "trigger": cp.trigger,
    }


def key_line(key: AuditSigningKey) -> dict[str, Any]:
    return {
        "type": "publicKey",
        "keyId": key.id,
        "algorithm": key.algorithm,
        "publicKey": key.public_key,
        "validFrom": audit.canonical_timestamp(key.valid_from),
        "validUntil": audit.canonical_timestamp(key.valid_until) if key.valid_until else None,
    }


async def prepare(session: AsyncSession, box: SecretBox, principal: Principal, chain: str) -> ExportPlan:
    """Audit the export and sign the head it will end at (in the caller's write transaction)."""
    chain_id = require_chain(principal, chain)
    await audit.record(session, principal, "AuditExported", data={"chain": chain, "chainId": chain_id})
    key = await signing.current_key(session, box, principal.org_id, principal)
    seq, head_hash = await signing.head_of(session, chain, chain_id)
    trailer = signing.sign_head(key, chain, chain_id, principal.org_id, seq, head_hash)
    return ExportPlan(
        chain=chain,
        chain_id=chain_id,
        org_id=principal.org_id,
        head_seq=seq,
        head_hash=head_hash,
        exported_at=audit.canonical_timestamp(utcnow()),
        trailer=checkpoint_line(trailer, "trailer"),
    )


async def _batch(session: AsyncSession, plan: ExportPlan, after: int) -> Sequence[audit.AnyAuditEvent]:
    if plan.chain == "org":
        org_rows = await session.execute(
            select(AuditOrgEvent)
            .where(
                AuditOrgEvent.org_id == plan.chain_id,
                AuditOrgEvent.seq > after,
                AuditOrgEvent.seq <= plan.head_seq,
            )
            .order_by(AuditOrgEvent.seq)
            .limit(BATCH)
        )
        return org_rows.scalars().all()
    rows = await session.execute(
        select(AuditEvent)
        .where(
            AuditEvent.project_id == plan.chain_id, AuditEvent.seq > after, AuditEvent.seq <= plan.head_seq
        )
        .order_by(AuditEvent.seq)
        .limit(BATCH)
    )
    return rows.scalars().all()


def _dump(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


async def lines(db: Database, plan: ExportPlan) -> AsyncIterator[bytes]:
    """The export file, line by line."""
    yield _dump(
        {
            "type": "header",
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "chain": plan.chain,
            "chainId": plan.chain_id,
            "orgId": plan.org_id,
            "exportedAt": plan.exported_at,
            "headSeq": plan.head_seq,
            "headHash": plan.head_hash,
        }
    )
    async with db.transaction() as session:
        keys = await signing.list_keys(session, plan.org_id)
    for key in keys:
        yield _dump(key_line(key))
    after = 0
    while after < plan.head_seq:
        async with db.transaction() as session:
            batch = await _batch(session, plan, after)
        if not batch:
            break
        for event in batch:
            yield _dump({"type": "event", "hash": event.hash, "event": audit.canonical_record(event)})
        after = batch[-1].seq
    async with db.transaction() as session:
        checkpoints = await signing.checkpoints_of(session, plan.chain_id, plan.head_seq)
        out = [checkpoint_line(cp) for cp in checkpoints]
    for line in out:
        yield _dump(line)
    yield _dump(plan.trailer)
