"""Tamper-evident audit log: append in the caller's transaction, verify the per-project hash chain.

Each event carries ``seq`` (1, 2, 3 ... per project), ``prev_hash`` (the previous event's hash, or the
genesis hash) and ``hash`` = SHA-256 over a canonical JSON encoding of every recorded field. The chain head
row stores the last seq and hash: it is the row lock that serializes appends on PostgreSQL and the anchor
that reveals a truncated tail. Signed checkpoints (an Ed25519 signature over a head) and exports hang off
``canonical_bytes`` and ``AuditChainHead`` without changing this format (``governance.signing``).

Sign-in events (:data:`ORG_CHAIN_EVENTS`) go to the organization's own chain (``AuditOrgEvent``), hashed the
same way with ``chain: "org"`` and ``orgId`` added to the record. The hash covers the stored column values
as they are (ciphertexts and digests where a field is protected), so erasing a key that protects a field
never changes a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.context import current_request_id
from promptops.db import utcnow
from promptops.governance.models import AuditChainHead, AuditEvent, AuditOrgChainHead, AuditOrgEvent
from promptops.ids import new_id

GENESIS_HASH = "0" * 64
HASH_VERSION = 1


def canonical_timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Events that belong to the organization, not to the project the actor happened to work in: a login opens a
# session valid in every project of the user, so its record is kept (and exported, and signed) per organization.
ORG_CHAIN_EVENTS = frozenset(
    {"UserLoggedIn", "UserLoggedOut", "AuditSigningKeyCreated", "AuditSigningKeyRotated"}
)

AnyAuditEvent = AuditEvent | AuditOrgEvent


class ChainHead(Protocol):
    last_seq: int
    last_hash: str


def canonical_record(event: AnyAuditEvent) -> dict[str, Any]:
    """Every recorded field of an event, as hashed (and as exported, so a verifier re-hashes it offline)."""
    record: dict[str, Any] = {
        "v": HASH_VERSION,
        "id": event.id,
        "projectId": event.project_id,
        "seq": event.seq,
        "eventType": event.event_type,
        "actorType": event.actor_type,
        "actorId": event.actor_id,
        "actorName": event.actor_name,
        "promptId": event.prompt_id,
        "requestId": event.request_id,
        "timestamp": canonical_timestamp(event.occurred_at),
        "data": event.data,
        "prevHash": event.prev_hash,
    }
    if isinstance(event, AuditOrgEvent):
        record["chain"] = "org"
        record["orgId"] = event.org_id
    return record


def hash_record(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of a canonical record: sorted-key compact JSON."""
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()


def canonical_bytes(event: AnyAuditEvent) -> bytes:
    """The exact bytes hashed for an event: sorted-key compact JSON of every recorded field."""
    return orjson.dumps(canonical_record(event), option=orjson.OPT_SORT_KEYS)


def compute_hash(event: AnyAuditEvent) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


async def ensure_chain(session: AsyncSession, project_id: str) -> None:
    """Create the empty chain of a new project (called in the project's creating transaction)."""
    session.add(AuditChainHead(project_id=project_id, last_seq=0, last_hash=GENESIS_HASH))
    await session.flush()


def actor_name(principal: Principal) -> str:
    """How an event names its actor. A user by id, never by email: the chain must hold no personal data, so
    erasing a user (shredding their key, promptops.personal) leaves it verifiable; readers show the email."""
    return principal.id if principal.kind == "user" else principal.display


