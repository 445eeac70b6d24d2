"""What a running server holds: settings and the database. Reached from a request as ``request.app.state.runtime``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from promptops.cache import TTLCache
from promptops.config import Settings
from promptops.crypto import SecretBox
from promptops.db import Database

if TYPE_CHECKING:  # built by promptops.lifecycle.build_runtime; this module stays below the features
    from promptops.experiments.recorder import ExposureRecorder
    from promptops.jobs.base import JobQueue
    from promptops.jobs.periodic import Scheduler
    from promptops.providers.calls import ModelCaller
    from promptops.runs.recorder import RunRecorder


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox
    recorder: RunRecorder
    caller: ModelCaller
    # Experiment exposures seen by resolves, written in bulk (promptops.experiments.recorder).
    exposures: ExposureRecorder
    # Durable background jobs (promptops.jobs); build_runtime sets the configured backend.
    jobs: JobQueue = field(default_factory=lambda: UnstartedQueue())
    # Periodic tasks (promptops.jobs.periodic); set while a process that runs workers is running.
    scheduler: Scheduler | None = None
    # embeds again, in the background, search documents whose vectors another model or recipe made (lifecycle)
    search_refresh: asyncio.Task[int] | None = None
    # embeds, as they come, search documents saved waiting for their vectors (a project's provider model; lifecycle)
    search_keeper: asyncio.Task[None] | None = None
    # Authenticated API keys by key digest (see promptops.auth.deps); per server, dropped on revocation.
    api_key_cache: TTLCache[Any] = field(default_factory=lambda: TTLCache(ttl=0))


class UnstartedQueue:
    """Placeholder until :func:`promptops.jobs.build_job_queue` sets the real queue on the runtime."""

    backend = "none"

    async def submit(self, kind: str, ref_id: str) -> None:
        raise RuntimeError("no job queue is configured for this runtime")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
