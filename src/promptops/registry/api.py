"""REST face of the registry: thin handlers over :mod:`promptops.registry.service`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.db import Database
from promptops.errors import ValidationProblem
from promptops.experiments import service as experiments
from promptops.experiments.schemas import ExperimentTagOut
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.pagination import PageLimit
from promptops.registry import service
from promptops.registry.approvals import api as approvals_api
from promptops.registry.approvals import service as approvals
from promptops.registry.approvals.gate import PendingApproval
from promptops.registry.models import Prompt, PromptVersion
from promptops.registry.refs import ROUTE_REF_REGEX
from promptops.registry.schemas import (
    CreatePromptIn,
    CreateVersionIn,
    DiffOut,
    ForkIn,
    LabelEventOut,
    LabelMoveOut,
    LabelOut,
    LineageLinkOut,
    LineageOut,
    LintFindingOut,
    LintIn,
    LintOut,
    LintRuleOut,
    LintSummary,
    NearDuplicateOut,
    PreviewIn,
    PreviewOut,
    PromptOut,
    PromptPage,
    PromptSavedOut,
    PushOut,
    PushPromptIn,
    RenderedVersionRef,
    RenderIn,
    RenderOut,
    ResolvedOut,
    RollbackIn,
    SetLabelIn,
    UpdatePromptIn,
    VersionOut,
    VersionPage,
)
from promptops.runtime import runtime_of
from promptops.search import api as search_api
from promptops.search import service as search_service
from promptops.search.schemas import PromptRefOut, SimilarListOut, SimilarOut
from promptops.templates import lint
from promptops.validation import DB_INT_MAX, BoundedDatetime, Ref, VersionRef


class _PromptRefConvertor(Convertor[str]):
    regex = ROUTE_REF_REGEX

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("prompt", _PromptRefConvertor())
router = APIRouter(prefix="/api/v1/prompts", tags=["prompts"])

Reader = Annotated[Principal, Depends(require(P.PROMPT_READ))]
Writer = Annotated[Principal, Depends(require(P.PROMPT_WRITE))]
Labeller = Annotated[Principal, Depends(require(P.LABEL_WRITE))]
Deployer = Annotated[Principal, Depends(require(P.LABEL_DEPLOY))]
Limit = PageLimit
LabelPath = Annotated[str, "label"]


async def prompt_out(session: AsyncSession, prompt: Prompt) -> PromptOut:
    labels = (await service.label_versions(session, [prompt.id]))[prompt.id]
    tags = (await service.tags_of(session, [prompt.id]))[prompt.id]
    return _prompt_out(prompt, labels, tags)


def _prompt_out(prompt: Prompt, labels: dict[str, int], tags: list[str]) -> PromptOut:
    return PromptOut(
        id=prompt.id,
        name=prompt.name,
        description=prompt.description,
        tags=tags,
        archived=prompt.archived,
        latest_version=prompt.latest_version,
        labels=labels,
        created_at=prompt.created_at,
        updated_at=prompt.updated_at,
    )


def version_out(prompt: Prompt, version: PromptVersion, labels: dict[str, int]) -> VersionOut:
    here = sorted(name for name, number in labels.items() if number == version.version)
    if version.version == prompt.latest_version:
        here.append("latest")
    findings, warnings = service.stored_findings(version)
    return VersionOut(
        id=version.id,
        prompt_id=prompt.id,
        prompt_name=prompt.name,
        version=version.version,
        kind=version.kind,
        template=version.template,
        messages=version.messages,
        variables=version.variables,
        modelConfig=version.model_config_,
        response_schema=version.response_schema,
        metadata=version.metadata_,
        commit_message=version.commit_message,
        parent_version_id=version.parent_version_id,
        source=version.source,
        content_hash=version.content_hash,
        labels=here,
        warnings=warnings,
        lint=[LintFindingOut.model_validate(f) for f in findings],
        created_by=version.created_by,
        created_at=version.created_at,
    )


def resolved_from(r: service.Resolved) -> ResolvedOut:
    return ResolvedOut(
        prompt=_prompt_out(r.prompt, r.labels, r.tags),
        version=version_out(r.prompt, r.version, r.labels),
        resolved_by=r.how,
    )


async def saved_out(db: Database, principal: Principal, resolved: ResolvedOut) -> PromptSavedOut:
    """The saved prompt and version (committed), with the project's near-duplicates of the new text: read in
    a transaction of its own, so the shared vector index only ever learns committed rows; and the approval
    requests its gated ``labels`` became. A project that searches with a provider model saved the version
    waiting for its vectors: they are made here first, with no transaction open (if the provider fails, the
    background embedding makes them later and the answer lists no near-duplicates)."""
    await search_service.embed_waiting(db, [resolved.version.id])
    async with db.transaction() as session:
        near = await search_service.near_duplicates(session, principal, resolved.version.id)
        pending = await approvals.open_for_version(session, principal, resolved.version.id)
    return PromptSavedOut(
        **dict(resolved),
        pending_approvals=[approvals_api.request_ref(r) for r in pending],
        near_duplicates=[
            NearDuplicateOut(
                prompt_id=n.doc.prompt_id,
                name=n.doc.prompt_name,
                version=n.doc.version,
                version_id=n.doc.version_id,
                similarity=n.similarity,
                duplicate_score=n.duplicate_score,
            )
            for n in near
        ],
    )


async def resolved_out(
    session: AsyncSession, prompt: Prompt, version: PromptVersion, how: str
) -> ResolvedOut:
    labels = (await service.label_versions(session, [prompt.id]))[prompt.id]
    tags = (await service.tags_of(session, [prompt.id]))[prompt.id]
    return ResolvedOut(
        prompt=_prompt_out(prompt, labels, tags),
        version=version_out(prompt, version, labels),
        resolved_by=how,
    )


def _move_out(move: service.LabelMove) -> LabelMoveOut:
    return LabelMoveOut(
        prompt_id=move.prompt.id,
        name=move.prompt.name,
        label=move.label,
        version=move.version.version,
        version_id=move.version.id,
        previous_version=move.previous.version if move.previous else None,
        previous_version_id=move.previous.id if move.previous else None,
        deployed=move.deployed,
    )


@router.post(
    "", status_code=201, response_model=PromptSavedOut, summary="Create a prompt with its first version"
)
@idempotent
async def create_prompt(body: CreatePromptIn, request: Request, principal: Writer) -> PromptSavedOut:
    db = runtime_of(request).db
    checked = await service.check_version(db, principal, body)  # before the write transaction opens
    async with db.transaction(write=True) as session:
        prompt, version = await service.create_prompt(session, principal, body, checked=checked)
        resolved = await resolved_out(session, prompt, version, f"version:{version.version}")
    return await saved_out(db, principal, resolved)


@router.get("", response_model=PromptPage, summary="List prompts")
async def list_prompts(
    request: Request,
    principal: Reader,
    prefix: Annotated[str | None, Query(max_length=200, description="Folder prefix, e.g. 'support/'")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    label: Annotated[str | None, Query(max_length=63)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in name or description")] = None,
    model: Annotated[
        str | None, Query(max_length=200, description="Model named by the latest version's model config")
    ] = None,
    author: Annotated[str | None, Query(max_length=40, description="User id that wrote a version")] = None,
    updated_after: Annotated[
        datetime | None, Query(alias="updatedAfter", description="Updated at or after"), BoundedDatetime
    ] = None,
    updated_before: Annotated[
        datetime | None, Query(alias="updatedBefore", description="Updated before"), BoundedDatetime
    ] = None,
    sort: Annotated[
        Literal["name", "updated"], Query(description="name (A→Z) or updated (most recent first)")
    ] = "name",
    archived: bool = False,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Limit = 50,
) -> PromptPage:
    filters = service.PromptFilter(
        prefix=prefix,
        tag=tag,
        label=label,
        query=q,
        archived=archived,
        model=model,
        author=author,
        updated_after=updated_after,
        updated_before=updated_before,
    )
    async with runtime_of(request).db.transaction() as session:
        prompts, next_cursor = await service.list_prompts(
            session, principal, filters, sort=sort, cursor=cursor, limit=limit
        )
        ids = [p.id for p in prompts]
        labels = await service.label_versions(session, ids)
        tags = await service.tags_of(session, ids)
    return PromptPage(
        items=[_prompt_out(p, labels[p.id], tags[p.id]) for p in prompts], next_cursor=next_cursor
    )


@router.post(
    "/{name:prompt}/versions", status_code=201, response_model=PromptSavedOut, summary="Add a version"
)
@idempotent
async def create_version(
    name: Ref, body: CreateVersionIn, request: Request, principal: Writer
) -> PromptSavedOut:
    db = runtime_of(request).db
    checked = await service.check_version(db, principal, body)  # before the write transaction opens
    async with db.transaction(write=True) as session:
        prompt, version = await service.create_version(session, principal, name, body, checked=checked)
        resolved = await resolved_out(session, prompt, version, f"version:{version.version}")
    return await saved_out(db, principal, resolved)


@router.get("/{name:prompt}/versions", response_model=VersionPage, summary="List versions, newest first")
async def list_versions(
    name: Ref,
    request: Request,
    principal: Reader,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Limit = 50,
) -> VersionPage:
    async with runtime_of(request).db.transaction() as session:
        prompt, versions, next_cursor = await service.list_versions(
            session, principal, name, cursor=cursor, limit=limit
        )
        labels = (await service.label_versions(session, [prompt.id]))[prompt.id]
    return VersionPage(items=[version_out(prompt, v, labels) for v in versions], next_cursor=next_cursor)


@router.get(
    "/{name:prompt}/versions/{number}/lint",
    response_model=LintOut,
    summary="Lint a saved version now (current project lint settings, includes and model windows)",
)
async def lint_version(
    name: Ref, number: Annotated[int, Path(ge=1, le=DB_INT_MAX)], request: Request, principal: Reader
) -> LintOut:
    async with runtime_of(request).db.transaction() as session:
        prompt, version, findings, config = await service.lint_saved_version(session, principal, name, number)
    return lint_out(findings, config, [], name=prompt.name, version=version.version)


@router.get("/{name:prompt}/labels", response_model=list[LabelOut], summary="Current labels")
async def list_labels(name: Ref, request: Request, principal: Reader) -> list[LabelOut]:
    async with runtime_of(request).db.transaction() as session:
        prompt = await service.get_prompt(session, principal, name)
        labels = await service.labels_of_prompt(session, prompt.id)
        numbers = (await service.label_versions(session, [prompt.id]))[prompt.id]
        deployable = await service.deployable_labels(session, principal.project_id)
    return [
        LabelOut(
            name=n,
            version=numbers[n],
            version_id=lbl.version_id,
            deployable=n in deployable,
            updated_at=lbl.updated_at,
            updated_by=lbl.updated_by,
        )
        for n, lbl in sorted(labels.items())
    ]


@router.get(
    "/{name:prompt}/lineage",
    response_model=LineageOut,
    summary="Fork lineage: which prompt this one was forked from, and the prompts forked from it",
)
async def lineage(name: Ref, request: Request, principal: Reader) -> LineageOut:
    async with runtime_of(request).db.transaction() as session:
        prompt, sources, forks = await service.lineage(session, principal, name)

    def link(edge: service.LineageLink) -> LineageLinkOut:
        return LineageLinkOut(
            prompt=edge.prompt_name,
            version=edge.version,
            from_prompt=edge.from_prompt_name,
            from_version=edge.from_version,
            created_at=edge.created_at,
        )

    return LineageOut(
        name=prompt.name, forked_from=[link(e) for e in sources], forks=[link(e) for e in forks]
    )


@router.get("/{name:prompt}/history", response_model=list[LabelEventOut], summary="Label move history")
async def history(
    name: Ref,
    request: Request,
    principal: Reader,
    label: Annotated[str | None, Query(max_length=63)] = None,
    limit: Limit = 100,
) -> list[LabelEventOut]:
    async with runtime_of(request).db.transaction() as session:
        rows = await service.label_history(session, principal, name, label, limit)
    return [
        LabelEventOut(
            id=e.id,
            label=e.label,
            action=e.action,
            from_version=f,
            to_version=t,
            from_version_id=e.from_version_id,
            to_version_id=e.to_version_id,
            reason=e.reason,
            actor_id=e.actor_id,
            created_at=e.created_at,
        )
        for e, f, t in rows
    ]


GATED = approvals_api.GATED


async def _moved_or_pending(
    session: AsyncSession, outcome: service.LabelMove | PendingApproval
) -> LabelMoveOut | Response:
    if isinstance(outcome, PendingApproval):
        return await approvals_api.pending_response(session, outcome)
    return _move_out(outcome)


@router.put(
    "/{name:prompt}/labels/{label}",
    response_model=LabelMoveOut,
    responses=GATED,  # type: ignore[arg-type]
    summary="Point a label at a version (202 with an approval request on a gated label)",
)
async def set_label(
    name: Ref, label: str, body: SetLabelIn, request: Request, principal: Labeller
) -> LabelMoveOut | Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        move = await service.set_label(
            session,
            principal,
            name,
            label,
            version=body.version,
            version_id=body.version_id,
            reason=body.reason,
        )
        return await _moved_or_pending(session, move)


@router.delete("/{name:prompt}/labels/{label}", status_code=204, summary="Remove a label")
async def delete_label(name: Ref, label: str, request: Request, principal: Labeller) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.delete_label(session, principal, name, label)
    return Response(status_code=204)


@router.post(
    "/{name:prompt}/labels/{label}/rollback",
    response_model=LabelMoveOut,
    responses=GATED,  # type: ignore[arg-type]
    summary="Roll a label back (on a gated label the project's rollback mode decides: move or request)",
)
async def rollback_label(
    name: Ref, label: str, body: RollbackIn, request: Request, principal: Deployer
) -> LabelMoveOut | Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        move = await service.rollback(
            session,
            principal,
            name,
            label,
            to_version=body.version,
            reason=body.reason,
            approver=body.approver,
        )
        return await _moved_or_pending(session, move)


@router.post("/{name:prompt}/render", response_model=RenderOut, summary="Render a version with variables")
async def render(name: Ref, body: RenderIn, request: Request, principal: Reader) -> RenderOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction() as session:
        prompt, version, result = await service.render(
            session,
            principal,
            name,
            body.variables,
            label=body.label,
            version=body.version,
            max_depth=runtime.settings.include_max_depth,
        )
    used = [
        RenderedVersionRef(
            prompt_id=prompt.id, name=prompt.name, version_id=version.id, version=version.version
        )
    ]
    used += [
        RenderedVersionRef(
            prompt_id=i.prompt_id, name=i.prompt_name, version_id=i.version_id, version=i.version
        )
        for i in result.included
    ]
    return RenderOut(
        kind=version.kind,
        text=result.text,
        messages=result.messages,
        prompt_id=prompt.id,
        version_id=version.id,
        version=version.version,
        versions_used=used,
    )


@router.get("/{name:prompt}/diff", response_model=DiffOut, summary="Diff two versions")
async def diff(
    name: Ref,
    request: Request,
    principal: Reader,
    from_: Annotated[
        VersionRef, Query(alias="from", max_length=300, description="Version number, label, name@ref or id")
    ],
    to: Annotated[VersionRef, Query(max_length=300)],
) -> DiffOut:
    async with runtime_of(request).db.transaction() as session:
        a, b, result, a_name, b_name = await service.diff(session, principal, name, from_, to)
    return DiffOut.model_validate(
        {
            "from": a_name,
            "to": b_name,
            "fromVersionId": a.id,
            "toVersionId": b.id,
            "identical": result["identical"],
            "kindChanged": result["kindChanged"],
            "template": result["template"],
            "variables": result["variables"],
            "modelConfig": result["modelConfig"],
            "responseSchema": result["responseSchema"],
            "metadata": result["metadata"],
        }
    )


@router.post(
    "/{name:prompt}/fork", status_code=201, response_model=ResolvedOut, summary="Fork into a new prompt"
)
@idempotent
async def fork(name: Ref, body: ForkIn, request: Request, principal: Writer) -> ResolvedOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        prompt, version = await service.fork(session, principal, name, body)
        return await resolved_out(session, prompt, version, f"version:{version.version}")


@router.put(
    "/{name:prompt}",
    response_model=PushOut,
    summary="Push a prompt file: create the prompt, add a version if the content changed, or report unchanged",
)
async def push_prompt(
    name: Ref,
    body: PushPromptIn,
    request: Request,
    principal: Writer,
    dry_run: Annotated[
        bool, Query(alias="dryRun", description="Say what the push would do; change nothing")
    ] = False,
) -> PushOut:
    if body.name and body.name != name:
        raise ValidationProblem(
            f"The body names {body.name!r} but the path names {name!r}", code="name_mismatch"
        )
    body = body.model_copy(update={"name": name})
    db = runtime_of(request).db
    checked = await service.check_version(db, principal, body)  # before the write transaction opens
    async with db.transaction(write=not dry_run) as session:
        pushed = await service.push_prompt(session, principal, body, checked=checked, dry_run=dry_run)
        resolved = None
        pending = []
        if pushed.prompt is not None and pushed.version is not None and not dry_run:
            resolved = await resolved_out(session, pushed.prompt, pushed.version, f"version:{pushed.number}")
            pending = await approvals.open_for_version(session, principal, pushed.version.id)
    return PushOut(
        action=pushed.action,
        dry_run=dry_run,
        changed=pushed.changed,
        name=name,
        version=pushed.number,
        resolved=resolved,
        pending_approvals=[approvals_api.request_ref(r) for r in pending],
    )


@router.patch("/{name:prompt}", response_model=PromptOut, summary="Update description, tags, archived")
async def update_prompt(name: Ref, body: UpdatePromptIn, request: Request, principal: Writer) -> PromptOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        prompt = await service.update_prompt(session, principal, name, body)
        return await prompt_out(session, prompt)


@router.get(
    "/{name:prompt}/similar",
    response_model=SimilarListOut,
    summary="Prompts that mean about the same as this one (latest versions)",
)
async def similar(
    name: Ref,
    request: Request,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    min_similarity: Annotated[
        float | None,
        Query(
            alias="minSimilarity",
            ge=0.0,
            le=1.0,
            description="Lowest cosine similarity reported (default: the embedding model's, 0.35 for the default)",
        ),
    ] = None,
    projects: search_api.Projects = None,
) -> SimilarListOut:
    async with runtime_of(request).db.transaction() as session:
        doc, project, found = await search_service.similar(
            session, principal, name, limit=limit, min_similarity=min_similarity, projects=projects or ()
        )
    return SimilarListOut(
        prompt=PromptRefOut(**search_api.ref_out(doc, project)),
        items=[
            SimilarOut(
                **search_api.ref_out(s.doc, s.project_name),
                similarity=s.similarity,
                duplicate_score=s.duplicate_score,
                duplicate=s.duplicate,
            )
            for s in found
        ],
    )


class ResolvedInExperimentOut(ResolvedOut):
    experiment: ExperimentTagOut | None = Field(
        default=None,
        description="With `unit`: the running experiment on the label and the unit's (sticky) arm; absent when "
        "no experiment runs there",
    )


@router.get(
    "/{name:prompt}", response_model=ResolvedInExperimentOut, summary="Resolve name, name@label or name@3"
)
async def resolve(
    name: Ref,
    request: Request,
    principal: Reader,
    label: Annotated[str | None, Query(max_length=63)] = None,
    version: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
    unit: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="A user or session id: when an experiment runs on the label, the unit's arm is served",
        ),
    ] = None,
) -> Response:
    db = runtime_of(request).db
    resolved = await service.resolve_cached(db, principal, name, label=label, version=version)
    if unit is not None and resolved.how.startswith("label:") and resolved.how != "label:latest":
        body = await _experiment_answer(request, principal, resolved, resolved.how[len("label:") :], unit)
        if body is not None:
            return Response(body, media_type="application/json")
    # The hot path: the finished JSON is kept with the cache entry, so a cache hit builds nothing.
    body = resolved.answers.get("rest")
    if body is None:
        body = resolved.answers["rest"] = resolved_from(resolved).model_dump_json(by_alias=True).encode()
    return Response(body, media_type="application/json")


async def _experiment_answer(
    request: Request, principal: Principal, resolved: service.Resolved, label: str, unit: str
) -> bytes | None:
    """The unit's arm of the experiment running on (prompt, label), as the finished JSON; None without one.
    The exposure is queued in memory (written in bulk), and the JSON is kept with the arm version's cache
    entry, so a repeat costs a hash, a dict lookup and two cache hits."""
    runtime = runtime_of(request)
    assignment = await experiments.assignment_for(
        runtime.db, principal.project_id, resolved.prompt.id, label, unit, runtime.exposures.pending_arm
    )
    if assignment is None:
        return None
    arm = assignment.arm
    if assignment.exposed:
        runtime.exposures.record(assignment.experiment_id, assignment.unit_hash, arm.name)
    served = resolved
    if arm.version_id != resolved.version.id:
        served = await service.resolve_cached(runtime.db, principal, resolved.prompt.id, version=arm.version)
    key = f"experiment:{assignment.experiment_id}:{arm.name}:{label}"
    body = served.answers.get(key)
    if body is None:
        out = ResolvedInExperimentOut(
            **dict(resolved_from(served)),
            experiment=ExperimentTagOut(id=assignment.experiment_id, arm=arm.name, model=arm.model),
        )
        out.resolved_by = f"label:{label}"
        body = served.answers[key] = out.model_dump_json(by_alias=True).encode()
    return body


# --- lint -----------------------------------------------------------------------------------------------------

lint_router = APIRouter(prefix="/api/v1/lint", tags=["lint"])


def lint_out(
    findings: list[lint.LintFinding],
    config: lint.LintConfig,
    labels: list[str],
    *,
    name: str | None = None,
    version: int | None = None,
) -> LintOut:
    counts = {severity: sum(f.severity == severity for f in findings) for severity in lint.SEVERITIES}
    blocked = sorted(set(labels) & set(config.block_on_labels)) if config.blocking(findings) else []
    return LintOut(
        name=name,
        version=version,
        findings=[LintFindingOut.model_validate(f.to_dict()) for f in findings],
        summary=LintSummary(**counts),
        block_on=config.block_on,
        blocked_labels=blocked,
    )


@lint_router.post("", response_model=LintOut, summary="Lint a prompt body without saving it")
async def lint_prompt(body: LintIn, request: Request, principal: Reader) -> LintOut:
    async with runtime_of(request).db.transaction() as session:
        config = await service.lint_config(session, principal.project_id)
        findings = await service.lint_fields(
            session, principal, body, output_labels=body.output_labels, config=config
        )
    return lint_out(findings, config, body.labels, name=body.name)


@lint_router.get(
    "/rules", response_model=list[LintRuleOut], summary="Every lint rule, as this project's settings apply it"
)
async def lint_rules(request: Request, principal: Reader) -> list[LintRuleOut]:
    async with runtime_of(request).db.transaction() as session:
        config = await service.lint_config(session, principal.project_id)
    return [
        LintRuleOut(
            id=rule.id,
            name=rule.name,
            default_severity=rule.severity,
            severity=config.severity.get(rule.id, rule.severity),
            enabled=rule.id not in config.disabled,
            catches=rule.catches,
            fix=rule.fix,
        )
        for rule in lint.RULES
    ]


# --- preview --------------------------------------------------------------------------------------------------

preview_router = APIRouter(prefix="/api/v1/render", tags=["prompts"])


@preview_router.post("", response_model=PreviewOut, summary="Render a prompt body without saving it")
async def preview(body: PreviewIn, request: Request, principal: Reader) -> PreviewOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction() as session:
        result = await service.render_fields(
            session,
            principal,
            body,
            body.render_variables,
            max_depth=runtime.settings.include_max_depth,
        )
    used = [
        RenderedVersionRef(
            prompt_id=i.prompt_id, name=i.prompt_name, version_id=i.version_id, version=i.version
        )
        for i in result.included
    ]
    return PreviewOut(kind=body.kind, text=result.text, messages=result.messages, versions_used=used)
