"""The states of a durable job (an evaluation run, an optimization): the one definition, with no imports, so
the server's lifecycle and the CLI that watches a job share it."""

from __future__ import annotations

from typing import Literal

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
ACTIVE = frozenset({QUEUED, RUNNING})
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
