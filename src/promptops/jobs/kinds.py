"""Where the job kinds live: every module here registers its kind(s) with ``register_job`` on import.

Add a feature's module to :data:`JOB_MODULES` when it defines a job kind; the server and ``promptops worker``
import them all before resuming pending work or running jobs, so every process knows every kind.
"""

from __future__ import annotations

import importlib

JOB_MODULES: list[str] = [
    "promptops.evals.engine",  # kind "eval"
    "promptops.optimize.engine",  # kind "optimize"
]


def import_job_modules() -> None:
    """Import every module in :data:`JOB_MODULES` (idempotent)."""
    for name in JOB_MODULES:
        importlib.import_module(name)
