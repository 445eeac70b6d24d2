"""Import a promptfoo config: translate it (:mod:`.parse`), check everything, then write the prompts, their
versions, the dataset version and (optionally) the evaluation run in the caller's one transaction.

The client sends the config text and the files it names (:class:`~.schemas.PromptfooImportIn`); the server
reads no file of its own. :func:`import_config` validates what can be checked without writing (the bundle,
the translation, prompt bodies, cases, model targets, the evaluation body) and then calls the registry,
dataset and evaluation services, which check the rest and audit each write, plus one
``PromptfooConfigImported`` event. Any problem raises before the transaction commits, so a rejected import
writes nothing. A dry run goes through the same steps and the caller rolls the transaction back: its answer
is exactly what the import would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.datasets import formats
from promptops.datasets import service as datasets
from promptops.datasets.promptfoo_tests import MAX_FILE_BYTES, BundleFiles, Finding, PromptfooConfigError
from promptops.errors import NotFound, PayloadTooLarge, ProblemError
from promptops.evals import service as evals
from promptops.evals.models import EvalRun
from promptops.evals.promptfoo.parse import ImportPlan, PromptDraft, parse_config, translate
from promptops.evals.promptfoo.schemas import MAX_BUNDLE_BYTES, PromptfooImportIn
from promptops.evals.schemas import EvalRunIn
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.providers.calls import ModelCaller
from promptops.registry import service as registry
from promptops.registry.hashing import content_hash
from promptops.registry.schemas import CreatePromptIn, CreateVersionIn
from promptops.templates import engine

# Connections whose calls cost nothing, so a cost assertion on them is meaningful without a price.
FREE_CONNECTION_TYPES = frozenset({"local", "echo"})


@dataclass
class PromptResult:
    draft: PromptDraft
    action: str  # create | version | unchanged
    version: int | None = None
    version_id: str | None = None
    prompt_id: str | None = None


@dataclass
class DatasetResult:
    name: str
    action: str
    version: int | None
    version_id: str | None
    case_count: int


@dataclass
class ImportResult:
    plan: ImportPlan
    prompts: list[PromptResult]
    dataset: DatasetResult
    evaluation: dict[str, Any]
    run: EvalRun | None = None


def plan_import(body: PromptfooImportIn) -> ImportPlan:
    """The translation of the request's config and files (pure: no database), with the model override."""
    size = len(body.config.encode())
    for path, text in body.files.items():
        file_size = len(text.encode())
        if file_size > MAX_FILE_BYTES:
            raise PayloadTooLarge(
                f"files[{path!r}]: {file_size} bytes; a file may have at most {MAX_FILE_BYTES}",
                code="promptfoo_file_too_large",
                field=f"files[{path!r}]",
            )
        size += file_size + len(path)
    if size > MAX_BUNDLE_BYTES:
        raise PayloadTooLarge(
            f"the config and its files add up to {size} bytes; at most {MAX_BUNDLE_BYTES}",
            code="promptfoo_bundle_too_large",
        )
    for prefix, connection in body.provider_map.items():
        if not prefix or ":" in prefix or not connection.strip():
            raise PromptfooConfigError(
                f"providerMap[{prefix!r}]: map a promptfoo provider prefix such as 'openai' to a connection name",
                field="providerMap",
            )
    files = BundleFiles(body.files)
    plan = translate(
        parse_config(body.config, body.config_name),
        files=files,
        prefix=body.prefix,
        provider_map=body.provider_map,
        grader=body.grader,
    )
    if body.models is not None:  # -m: these models instead of the config's providers
        plan.models = [m.model_dump() for m in body.models]
        plan.model_sources = [f"models[{i}]" for i in range(len(body.models))]
        plan.skipped = [f for f in plan.skipped if not f.where.startswith(("providers", "targets"))]
        plan.warnings = [f for f in plan.warnings if not f.where.startswith(("providers", "targets"))]
    if plan.errors:
        raise _rejected(plan, plan.errors)
    return plan


def _rejected(plan: ImportPlan, errors: list[Finding]) -> PromptfooConfigError:
    first = errors[0]
    more = f" (and {len(errors) - 1} more; see 'errors')" if len(errors) > 1 else ""
    return PromptfooConfigError(
        f"{first}{more}",
        field=first.where,
        errors=[e.to_dict() for e in errors],
        skipped=[f.to_dict() for f in plan.skipped],
        warnings=[f.to_dict() for f in plan.warnings],
    )


def _in_field(where: str, exc: ProblemError, what: str = "") -> ProblemError:
    """``exc`` with its detail prefixed by the config element it is about (status and code kept)."""
    return ProblemError(
        f"{where}{what}: {exc.detail}", code=exc.code, status=exc.status, title=exc.title, field=where
    )


def _prompt_bodies(plan: ImportPlan) -> list[CreatePromptIn]:
    bodies = []
    for draft in plan.prompts:
        try:
            bodies.append(CreatePromptIn.model_validate(draft.body()))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise PromptfooConfigError(
                f"{draft.source} ({draft.name}): {'.'.join(map(str, error['loc']))}: {error['msg']}",
                field=draft.source,
            )
    return bodies


def _hash_of(body: CreatePromptIn) -> str:
    """The content hash the registry will store for ``body`` (variables and model config normalised)."""
    variables = [engine.VariableSpec.from_dict(v.model_dump()).to_dict() for v in body.variables]
    messages = [m.model_dump() for m in body.messages] if body.messages else None
    return content_hash(
        body.kind,
        body.template,
        messages,
        variables,
        body.model_config_.model_dump(exclude_none=True),
        body.response_schema,
    )


