"""``Idempotency-Key`` support for create endpoints.

A retried POST with the same key (per principal and project) and the same body replays the stored response
instead of creating a second resource; the same key with a different body is a 422. Records expire after
24 hours.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from promptops.auth.principal import Principal
from promptops.db import Base, JSONType, UTCDateTime, utcnow
from promptops.errors import ValidationProblem
from promptops.ids import new_id
from promptops.runtime import runtime_of

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("project_id", "principal_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


P = ParamSpec("P")


def _fingerprint(request: Request, body: Any) -> str:
    payload = body.model_dump(mode="json", by_alias=True) if isinstance(body, BaseModel) else body
    raw = orjson.dumps([request.method, request.url.path, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def idempotent(func: Callable[P, Awaitable[BaseModel]]) -> Callable[P, Awaitable[Any]]:
    """Wrap a create handler (keyword args ``request``, ``principal``, ``body``; answers 201)."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        request: Request = kwargs["request"]  # type: ignore[assignment]
        key = request.headers.get("idempotency-key")
        if key is None:
            return await func(*args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationProblem(
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters", code="invalid_idempotency_key"
            )
        principal: Principal = kwargs["principal"]  # type: ignore[assignment]
        fingerprint = _fingerprint(request, kwargs.get("body"))
        db = runtime_of(request).db
        async with db.transaction() as session:
            stored = await _lookup(session, principal, key)
        if stored is not None:
            return _replay(stored, fingerprint)
        result = await func(*args, **kwargs)
        body = result.model_dump(mode="json", by_alias=True)
        try:
            async with db.transaction(write=True) as session:
                await session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.project_id == principal.project_id,
                        IdempotencyRecord.created_at < utcnow() - RETENTION,
                    )
                )
                session.add(
                    IdempotencyRecord(
                        id=new_id("idempotency"),
                        project_id=principal.project_id,
                        principal_id=principal.id,
                        key=key,
                        fingerprint=fingerprint,
                        status_code=201,
                        response=body,
                    )
                )
        except IntegrityError:
            # A concurrent request with the same key won the race; answer with what it stored.
            async with db.transaction() as session:
                stored = await _lookup(session, principal, key)
            if stored is not None:
                return _replay(stored, fingerprint)
        return JSONResponse(body, status_code=201)

    return wrapper


async def _lookup(session: Any, principal: Principal, key: str) -> IdempotencyRecord | None:
    record: IdempotencyRecord | None = (
        await session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.project_id == principal.project_id,
                IdempotencyRecord.principal_id == principal.id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at >= utcnow() - RETENTION,
            )
        )
    ).scalar_one_or_none()
    return record


def _replay(record: IdempotencyRecord, fingerprint: str) -> JSONResponse:
    if record.fingerprint != fingerprint:
        raise ValidationProblem(
            "This Idempotency-Key was already used with a different request body",
            code="idempotency_key_reused",
        )
    return JSONResponse(
        record.response, status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
    )
