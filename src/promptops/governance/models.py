"""Audit events (a hash chain per project, and one per organization for logins), the chain heads that pin
their tails, the organizations' Ed25519 signing keys and the signed checkpoints of chain heads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("project_id", "seq"),
        Index("ix_audit_events_project_prompt", "project_id", "prompt_id"),
        Index("ix_audit_events_project_type", "project_id", "event_type"),
        Index("ix_audit_events_project_time", "project_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(60))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(254), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """Last sequence number and hash per project: a lock point for appends and a guard against truncation."""

    __tablename__ = "audit_chain_heads"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditOrgEvent(Base):
    """An event of an organization's own chain (logins, logouts, signing keys): same fields and hashing as
    :class:`AuditEvent`, chained per organization. ``project_id`` is the project the actor was working in."""

    __tablename__ = "audit_org_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq"),
        Index("ix_audit_org_events_org_time", "org_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    project_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(60))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_name: Mapped[str | None] = mapped_column(String(254), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditOrgChainHead(Base):
    """Last sequence number and hash of an organization's chain (also the lock point for its signing keys)."""

    __tablename__ = "audit_org_chain_heads"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditSigningKey(Base):
    """An organization's Ed25519 signing key. The private key is kept encrypted by the secret box (AES-GCM under
    the master secret); the public key is published with its validity period. ``id`` is the key id: the first
    16 hex digits of SHA-256 over the raw public key, so a verifier derives it from the key itself."""

    __tablename__ = "audit_signing_keys"
    __table_args__ = (Index("ix_audit_signing_keys_org", "org_id", "valid_from"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    algorithm: Mapped[str] = mapped_column(String(20))
    public_key: Mapped[str] = mapped_column(String(64))  # base64 of the 32 raw bytes
    private_key_ciphertext: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # None: current key
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)


class AuditCheckpoint(Base):
    """A signed statement "chain ``chain_id`` had ``seq`` events ending in ``head_hash`` at ``signed_at``"."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq", "key_id"),
        Index("ix_audit_checkpoints_org", "org_id", "signed_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    chain: Mapped[str] = mapped_column(String(10))  # project | org
    chain_id: Mapped[str] = mapped_column(String(40))  # the project id or the organization id
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    key_id: Mapped[str] = mapped_column(ForeignKey("audit_signing_keys.id", ondelete="RESTRICT"))
    signature: Mapped[str] = mapped_column(String(100))  # base64 of the 64-byte Ed25519 signature
    trigger: Mapped[str] = mapped_column(String(10))  # periodic | manual
