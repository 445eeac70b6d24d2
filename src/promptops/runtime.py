"""What a running server holds: settings and the database. Reached from a request as ``request.app.state.runtime``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from promptops.cache import TTLCache
from promptops.config import Settings
from promptops.crypto import SecretBox
from promptops.db import Database
from promptops.jobs.base import JobQueue, UnstartedQueue
from promptops.providers.calls import ModelCaller
from promptops.runs.recorder import RunRecorder


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox
    recorder: RunRecorder
    caller: ModelCaller
    # Durable background jobs (promptops.jobs); create_app sets the configured backend.
    jobs: JobQueue = field(default_factory=UnstartedQueue)
    # Authenticated API keys by key digest (see promptops.auth.deps); per server, dropped on revocation.
    api_key_cache: TTLCache[Any] = field(default_factory=lambda: TTLCache(ttl=0))


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
