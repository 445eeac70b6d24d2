"""The periodic task ``privacy.retention``: apply every project's retention policy once an hour.

Each project is one write transaction (its deletions and its ``RetentionApplied`` event commit together), run
as the server on the project's behalf. Deleting what is older than a cutoff is idempotent, so a repeated or
overlapping round only finds nothing more to delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptops.jobs.periodic import register_periodic
from promptops.logging import log
from promptops.privacy import service

if TYPE_CHECKING:
    from promptops.runtime import Runtime

TASK = "privacy.retention"
EVERY_SECONDS = 3600.0


async def apply_all(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        projects = await service.projects_with_policies(session)
    for project_id, org_id in projects.items():
        async with runtime.db.transaction(write=True) as session:
            applied = await service.apply_policy(session, service.system_for(project_id, org_id))
        log.info(
            "retention_applied",
            project_id=project_id,
            runs_deleted=applied.runs_deleted,
            feedback_deleted=applied.feedback_deleted,
        )


register_periodic(TASK, every_seconds=EVERY_SECONDS, run=apply_all)