async def _check_models(
    session: AsyncSession, principal: Principal, plan: ImportPlan, caller: ModelCaller
) -> None:
    """Every model exists (connection, allowed model), named by the provider entry it came from; a cost
    assertion on a model without a price is a warning (it would pass at $0 whatever the model spends)."""
    has_cost = any(s["type"] == "cost" for s in plan.scorers) or any(
        s["type"] == "cost" for c in plan.cases for s in c["metadata"].get("scorers", [])
    )
    for target, source in zip(plan.models, plan.model_sources, strict=True):
        label = f" ({target['provider']}/{target['model']})"
        try:
            await evals.check_targets(caller, principal, [target])
            if not has_cost:
                continue
            connection = await caller.connection(principal, target["provider"])
            if connection.type in FREE_CONNECTION_TYPES:
                continue
            if await caller.price(principal, connection, target["model"]) is None:
                plan.warnings.append(
                    Finding(
                        source,
                        f"{target['provider']}/{target['model']} has no price, so its 'cost' assertions pass "
                        "at $0 whatever it spends; set one (PUT /api/v1/models/prices, promptops models price)",
                    )
                )
        except ProblemError as exc:
            raise _in_field(source, exc, label)


async def _prompt_action(
    session: AsyncSession, principal: Principal, draft: PromptDraft, body: CreatePromptIn
) -> PromptResult:
    """Whether the prompt is new, gets a version, or already has this content as its latest version."""
    try:
        prompt, version, _ = await registry.resolve(session, principal, body.name)
    except NotFound:
        return PromptResult(draft, "create")
    if version.content_hash == _hash_of(body):
        return PromptResult(draft, "unchanged", version.version, version.id, prompt.id)
    return PromptResult(draft, "version", prompt.latest_version + 1, None, prompt.id)


async def _write_prompt(
    session: AsyncSession, principal: Principal, body: CreatePromptIn, found: PromptResult
) -> PromptResult:
    if found.action == "unchanged":
        return found
    if found.action == "create":
        prompt, version = await registry.create_prompt(session, principal, body)
    else:
        fields = body.model_dump(by_alias=True, exclude={"name", "description", "tags"})
        prompt, version = await registry.create_version(
            session, principal, body.name, CreateVersionIn.model_validate(fields)
        )
    return PromptResult(found.draft, found.action, version.version, version.id, prompt.id)


async def import_config(
    session: AsyncSession, principal: Principal, body: PromptfooImportIn, caller: ModelCaller
) -> ImportResult:
    """Validate everything, then write the prompts, versions, dataset version and (``body.run``) the queued
    evaluation in ``session``'s transaction (the caller commits, or rolls back for a dry run, and submits
    the evaluation job after the commit)."""
    if not body.dry_run:
        principal.require(Permission.PROMPT_WRITE)
        principal.require(Permission.DATASET_WRITE)
    plan = plan_import(body)
    bodies = _prompt_bodies(plan)
    datasets.validate_dataset_name(plan.dataset)
    cases = formats.normalize_cases(plan.cases, source="tests")
    await _check_models(session, principal, plan, caller)
    evaluation = plan.eval_run_body([b.name for b in bodies], plan.dataset, name=body.name)
    evaluation.update(tags=body.tags, limit=body.limit)
    if body.concurrency is not None:
        evaluation["concurrency"] = body.concurrency
    if body.cache_ttl_seconds is not None:
        evaluation["cacheTtlSeconds"] = body.cache_ttl_seconds
    EvalRunIn.model_validate(evaluation)

    prompts = []
    for draft, prompt_body in zip(plan.prompts, bodies, strict=True):
        found = await _prompt_action(session, principal, draft, prompt_body)
        try:
            prompts.append(await _write_prompt(session, principal, prompt_body, found))
        except ProblemError as exc:
            raise _in_field(draft.source, exc, f" ({draft.name})")
    saved = await datasets.import_cases(
        session,
        principal,
        plan.dataset,
        cases,
        commit_message=f"imported from promptfoo ({body.config_name})"[:2000],
        description=f"Tests of the promptfoo config {body.config_name}: {plan.description}"[:2000],
    )
    action = ("create" if saved.version.version == 1 else "version") if saved.created else "unchanged"
    dataset = DatasetResult(plan.dataset, action, saved.version.version, saved.version.id, len(cases))
    evaluation["prompts"] = [f"{p.draft.name}@{p.version}" for p in prompts]
    evaluation["dataset"] = f"{plan.dataset}@{saved.version.version}"
    run = None
    if body.run:
        run = await evals.create_run(session, principal, EvalRunIn.model_validate(evaluation), caller)
    await audit.record(
        session,
        principal,
        "PromptfooConfigImported",
        prompt_id=prompts[0].prompt_id,
        data={
            "config": body.config_name,
            "description": plan.description,
            "prompts": [
                {"name": p.draft.name, "version": p.version, "versionId": p.version_id, "action": p.action}
                for p in prompts
            ],
            "dataset": {"name": plan.dataset, "version": dataset.version, "versionId": dataset.version_id},
            "caseCount": len(cases),
            "models": [f"{m['provider']}/{m['model']}" for m in plan.models],
            "evalRunId": run.id if run is not None else None,
            "skipped": len(plan.skipped),
            "warnings": len(plan.warnings),
        },
    )
    return ImportResult(plan, prompts, dataset, evaluation, run)
