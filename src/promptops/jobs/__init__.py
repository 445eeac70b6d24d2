"""Durable background jobs (DESIGN.md §7): one interface, an in-process and a procrastinate backend.

See :mod:`promptops.jobs.base` for the interface and :func:`build_job_queue` for how a process picks its backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptops.jobs.base import JobHandler, JobQueue, PendingQuery, register_job

if TYPE_CHECKING:
    from promptops.runtime import Runtime

__all__ = ["JobHandler", "JobQueue", "PendingQuery", "build_job_queue", "register_job"]


def build_job_queue(runtime: Runtime) -> JobQueue:
    """The queue ``PROMPTOPS_JOB_BACKEND`` asks for (``auto``: procrastinate on PostgreSQL, else in-process)."""
    backend = runtime.settings.effective_job_backend
    if backend == "procrastinate":
        if not runtime.settings.effective_database_url.startswith("postgresql"):
            raise ValueError("PROMPTOPS_JOB_BACKEND=procrastinate needs a PostgreSQL PROMPTOPS_DATABASE_URL")
        from promptops.jobs.pg import ProcrastinateQueue

        return ProcrastinateQueue(runtime)
    from promptops.jobs.inprocess import InProcessQueue

    return InProcessQueue(runtime)