async def record(
    session: AsyncSession,
    principal: Principal,
    event_type: str,
    *,
    prompt_id: str | None = None,
    data: dict[str, Any] | None = None,
    project_id: str | None = None,
) -> AnyAuditEvent:
    """Append one event to the project's chain inside the caller's transaction (events of
    :data:`ORG_CHAIN_EVENTS` to the organization's chain).

    ``data`` must never carry secrets (keys, passwords, tokens): callers pass ids and prefixes only.
    """
    if event_type in ORG_CHAIN_EVENTS:
        return await record_org(session, principal, event_type, data=data, project_id=project_id)
    project = project_id or principal.project_id
    head = (
        await session.execute(
            select(AuditChainHead).where(AuditChainHead.project_id == project).with_for_update()
        )
    ).scalar_one_or_none()
    if head is None:
        head = AuditChainHead(project_id=project, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
    now = utcnow()
    event = AuditEvent(
        id=new_id("audit"),
        project_id=project,
        seq=head.last_seq + 1,
        event_type=event_type,
        actor_type=principal.kind,
        actor_id=principal.id,
        actor_name=actor_name(principal),
        prompt_id=prompt_id,
        request_id=current_request_id(),
        occurred_at=now,
        data=_jsonable(data or {}),
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(event)
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.add(event)
    await session.flush()
    return event


async def lock_org_head(session: AsyncSession, org_id: str) -> AuditOrgChainHead:
    """The organization's chain head, created when missing, locked for update (PostgreSQL): appends to the
    organization's chain and changes to its signing keys serialize on it."""
    head = (
        await session.execute(
            select(AuditOrgChainHead).where(AuditOrgChainHead.org_id == org_id).with_for_update()
        )
    ).scalar_one_or_none()
    if head is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(AuditOrgChainHead)
            .values(org_id=org_id, last_seq=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing()
        )
        head = (
            await session.execute(
                select(AuditOrgChainHead)
                .where(AuditOrgChainHead.org_id == org_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
    return head


async def record_org(
    session: AsyncSession,
    principal: Principal,
    event_type: str,
    *,
    data: dict[str, Any] | None = None,
    project_id: str | None = None,
) -> AuditOrgEvent:
    """Append one event to the principal's organization chain inside the caller's transaction."""
    head = await lock_org_head(session, principal.org_id)
    event = AuditOrgEvent(
        id=new_id("audit"),
        org_id=principal.org_id,
        project_id=project_id or principal.project_id or None,
        seq=head.last_seq + 1,
        event_type=event_type,
        actor_type=principal.kind,
        actor_id=principal.id,
        actor_name=actor_name(principal),
        prompt_id=None,
        request_id=current_request_id(),
        occurred_at=utcnow(),
        data=_jsonable(data or {}),
        prev_hash=head.last_hash,
    )
    event.hash = compute_hash(event)
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.add(event)
    await session.flush()
    return event


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Normalize to what the JSON column returns, so the hash recomputes identically after a round trip."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(data, default=str))
    return result


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    event_id: str | None
    kind: str  # edited | missing | inserted | truncated | head_mismatch
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "eventId": self.event_id, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class VerifyResult:
    project_id: str
    events_checked: int
    last_seq: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "projectId": self.project_id,
            "ok": self.ok,
            "eventsChecked": self.events_checked,
            "lastSeq": self.last_seq,
            "problems": [p.to_dict() for p in self.problems],
        }


def verify_events(project_id: str, events: Sequence[AnyAuditEvent], head: ChainHead | None) -> VerifyResult:
    """Check a project's events (any order) against each other and the chain head.

    Reports every problem found: an event whose content no longer matches its hash (edited), a gap in
    sequence numbers (deleted), an event whose prev_hash does not link to its predecessor (inserted or
    re-ordered), and a head that points past the last event (tail deleted).
    """
    problems: list[ChainProblem] = []
    ordered = sorted(events, key=lambda e: e.seq)
    expected_seq = 1
    prev_hash = GENESIS_HASH
    seen_seqs: set[int] = set()
    for event in ordered:
        if event.seq in seen_seqs:
            problems.append(
                ChainProblem(event.seq, event.id, "inserted", f"duplicate sequence number {event.seq}")
            )
            continue
        seen_seqs.add(event.seq)
        if event.seq != expected_seq:
            missing = (
                f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}..{event.seq - 1}"
            )
            problems.append(
                ChainProblem(
                    expected_seq, None, "missing", f"event(s) with seq {missing} are missing (deleted)"
                )
            )
        recomputed = compute_hash(event)
        if recomputed != event.hash:
            problems.append(
                ChainProblem(
                    event.seq,
                    event.id,
                    "edited",
                    f"event seq {event.seq} ({event.event_type}, id {event.id}) does not match its hash: "
                    "its content was changed after it was written",
                )
            )
        elif event.prev_hash != prev_hash and event.seq == expected_seq:
            problems.append(
                ChainProblem(
                    event.seq,
                    event.id,
                    "inserted",
                    f"event seq {event.seq} (id {event.id}) does not link to event seq {event.seq - 1}: "
                    f"event seq {event.seq - 1} was modified and re-hashed, or replaced",
                )
            )
        prev_hash = event.hash
        expected_seq = event.seq + 1
    last_seq = ordered[-1].seq if ordered else 0
    if head is not None:
        if head.last_seq > last_seq:
            problems.append(
                ChainProblem(
                    last_seq + 1,
                    None,
                    "truncated",
                    f"the chain head records {head.last_seq} events but the log ends at seq {last_seq}: "
                    "the newest event(s) were deleted",
                )
            )
        elif head.last_seq < last_seq or (ordered and head.last_hash != ordered[-1].hash):
            problems.append(
                ChainProblem(
                    last_seq,
                    ordered[-1].id if ordered else None,
                    "head_mismatch",
                    "the chain head does not match the last event",
                )
            )
    return VerifyResult(project_id, len(ordered), last_seq, tuple(problems))


async def verify_project(session: AsyncSession, project_id: str) -> VerifyResult:
    events = (
        (
            await session.execute(
                select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    head = await session.get(AuditChainHead, project_id)
    return verify_events(project_id, events, head)


async def verify_org(session: AsyncSession, org_id: str) -> VerifyResult:
    """Recompute an organization's chain (``projectId`` in the result is the organization id)."""
    events = (
        (
            await session.execute(
                select(AuditOrgEvent).where(AuditOrgEvent.org_id == org_id).order_by(AuditOrgEvent.seq)
            )
        )
        .scalars()
        .all()
    )
    head = await session.get(AuditOrgChainHead, org_id)
    return verify_events(org_id, events, head)
