"""The lifecycle every durable job row shares: evaluation runs (``EvalRun``) and optimizations (``Optimization``).

A job row is the domain state of a job kind (see :mod:`promptops.jobs.base`): what to run (its typed
``spec``), where it stands (``status``), and the bookkeeping of the workers that ran it::

    queued ──claim──> running ──finish──> completed | failed | cancelled
       │                 │  (beat: heartbeat + worker id, reads cancel_requested)
       └─request_cancel─> cancelled (at once while queued; a running job stops at its next beat)

* :class:`JobRow`, the SQLAlchemy mixin of the shared columns and indexes;
* :data:`TERMINAL` and the status names (defined in :mod:`promptops.jobs.states`);
* :func:`claim`, :func:`beat`, :func:`request_cancel`, :func:`finish`, :func:`fail`: every status change;
* :func:`start`: create the row and submit the job once that transaction committed;
* :func:`pending_query`: a job kind's pending query (queued or running rows, resubmitted on start);
* :func:`list_page`: the newest-first keyset page every job list uses;
* :class:`JobSpec` and :class:`JobPrincipal`: the base of typed specs stored as JSON in ``spec``, and the
  identity a job acts as (whoever started it, with the role they had then).

This module sits with the engines: it imports only the kernel and identity, never a feature.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql import Select

from promptops.auth.principal import Principal
from promptops.db import Database, JSONType, UTCDateTime, utcnow
from promptops.errors import Conflict
from promptops.governance.rbac import Role
from promptops.jobs.states import ACTIVE, CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, TERMINAL, JobStatus
from promptops.pagination import decode_cursor, encode_cursor, fetch_page

if TYPE_CHECKING:
    from promptops.jobs.base import PendingQuery
    from promptops.runtime import Runtime

MAX_ERROR = 2000
MAX_WORKER_ID = 80

_HOST = socket.gethostname()


def worker_id() -> str:
    """This process, as stored in ``worker_id`` and named to procrastinate: ``promptops-<host>-<pid>``."""
    return f"promptops-{_HOST}-{os.getpid()}"[:MAX_WORKER_ID]


# --- typed specs ----------------------------------------------------------------------------------------


class JobSpec(BaseModel):
    """Base of a job's typed spec: stored as camelCase JSON in ``spec``, read back with :meth:`load`.

    Unknown keys of older rows are ignored rather than refused, so a stored job always loads.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def dump(self, **kwargs: Any) -> dict[str, Any]:
        """The JSON stored in ``spec`` (and the API shows): camelCase keys, every field."""
        return self.model_dump(mode="json", by_alias=True, **kwargs)


class JobPrincipal(JobSpec):
    """Whoever started a job, with the role they had then: the identity the job acts as."""

    kind: Literal["user", "api_key", "system"]
    id: str
    name: str
    project_id: str
    org_id: str
    role: Role
    user_id: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> JobPrincipal:
        return cls.model_validate({name: getattr(principal, name) for name in cls.model_fields})

    def principal(self) -> Principal:
        return Principal(**self.model_dump())


SpecT = TypeVar("SpecT", bound=JobSpec)


# --- the shared columns ---------------------------------------------------------------------------------


class JobRow(Generic[SpecT]):
    """Mixin of a job table: id, project, typed spec, status, cancellation, error and worker bookkeeping.

    Indexes ``ix_<table>_project_created`` (lists) and ``ix_<table>_status`` (pending queries). A subclass
    names its spec model in ``spec_type`` and reads the spec through :attr:`spec_model`, never the raw JSON.
    """

    spec_type: ClassVar[type[JobSpec]]

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # how many times a worker started it
    worker_id: Mapped[str | None] = mapped_column(String(MAX_WORKER_ID), nullable=True)  # the last one
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @declared_attr
    @classmethod
    def project_id(cls) -> Mapped[str]:
        return mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[Index, ...]:
        table = getattr(cls, "__tablename__")  # noqa: B009 - set by the mapped subclass
        return (
            Index(f"ix_{table}_project_created", "project_id", "created_at"),
            Index(f"ix_{table}_status", "status"),
        )

    @property
    def spec_model(self) -> SpecT:
        """The spec as its typed model, validated once per loaded row (again only if ``spec`` is replaced)."""
        cached = self.__dict__.get("_spec_cache")
        if cached is None or cached[0] is not self.spec:
            cached = (self.spec, self.spec_type.model_validate(self.spec))
            self.__dict__["_spec_cache"] = cached
        return cast(SpecT, cached[1])

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


JobT = TypeVar("JobT", bound="JobRow[Any]")
OutT = TypeVar("OutT")


