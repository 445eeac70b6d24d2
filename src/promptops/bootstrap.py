"""First start: the default organization and project, an admin user and API key, and example prompts."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth import service as auth
from promptops.auth.models import Membership
from promptops.auth.principal import Principal, system_principal
from promptops.config import Settings
from promptops.datasets import formats as dataset_formats
from promptops.datasets import service as dataset_service
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.ids import new_id
from promptops.logging import log
from promptops.registry import service as registry
from promptops.registry.files import SUFFIX, parse_prompt_file
from promptops.registry.schemas import CreatePromptIn
from promptops.runtime import Runtime
from promptops.tenancy.models import Organization, Project


@dataclass(frozen=True)
class BootstrapResult:
    org_id: str
    project_id: str
    admin_email: str
    admin_password: str | None  # None when chosen by PROMPTOPS_BOOTSTRAP_ADMIN_PASSWORD (not echoed)
    api_key: str | None  # None when chosen by PROMPTOPS_BOOTSTRAP_ADMIN_KEY (not echoed)
    examples: int


EXAMPLE_DATASETS = {"sentiment/reviews": "sentiment-reviews.jsonl"}


async def load_example_datasets(session: AsyncSession, principal: Principal) -> int:
    """The example datasets shipped in ``promptops/examples/datasets`` (the sentiment prompts' test set)."""
    folder = resources.files("promptops") / "examples" / "datasets"
    for name, filename in EXAMPLE_DATASETS.items():
        cases = dataset_formats.parse((folder / filename).read_bytes(), "jsonl", source=filename)
        await dataset_service.create_dataset(
            session,
            principal,
            name,
            "Short product and movie reviews labelled positive or negative (for the sentiment/* prompts)",
            cases,
            "Example dataset",
            source="import",
        )
    return len(EXAMPLE_DATASETS)


def example_bodies() -> list[CreatePromptIn]:
    folder = resources.files("promptops") / "examples"
    bodies = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(SUFFIX):
            bodies.append(
                CreatePromptIn.model_validate(parse_prompt_file(entry.read_text(), source=entry.name))
            )
    return bodies


async def bootstrap(runtime: Runtime) -> BootstrapResult | None:
    """Create the first tenant and admin if the database has none; otherwise do nothing."""
    settings = runtime.settings
    try:
        async with runtime.db.transaction(write=True) as session:
            if (await session.execute(select(Organization.id).limit(1))).first() is not None:
                return None
            org = Organization(id=new_id("org"), name="default")
            project = Project(
                id=new_id("project"),
                org_id=org.id,
                name="default",
                description="Default project",
                settings={},
            )
            session.add_all([org, project])
            await session.flush()
            await audit.ensure_chain(session, project.id)
            system = system_principal(project.id, org.id)
            await audit.record(
                session, system, "ProjectCreated", data={"projectId": project.id, "name": "default"}
            )
            password = settings.bootstrap_admin_password or secrets.token_urlsafe(12)
            user = await auth.create_user(session, settings.bootstrap_admin_email, password, "Administrator")
            session.add(
                Membership(id=new_id("membership"), project_id=project.id, user_id=user.id, role=Role.ADMIN)
            )
            await audit.record(session, system, "UserCreated", data={"userId": user.id})
            await audit.record(
                session,
                system,
                "MemberAdded",
                data={"userId": user.id, "role": Role.ADMIN.value},
            )
            _key, raw_key = await auth.create_api_key(
                session, system, "bootstrap-admin", Role.ADMIN, raw_key=settings.bootstrap_admin_key
            )
            examples = 0
            if settings.load_examples:
                for body in example_bodies():
                    await registry.create_prompt(session, system, body)
                    examples += 1
                await load_example_datasets(session, system)
    except IntegrityError:
        # Another process bootstrapped the same database at the same moment; its result stands.
        log.info("bootstrap_skipped", reason="concurrent bootstrap")
        return None
    log.info("bootstrapped", project_id=project.id, examples=examples)
    return BootstrapResult(
        org_id=org.id,
        project_id=project.id,
        admin_email=user.email,
        admin_password=None if settings.bootstrap_admin_password else password,
        api_key=None if settings.bootstrap_admin_key else raw_key,
        examples=examples,
    )


def print_credentials(result: BootstrapResult, settings: Settings) -> None:
    """Show the first admin's credentials once, on the console (never in the structured log)."""
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "=" * 72,
        "PromptOps first start: created organization 'default' and project 'default'.",
        f"  Server:        {url}   (API docs: {url}/docs)",
        f"  Admin user:    {result.admin_email}",
        f"  Password:      {result.admin_password or '(from PROMPTOPS_BOOTSTRAP_ADMIN_PASSWORD)'}",
        f"  Admin API key: {result.api_key or '(from PROMPTOPS_BOOTSTRAP_ADMIN_KEY)'}",
        f"  Examples:      {result.examples} prompts loaded",
        "Store the key now: it is shown only this once and kept only as a hash.",
        f"  promptops login --url {url} --key <the key above>",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), file=sys.stdout, flush=True)
