"""Where the job kinds live: every module here registers its kind(s) with ``register_job`` on import.

Add a feature's module to :data:`JOB_MODULES` when it defines a job kind; the server and ``promptops worker``
import them all before resuming pending work or running jobs, so every process knows every kind.
"""

from __future__ import annotations

import importlib

JOB_MODULES: list[str] = [
    "promptops.evals.engine",  # kind "eval"
    "promptops.optimize.engine",  # kind "optimize"
    "promptops.monitoring.online",  # kind "online_eval", periodic "monitoring.online-sample"
    "promptops.governance.signing",  # periodic "audit.checkpoint" (signed checkpoints of the audit chains)
    "promptops.auth.hardening",  # periodic "auth.login-throttle-cleanup"
    "promptops.experiments.tasks",  # periodic "experiments.tick" (bandit allocation, run guardrails)
    "promptops.privacy.retention",  # periodic "privacy.retention" (retention policies, hourly)
    "promptops.evals.schedules.service",  # periodic "evals.schedules" (regression schedules: fire, conclude)
    "promptops.alerts.service",  # periodic "alerts.evaluate" (alert rules), "alerts.deliver" (notifications)
]


def import_job_modules() -> None:
    """Import every module in :data:`JOB_MODULES` (idempotent)."""
    for name in JOB_MODULES:
        importlib.import_module(name)
