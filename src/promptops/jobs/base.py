"""The one job interface: job kinds, their handlers and pending queries, and the queue protocol.

A *job* is ``(kind, ref_id)``: run the handler registered for ``kind`` on the domain object ``ref_id``. The
handler owns the domain state (an evaluation run's status, one stored result per finished case, ...), so a
job carries no state of its own and running it again is always safe: the handler skips what is done. That
makes recovery simple on every backend:

* retry after an error = call the handler again (with backoff, up to ``PROMPTOPS_JOB_MAX_ATTEMPTS``);
* resume after a restart = ask every kind's *pending query* for unfinished work and submit it again.

Features register their kind at import time (``register_job("eval", run_eval, pending_evals)``); the list of
feature modules that do so is :data:`promptops.jobs.kinds.JOB_MODULES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from promptops.logging import log

if TYPE_CHECKING:
    from promptops.runtime import Runtime

JobHandler = Callable[["Runtime", str], Awaitable[None]]
"""``(runtime, ref_id) -> None``: do (the rest of) the work for ``ref_id``; idempotent and resumable."""

PendingQuery = Callable[["Runtime"], Awaitable[list[str]]]
"""``(runtime) -> [ref_id, ...]``: the ids of unfinished work of this kind (resubmitted on start)."""

MAX_KIND_LENGTH = 64
MAX_REF_LENGTH = 200


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: JobHandler
    pending: PendingQuery


_KINDS: dict[str, JobKind] = {}


def register_job(kind: str, handler: JobHandler, pending: PendingQuery) -> None:
    """Make ``kind`` runnable. Call at import time of the feature module (listed in ``JOB_MODULES``).

    Registering a kind again replaces its handler and pending query (module reloads, tests).
    """
    if not kind or len(kind) > MAX_KIND_LENGTH or not kind.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"job kind must be 1-{MAX_KIND_LENGTH} letters, digits, '-' or '_': {kind!r}")
    _KINDS[kind] = JobKind(kind, handler, pending)


def unregister_job(kind: str) -> None:
    """Forget ``kind`` (tests)."""
    _KINDS.pop(kind, None)


def job_kind(kind: str) -> JobKind:
    """The registered kind; :class:`UnknownJobKind` when nothing registered it."""
    try:
        return _KINDS[kind]
    except KeyError:
        raise UnknownJobKind(f"no handler is registered for job kind {kind!r}") from None


def registered_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def check_job(kind: str, ref_id: str) -> None:
    """Refuse a submission that can never run: an unregistered kind or an empty / oversized id."""
    job_kind(kind)
    if not ref_id or len(ref_id) > MAX_REF_LENGTH:
        raise ValueError(f"job ref_id must be 1-{MAX_REF_LENGTH} characters")


class UnknownJobKind(LookupError):
    """A job names a kind no loaded module registered; retrying cannot help."""


def retry_delay(base_seconds: float, attempt: int, cap_seconds: float = 600.0) -> float:
    """Exponential backoff before retry number ``attempt`` (1 = first retry): base, 2*base, 4*base ..."""
    if base_seconds <= 0:
        return 0.0
    return float(min(cap_seconds, base_seconds * 2 ** max(0, attempt - 1)))


class JobQueue(Protocol):
    """Runs registered job kinds. ``runtime.jobs`` is the one a process uses."""

    @property
    def backend(self) -> str:
        """``inprocess`` or ``procrastinate``."""
        ...

    async def submit(self, kind: str, ref_id: str) -> None:
        """Enqueue ``(kind, ref_id)`` (durably where the backend can). A job already queued is not queued twice."""
        ...

    async def start(self) -> None:
        """Start workers (if this process runs workers) and resume every kind's pending work."""
        ...

    async def stop(self) -> None:
        """Let in-flight jobs finish within the grace period, then cancel them (handlers see CancelledError)."""
        ...


class QueueBase:
    """What both backends share: the job settings they read and resuming every kind's pending work."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.run_workers = settings.run_workers
        self.concurrency = settings.job_concurrency
        self.max_attempts = settings.job_max_attempts
        self.grace = settings.job_shutdown_grace_seconds

    async def submit(self, kind: str, ref_id: str) -> None:
        raise NotImplementedError

    async def resume_pending(self) -> None:
        """Submit again what every registered kind's pending query reports as unfinished."""
        for kind in registered_kinds():
            try:
                ref_ids = await kind.pending(self.runtime)
            except Exception:
                log.exception("job_pending_query_failed", kind=kind.name)
                continue
            for ref_id in ref_ids:
                await self.submit(kind.name, ref_id)
            if ref_ids:
                log.info("jobs_resumed", kind=kind.name, count=len(ref_ids))


async def cancel_and_wait(tasks: set[asyncio.Task[None]] | list[asyncio.Task[None]], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``tasks``, cancel the rest and wait for them to unwind."""
    pending = [t for t in tasks if not t.done()]
    if pending and grace > 0:
        _done, still = await asyncio.wait(pending, timeout=grace)
        pending = list(still)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
