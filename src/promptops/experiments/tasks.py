"""The periodic task ``experiments.tick`` (every :data:`TICK_SECONDS`, in one process of the installation):
for every running experiment, recompute a bandit's allocation when it is due, check the guardrails, so an arm
whose runs (errors, latency, cost) are significantly worse is paused even when the application posts no outcome
events, and keep a snapshot of the primary metric when one is due (the results' intervals over time). Each experiment is handled in its own transaction; one failing never stops the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from promptops.auth.principal import system_principal
from promptops.db import utcnow
from promptops.experiments import service
from promptops.experiments.models import Experiment
from promptops.jobs.periodic import register_periodic
from promptops.logging import log
from promptops.tenancy.service import project_org_ids

if TYPE_CHECKING:
    from promptops.runtime import Runtime

TICK_SECONDS = 30.0


async def tick(runtime: Runtime) -> None:
    now = utcnow()
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(Experiment.id, Experiment.project_id, Experiment.mode, Experiment.next_allocation_at)
                .where(Experiment.status == "running")
                .order_by(Experiment.id)
            )
        ).all()
        orgs = await project_org_ids(session, [row.project_id for row in rows])
    if not rows:
        return
    await runtime.exposures.flush()
    for experiment_id, project_id, mode, next_at in rows:
        system = system_principal(project_id, orgs.get(project_id, ""))
        try:
            if mode == "bandit" and (next_at is None or next_at <= now):
                async with runtime.db.transaction(write=True) as session:
                    await service.reallocate(session, system, experiment_id, reason="scheduled")
            async with runtime.db.transaction(write=True) as session:
                paused = await service.enforce_guardrails(session, system, experiment_id)
            if paused or mode == "bandit":
                service.invalidate(project_id)
            async with runtime.db.transaction(write=True) as session:
                await service.snapshot_if_due(session, system, experiment_id)
        except Exception as exc:
            log.warning("experiment_tick_failed", experiment_id=experiment_id, error_type=type(exc).__name__)


register_periodic("experiments.tick", every_seconds=TICK_SECONDS, run=tick)