# --- status changes -------------------------------------------------------------------------------------


async def claim(db: Database, model: type[JobT], job_id: str) -> JobT | None:
    """Start (or resume) job ``job_id`` in this process, in one write transaction.

    The row becomes ``running`` with one more attempt, this process's worker id and a fresh heartbeat
    (``started_at`` keeps the first start). None, and nothing to do, when the job is gone or finished, or
    was cancelled while it waited (it is then marked ``cancelled``). The returned row is detached.
    """
    async with db.transaction(write=True) as session:
        job = await session.get(model, job_id)
        if job is None or job.status in TERMINAL:
            return None
        if job.cancel_requested:
            finish(job, CANCELLED)
            return None
        now = utcnow()
        job.status = RUNNING
        job.attempts += 1
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.worker_id = worker_id()
        await session.flush()
        session.expunge(job)
        return job


def beat(job: JobRow[Any]) -> bool:
    """Inside a write transaction of a running job: record that this process is alive and working on it;
    True when a cancellation was requested (the job then stops at this point)."""
    job.heartbeat_at = utcnow()
    job.worker_id = worker_id()
    return bool(job.cancel_requested)


def request_cancel(job: JobRow[Any], *, what: str, code: str) -> None:
    """Ask ``job`` to stop: a queued job is cancelled at once, a running one at its next :func:`beat`.

    A finished job is a ``Conflict`` (409, ``code``); ``what`` names the kind in the message.
    """
    if job.status in TERMINAL:
        raise Conflict(f"{what} {job.id} is already {job.status}", code=code)
    job.cancel_requested = True
    if job.status == QUEUED:
        finish(job, CANCELLED)


def finish(job: JobRow[Any], status: str, error: BaseException | None = None) -> None:
    """Mark ``job`` finished with ``status`` (``completed``, ``failed`` or ``cancelled``) now."""
    if status not in TERMINAL:
        raise ValueError(f"not a final status: {status!r}")
    job.status = status
    job.finished_at = utcnow()
    if error is not None:
        job.error = f"{type(error).__name__}: {error}"[:MAX_ERROR]


async def fail(
    db: Database,
    model: type[JobT],
    job_id: str,
    error: BaseException,
    also: Callable[[JobT], None] | None = None,
) -> None:
    """Record that job ``job_id`` failed with ``error`` (and ``also`` on the row, in the same transaction)."""
    async with db.transaction(write=True) as session:
        job = await session.get(model, job_id)
        if job is not None:
            finish(job, FAILED, error)
            if also is not None:
                also(job)


def pending_query(model: type[JobRow[Any]]) -> PendingQuery:
    """The pending query of a job kind whose rows are ``model``: the ids of queued or running jobs."""

    async def pending(runtime: Runtime) -> list[str]:
        async with runtime.db.transaction() as session:
            rows = await session.execute(
                select(model.id).where(model.status.in_(sorted(ACTIVE))).order_by(model.id)
            )
            return list(rows.scalars())

    pending.__doc__ = f"{model.__name__} rows that were queued or running when the process stopped."
    return pending


# --- starting and running -------------------------------------------------------------------------------


async def start(
    runtime: Runtime,
    kind: str,
    create: Callable[[AsyncSession], Awaitable[JobT]],
    show: Callable[[JobT], OutT],
) -> OutT:
    """Create a job row (``create``, in one write transaction, with its audit event) and submit ``(kind, id)``
    once that transaction has committed, so a worker always finds the row; ``show(job)`` is the response."""
    async with runtime.db.transaction(write=True) as session:
        job = await create(session)
        out = show(job)
    await runtime.jobs.submit(kind, job.id)
    return out


# --- reading --------------------------------------------------------------------------------------------


async def list_page(
    session: AsyncSession,
    stmt: Select[Any],
    model: type[JobT],
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
    key: Any = None,
) -> tuple[list[JobT], str | None]:
    """One page of jobs, newest first (ids are time ordered): ``stmt`` (already scoped and filtered) with
    the status filter and the keyset cursor applied on ``key`` (default the job id)."""
    key = model.id if key is None else key
    if status:
        stmt = stmt.where(model.status == status)
    if cursor:
        stmt = stmt.where(key < decode_cursor(cursor))
    return await fetch_page(session, stmt.order_by(key.desc()), limit, lambda r: encode_cursor(r.id))


__all__ = [
    "ACTIVE",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "TERMINAL",
    "JobPrincipal",
    "JobRow",
    "JobSpec",
    "JobStatus",
    "beat",
    "claim",
    "fail",
    "finish",
    "list_page",
    "pending_query",
    "request_cancel",
    "start",
    "worker_id",
]
