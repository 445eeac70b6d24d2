"""Imports every table so ``metadata`` is complete (for Alembic and for tests)."""

from __future__ import annotations

from promptops.alerts import models as alert_models
from promptops.auth import models as auth_models
from promptops.auth.sso import models as sso_models
from promptops.datasets import models as dataset_models
from promptops.db import Base
from promptops.evals import models as eval_models
from promptops.evals.schedules import models as eval_schedule_models
from promptops.experiments import models as experiment_models
from promptops.feedback import models as feedback_models
from promptops.governance import models as governance_models
from promptops.idempotency import IdempotencyRecord
from promptops.jobs import models as job_models
from promptops.monitoring import models as monitoring_models
from promptops.optimize import models as optimize_models
from promptops.packs import models as pack_models
from promptops.personal import models as personal_models
from promptops.privacy import models as privacy_models
from promptops.providers import models as provider_models
from promptops.registry import models as registry_models
from promptops.registry.approvals import models as approval_models
from promptops.runs import models as run_models
from promptops.search import models as search_models
from promptops.slack import models as slack_models
from promptops.tenancy import models as tenancy_models

metadata = Base.metadata

__all__ = [
    "IdempotencyRecord",
    "alert_models",
    "approval_models",
    "auth_models",
    "dataset_models",
    "eval_models",
    "eval_schedule_models",
    "experiment_models",
    "feedback_models",
    "governance_models",
    "job_models",
    "metadata",
    "monitoring_models",
    "optimize_models",
    "pack_models",
    "personal_models",
    "privacy_models",
    "provider_models",
    "registry_models",
    "run_models",
    "search_models",
    "slack_models",
    "sso_models",
    "tenancy_models",
]
