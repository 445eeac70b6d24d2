"""Prompt registry behaviour: prompts, immutable versions, labels, rollback, fork, diff, render.

Service functions take an open session (the caller owns the transaction) and the acting principal; they
scope every query to the principal's project and append an audit event for every change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from promptops.auth.principal import Principal
from promptops.cache import TTLCache
from promptops.db import Database, utcnow
from promptops.errors import Conflict, NotFound, ProblemError, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import has_prefix, new_id
from promptops.logging import log
from promptops.pagination import (
    decode_cursor,
    decode_int_cursor,
    encode_cursor,
    fetch_page,
    filter_by_name,
    invalid_cursor,
)
from promptops.providers import service as providers
from promptops.registry.approvals import gate as approval_gate
from promptops.registry.approvals import rules as approval_rules
from promptops.registry.approvals.gate import PendingApproval
from promptops.registry.hashing import content_hash
from promptops.registry.models import LabelEvent, Prompt, PromptLabel, PromptTag, PromptVersion
from promptops.registry.refs import parse_ref, validate_prompt_name
from promptops.registry.schemas import (
    CreatePromptIn,
    CreateVersionIn,
    ForkIn,
    UpdatePromptIn,
    VersionFields,
    label_name_problem,
)
from promptops.search import index as search_index
from promptops.search import service as search_service
from promptops.templates import engine, lint
from promptops.templates import pool as template_pool
from promptops.tenancy import service as tenancy
from promptops.tenancy.service import get_scoped, get_scoped_many, scoped
from promptops.validation import YEAR_MAX, YEAR_MIN

DEFAULT_DEPLOYABLE_LABELS = ("production",)


def check_label_name(label: str) -> None:
    problem = label_name_problem(label)
    if problem:
        raise ValidationProblem(problem, code="invalid_label")


# Resolved (prompt, version) pairs by (project, name, label, version). Every registry write in this process
# drops its project's entries; other replicas converge within the TTL (configured at app start).
resolve_cache: TTLCache[Resolved] = TTLCache(ttl=0)


def _invalidate(project_id: str) -> None:
    resolve_cache.invalidate(lambda key: key[0] == project_id)


def _version_text(version: PromptVersion) -> search_index.VersionText:
    return search_index.VersionText(
        version_id=version.id,
        version=version.version,
        template=version.template,
        messages=version.messages,
        variables=[str(v.get("name", "")) for v in version.variables or [] if isinstance(v, dict)],
        commit_message=version.commit_message,
        model=str((version.model_config_ or {}).get("model") or ""),
        author=version.created_by,
        content_hash=version.content_hash,
        created_at=version.created_at,
    )


async def _index(
    session: AsyncSession,
    prompt: Prompt,
    new: Sequence[PromptVersion] = (),
    scope: search_index.Scope = "all",
    *,
    embed: bool = True,
) -> None:
    """Bring the search index's documents of ``prompt`` up to date, in the caller's transaction (``embed``
    False: new documents wait for the background embedding, search_index.index_prompt)."""
    labels: dict[str, list[str]] = {}
    for label in (await labels_of_prompt(session, prompt.id)).values():
        labels.setdefault(label.version_id, []).append(label.name)
    state = search_index.PromptState(
        project_id=prompt.project_id,
        prompt_id=prompt.id,
        name=prompt.name,
        description=prompt.description,
        tags=(await tags_of(session, [prompt.id]))[prompt.id],
        archived=prompt.archived,
        latest_version=prompt.latest_version,
        updated_at=prompt.updated_at,
        labels=labels,
    )
    await search_index.index_prompt(session, state, [_version_text(v) for v in new], scope=scope, embed=embed)


# --- lookups --------------------------------------------------------------------------------------------------


async def get_prompt(session: AsyncSession, principal: Principal, name_or_id: str) -> Prompt:
    """A prompt of the principal's project by name or id (404 otherwise)."""
    return await get_scoped(
        session,
        principal,
        Prompt,
        name_or_id,
        column=Prompt.id if has_prefix(name_or_id, "prompt") else Prompt.name,
        missing=f"Prompt {name_or_id!r} not found",
        code="prompt_not_found",
    )


async def prompt_id_of(session: AsyncSession, principal: Principal, name_or_id: str) -> str:
    """The id of the project's prompt named ``name_or_id``; an id (or a name that matches nothing) as given,
    so a filter on it matches nothing rather than failing."""
    if has_prefix(name_or_id, "prompt"):
        return name_or_id
    found = (
        await session.execute(scoped(select(Prompt.id), Prompt, principal).where(Prompt.name == name_or_id))
    ).scalar_one_or_none()
    return found or name_or_id


def _no_version(prompt_name: str, number: int | None) -> NotFound:
    """404 for a version number the prompt lacks (``None``: the prompt has no versions at all)."""
    if number is None:
        return NotFound(f"Prompt {prompt_name!r} has no versions", code="version_not_found")
    return NotFound(f"Prompt {prompt_name!r} has no version {number}", code="version_not_found")


def _no_label(prompt_name: str, label: str) -> NotFound:
    return NotFound(f"Prompt {prompt_name!r} has no label {label!r}", code="label_not_found")


async def _version_by_number(session: AsyncSession, prompt: Prompt, number: int) -> PromptVersion:
    version = (
        await session.execute(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id, PromptVersion.version == number)
        )
    ).scalar_one_or_none()
    if version is None:
        raise _no_version(prompt.name, number)
    return version


async def _version_by_label(session: AsyncSession, prompt: Prompt, label: str) -> PromptVersion:
    if label == "latest":
        if prompt.latest_version == 0:
            raise _no_version(prompt.name, None)
        return await _version_by_number(session, prompt, prompt.latest_version)
    version = (
        await session.execute(
            select(PromptVersion)
            .join(PromptLabel, PromptLabel.version_id == PromptVersion.id)
            .where(PromptLabel.prompt_id == prompt.id, PromptLabel.name == label)
        )
    ).scalar_one_or_none()
    if version is None:
        raise _no_label(prompt.name, label)
    return version


def unsaved_version(
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None = None,
    *,
    variables: list[dict[str, Any]] | None = None,
    response_schema: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
) -> PromptVersion:
    """A version that is not in the registry (raw text, a candidate): variables default to the ones used."""
    if variables is None:
        used = engine.analyze(kind, template, messages, []).used
        variables = [{"name": n, "type": "any", "required": False} for n in used]
    return PromptVersion(
        id="unsaved",
        kind=kind,
        template=template,
        messages=messages,
        variables=variables,
        response_schema=response_schema,
        model_config_=model_config or {},
    )


async def get_version_by_id(session: AsyncSession, principal: Principal, version_id: str) -> PromptVersion:
    """A prompt version of the principal's project by id (404 ``version_not_found`` otherwise)."""
    return await get_scoped(
        session,
        principal,
        PromptVersion,
        version_id,
        missing=f"Version {version_id} not found",
        code="version_not_found",
    )


async def versions_by_id(
    session: AsyncSession, principal: Principal, version_ids: Iterable[str]
) -> dict[str, PromptVersion]:
    """The principal's project's versions with these ids; unknown ids are left out."""
    return await get_scoped_many(session, principal, PromptVersion, version_ids)


async def version_refs(
    session: AsyncSession, principal: Principal, version_ids: Iterable[str]
) -> dict[str, tuple[str, int]]:
    """For each version id of the principal's project: (its prompt id, its number). Unknown ids are left out."""
    ids = sorted({v for v in version_ids if v})
    if not ids:
        return {}
    rows = await session.execute(
        scoped(
            select(PromptVersion.id, PromptVersion.prompt_id, PromptVersion.version), PromptVersion, principal
        ).where(PromptVersion.id.in_(ids))
    )
    return {version_id: (prompt_id, number) for version_id, prompt_id, number in rows.all()}


async def select_version(
    session: AsyncSession, prompt: Prompt, *, label: str | None = None, version: int | None = None
) -> tuple[PromptVersion, str]:
    """The version a label or number selects (default: latest), and how it was selected."""
    if label is not None and version is not None:
        raise ValidationProblem("Give a label or a version, not both", code="ambiguous_selector")
    if version is not None:
        return await _version_by_number(session, prompt, version), f"version:{version}"
    label = label or "latest"
    return await _version_by_label(session, prompt, label), f"label:{label}"


@dataclass(frozen=True)
class Resolved:
    """A resolved version with what a client needs alongside it (the prompt's labels and tags)."""

    prompt: Prompt
    version: PromptVersion
    how: str
    labels: dict[str, int]
    tags: list[str]
    # Finished answers built from this entry by a face (e.g. the REST route's JSON body), kept with it in the
    # resolve cache so a hit does not rebuild them; dropped with the entry on every registry write.
    answers: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


def _split_ref(name: str, label: str | None, version: int | None) -> tuple[str, str | None, int | None]:
    if "@" in name:
        if label is not None or version is not None:
            raise ValidationProblem(
                "Selector given both in the name and as a parameter", code="ambiguous_selector"
            )
        ref = parse_ref(name)
        return ref.name, ref.label, ref.version
    return name, label, version


# Label and tag names cannot contain "," or "=" (LABEL_RE, _check_tags), so both can travel as one string each.
_LABELS_OF_PROMPT = (
    select(func.aggregate_strings(PromptLabel.name + "=" + cast(PromptVersion.version, String), ","))
    .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
    .where(PromptLabel.prompt_id == Prompt.id)
    .scalar_subquery()
)
_TAGS_OF_PROMPT = (
    select(func.aggregate_strings(PromptTag.tag, ","))
    .where(PromptTag.prompt_id == Prompt.id)
    .scalar_subquery()
)
# The same lists as a second query, for SQLite: measured ~5% more uncached resolves/s there than the correlated
# subqueries, while on PostgreSQL the one query saves a network round trip.
_LABELS_AND_TAGS = union_all(
    select(PromptLabel.name, PromptVersion.version)
    .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
    .where(PromptLabel.prompt_id == bindparam("prompt_id")),
    select(PromptTag.tag, cast(null(), Integer)).where(PromptTag.prompt_id == bindparam("prompt_id")),
)


def _resolve_statement(by_id: bool, selector: str, lists: bool) -> Select[Any]:
    """The prompt and the selected version (NULL when the selector matches none), with its labels and tags as
    two strings when ``lists``."""
    columns = (
        (Prompt, PromptVersion, _LABELS_OF_PROMPT, _TAGS_OF_PROMPT) if lists else (Prompt, PromptVersion)
    )
    stmt = select(*columns).where(
        Prompt.project_id == bindparam("project_id"),
        (Prompt.id if by_id else Prompt.name) == bindparam("name"),
    )
    if selector == "label":
        return stmt.outerjoin(
            PromptLabel, (PromptLabel.prompt_id == Prompt.id) & (PromptLabel.name == bindparam("label"))
        ).outerjoin(PromptVersion, PromptVersion.id == PromptLabel.version_id)
    number = Prompt.latest_version if selector == "latest" else bindparam("version")
    return stmt.outerjoin(
        PromptVersion, (PromptVersion.prompt_id == Prompt.id) & (PromptVersion.version == number)
    )


# Built once: statement construction costs more than running these indexed lookups.
_RESOLVE = {
    (by_id, selector, lists): _resolve_statement(by_id, selector, lists)
    for by_id in (False, True)
    for selector in ("label", "latest", "version")
    for lists in (False, True)
}


def _labels_and_tags(session: Session, row: Any) -> tuple[dict[str, int], list[str]]:
    labels: dict[str, int] = {}
    tags: list[str] = []
    if len(row) == 4:
        for key, _, number in (pair.partition("=") for pair in (row[2] or "").split(",") if pair):
            labels[key] = int(number)
        return labels, sorted(tag for tag in (row[3] or "").split(",") if tag)
    for key, number in session.execute(_LABELS_AND_TAGS, {"prompt_id": row[0].id}):
        if number is None:
            tags.append(key)
        else:
            labels[key] = number
    return labels, sorted(tags)


def lookup_resolved(
    session: Session, project_id: str, name: str, label: str | None, version: int | None
) -> Resolved:
    """Resolve a prompt of ``project_id`` (by name or id) to one version in one or two indexed queries: a sync
    unit of work for :meth:`promptops.db.Database.read` (the uncached resolve path) and :func:`resolve_full`."""
    if label is not None and version is not None:
        raise ValidationProblem("Give a label or a version, not both", code="ambiguous_selector")
    if version is not None:
        selector, how = "version", f"version:{version}"
    else:
        label = label or "latest"
        selector, how = ("latest" if label == "latest" else "label"), f"label:{label}"
    params = {"project_id": project_id, "name": name, "label": label, "version": version}
    lists = session.get_bind().dialect.name != "sqlite"
    row = session.execute(_RESOLVE[has_prefix(name, "prompt"), selector, lists], params).one_or_none()
    if row is None:
        raise NotFound(f"Prompt {name!r} not found", code="prompt_not_found")
    prompt, found = row[0], row[1]
    if found is None:
        if selector == "label":
            raise _no_label(prompt.name, str(label))
        raise _no_version(prompt.name, version)
    labels, tags = _labels_and_tags(session, row)
    return Resolved(prompt, found, how, labels, tags)


async def resolve_full(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    label: str | None = None,
    version: int | None = None,
) -> Resolved:
    """Resolve ``name`` (or ``name@label`` / ``name@3`` inside ``name``) to one immutable version."""
    name, label, version = _split_ref(name, label, version)
    project_id = principal.project_id
    return await session.run_sync(lambda sync: lookup_resolved(sync, project_id, name, label, version))


async def resolve_cached(
    db: Database,
    principal: Principal,
    name: str,
    *,
    label: str | None = None,
    version: int | None = None,
) -> Resolved:
    """:func:`resolve_full` through the process cache: the hot path of clients fetching prompts by label.
    A miss costs one :meth:`~promptops.db.Database.read` (two indexed queries)."""
    name, label, version = _split_ref(name, label, version)
    project_id = principal.project_id

    async def load() -> Resolved:
        return await db.read(lambda session: lookup_resolved(session, project_id, name, label, version))

    return await resolve_cache.get_or_load((project_id, name, label, version), load)


async def resolve(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    label: str | None = None,
    version: int | None = None,
) -> tuple[Prompt, PromptVersion, str]:
    resolved = await resolve_full(session, principal, name, label=label, version=version)
    return resolved.prompt, resolved.version, resolved.how


async def labels_of_prompt(session: AsyncSession, prompt_id: str) -> dict[str, PromptLabel]:
    rows = await session.execute(select(PromptLabel).where(PromptLabel.prompt_id == prompt_id))
    return {label.name: label for label in rows.scalars()}


async def label_versions(session: AsyncSession, prompt_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """{prompt id: {label: version number}} for many prompts in one query."""
    result: dict[str, dict[str, int]] = {pid: {} for pid in prompt_ids}
    if not prompt_ids:
        return result
    rows = await session.execute(
        select(PromptLabel.prompt_id, PromptLabel.name, PromptVersion.version)
        .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
        .where(PromptLabel.prompt_id.in_(prompt_ids))
    )
    for prompt_id, label, number in rows:
        result[prompt_id][label] = number
    return result


async def tags_of(session: AsyncSession, prompt_ids: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {pid: [] for pid in prompt_ids}
    if not prompt_ids:
        return result
    rows = await session.execute(
        select(PromptTag.prompt_id, PromptTag.tag)
        .where(PromptTag.prompt_id.in_(prompt_ids))
        .order_by(PromptTag.tag)
    )
    for prompt_id, tag in rows:
        result[prompt_id].append(tag)
    return result


# --- create ---------------------------------------------------------------------------------------------------


def _check_tags(tags: list[str]) -> list[str]:
    import re

    clean = sorted(set(tags))
    for tag in clean:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", tag):
            raise ValidationProblem(
                f"Invalid tag {tag!r}: letters, digits, '_', '.', ':' or '-', at most 64", code="invalid_tag"
            )
    return clean


async def _analyze(fields: VersionFields) -> tuple[list[dict[str, Any]], engine.TemplateAnalysis]:
    """Validate a version's templates and variables (422 when they do not parse); specs and analysis.

    Save-time warnings (undeclared/unused variables and the other lint rules) come from :func:`lint_fields`.
    """
    specs = [engine.VariableSpec.from_dict(v.model_dump()) for v in fields.variables]
    messages = [m.model_dump() for m in fields.messages] if fields.messages else None
    analysis = await engine.analyze_async(fields.kind, fields.template, messages, specs)
    return [s.to_dict() for s in specs], analysis


@dataclass(frozen=True)
class VersionCheck:
    """What saving a version computes from its fields alone: variable specs, template analysis, lint findings."""

    fields: VersionFields
    variables: list[dict[str, Any]]
    findings: list[lint.LintFinding]


async def _check_version(session: AsyncSession, principal: Principal, fields: VersionFields) -> VersionCheck:
    variables, analysis = await _analyze(fields)
    findings = await lint_fields(session, principal, fields, analysis=analysis)
    return VersionCheck(fields, variables, findings)


async def check_version(db: Database, principal: Principal, fields: VersionFields) -> VersionCheck:
    """Parse, analyse and lint a version's fields before a write transaction opens (a big template takes a
    worker process seconds; on SQLite a write transaction holds the one writer lock meanwhile). 422 when the
    templates do not parse. Pass the result to :func:`create_prompt` / :func:`create_version` as ``checked``."""
    async with db.transaction() as session:
        return await _check_version(session, principal, fields)


def _content_hash(fields: VersionFields, variables: list[dict[str, Any]]) -> str:
    """The hash a version with these fields (and these checked variable specs) is stored with."""
    messages = [m.model_dump() for m in fields.messages] if fields.messages else None
    model_config = fields.model_config_.model_dump(exclude_none=True)
    return content_hash(
        fields.kind, fields.template, messages, variables, model_config, fields.response_schema
    )


async def _add_version(
    session: AsyncSession,
    principal: Principal,
    prompt: Prompt,
    fields: VersionFields,
    *,
    source: str | None = None,
    parent_version_id: str | None = None,
    checked: VersionCheck | None = None,
) -> PromptVersion:
    if checked is None or checked.fields is not fields:
        checked = await _check_version(session, principal, fields)
    variables, findings = checked.variables, checked.findings
    messages = [m.model_dump() for m in fields.messages] if fields.messages else None
    model_config = fields.model_config_.model_dump(exclude_none=True)
    parent_id = parent_version_id or fields.parent_version_id
    if parent_id is not None:
        await get_version_by_id(session, principal, parent_id)
    elif prompt.latest_version > 0:
        parent_id = (await _version_by_number(session, prompt, prompt.latest_version)).id
    number = prompt.latest_version + 1
    version = PromptVersion(
        id=new_id("version"),
        project_id=prompt.project_id,
        prompt_id=prompt.id,
        version=number,
        kind=fields.kind,
        template=fields.template,
        messages=messages,
        variables=variables,
        model_config_=model_config,
        response_schema=fields.response_schema,
        metadata_=fields.metadata,
        commit_message=fields.commit_message,
        parent_version_id=parent_id,
        source=source or fields.source,
        content_hash=_content_hash(fields, variables),
        warnings=[f.to_dict() for f in findings],
        created_by=principal.id,
        created_at=utcnow(),
    )
    prompt.latest_version = number
    prompt.updated_at = version.created_at
    session.add(version)
    await session.flush()
    await _index(session, prompt, [version], "version")
    await audit.record(
        session,
        principal,
        "PromptVersionCreated",
        prompt_id=prompt.id,
        data={
            "name": prompt.name,
            "versionId": version.id,
            "version": number,
            "source": version.source,
            "parentId": parent_id,
            "contentHash": version.content_hash,
            "commitMessage": version.commit_message,
        },
    )
    return version


async def create_prompt(
    session: AsyncSession, principal: Principal, body: CreatePromptIn, *, checked: VersionCheck | None = None
) -> tuple[Prompt, PromptVersion]:
    """Create a prompt with its first version (and optional tags and labels); ``checked``: see
    :func:`check_version`."""
    validate_prompt_name(body.name)
    tags = _check_tags(body.tags)
    exists = (
        await session.execute(scoped(select(Prompt.id), Prompt, principal).where(Prompt.name == body.name))
    ).first()
    if exists is not None:
        raise Conflict(f"Prompt {body.name!r} already exists", code="prompt_exists")
    now = utcnow()
    prompt = Prompt(
        id=new_id("prompt"),
        project_id=principal.project_id,
        name=body.name,
        description=body.description,
        archived=False,
        latest_version=0,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(prompt)
    session.add_all(PromptTag(prompt_id=prompt.id, tag=t, project_id=principal.project_id) for t in tags)
    await session.flush()
    await audit.record(
        session,
        principal,
        "PromptCreated",
        prompt_id=prompt.id,
        data={"name": prompt.name, "description": prompt.description, "tags": tags},
    )
    version = await _add_version(session, principal, prompt, body, checked=checked)
    for label in body.labels:
        await _move_label(
            session, principal, prompt, label, version, action="set", reason=body.commit_message
        )
    _invalidate(principal.project_id)
    return prompt, version


async def _lock_prompt(session: AsyncSession, principal: Principal, name_or_id: str) -> Prompt:
    """The prompt row, locked for update so version numbers stay gapless under concurrent writers."""
    prompt = await get_prompt(session, principal, name_or_id)
    locked = (
        await session.execute(
            select(Prompt)
            .where(Prompt.id == prompt.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return locked


async def create_version(
    session: AsyncSession,
    principal: Principal,
    name: str,
    body: CreateVersionIn,
    *,
    checked: VersionCheck | None = None,
) -> tuple[Prompt, PromptVersion]:
    """Append an immutable version (number = previous + 1, gapless) and move any requested labels to it;
    ``checked``: see :func:`check_version`."""
    prompt = await _lock_prompt(session, principal, name)
    if prompt.archived:
        raise Conflict(f"Prompt {prompt.name!r} is archived; unarchive it first", code="prompt_archived")
    version = await _add_version(session, principal, prompt, body, checked=checked)
    for label in body.labels:
        await _move_label(
            session, principal, prompt, label, version, action="set", reason=body.commit_message
        )
    _invalidate(principal.project_id)
    return prompt, version


async def update_prompt(
    session: AsyncSession, principal: Principal, name: str, body: UpdatePromptIn
) -> Prompt:
    prompt = await _lock_prompt(session, principal, name)
    changes: dict[str, Any] = {}
    if body.description is not None and body.description != prompt.description:
        changes["description"] = {"from": prompt.description, "to": body.description}
        prompt.description = body.description
    if body.tags is not None:
        tags = _check_tags(body.tags)
        current = (await tags_of(session, [prompt.id]))[prompt.id]
        if tags != current:
            changes["tags"] = {"from": current, "to": tags}
            await session.execute(delete(PromptTag).where(PromptTag.prompt_id == prompt.id))
            session.add_all(PromptTag(prompt_id=prompt.id, tag=t, project_id=prompt.project_id) for t in tags)
    if body.archived is not None and body.archived != prompt.archived:
        changes["archived"] = {"from": prompt.archived, "to": body.archived}
        prompt.archived = body.archived
    if changes:
        prompt.updated_at = utcnow()
        await session.flush()
        await _index(session, prompt)
        event = "PromptArchived" if changes.keys() == {"archived"} and prompt.archived else "PromptUpdated"
        await audit.record(
            session, principal, event, prompt_id=prompt.id, data={"name": prompt.name, "changes": changes}
        )
        _invalidate(principal.project_id)
    return prompt


PushAction = Literal["created", "versionCreated", "updated", "unchanged"]


@dataclass(frozen=True)
class PushResult:
    """What pushing a prompt file did (or, on a dry run, would do)."""

    action: PushAction
    changed: list[str]  # prompt details that differ from the file: description, tags
    number: int  # the version current after the push
    prompt: Prompt | None  # None only on a dry run that would create the prompt
    version: PromptVersion | None  # the new or current version; None on a dry run that would add one


async def push_prompt(
    session: AsyncSession, principal: Principal, body: CreatePromptIn, *, checked: VersionCheck, dry_run: bool
) -> PushResult:
    """Make the registry hold ``body`` (a prompt file): create the prompt, or add a version when the content hash
    differs from the latest version's (moving ``body.labels`` to it), or report it unchanged. Description and
    tags the file sets are updated on the prompt. A dry run decides the same way and writes nothing."""
    validate_prompt_name(body.name)
    found = (
        await session.execute(scoped(select(Prompt), Prompt, principal).where(Prompt.name == body.name))
    ).scalar_one_or_none()
    if found is None:
        if dry_run:
            return PushResult("created", [], 1, None, None)
        prompt, version = await create_prompt(session, principal, body, checked=checked)
        return PushResult("created", [], version.version, prompt, version)
    prompt = found if dry_run else await _lock_prompt(session, principal, found.id)
    changes = UpdatePromptIn(
        description=body.description
        if "description" in body.model_fields_set and body.description != prompt.description
        else None,
        tags=body.tags if "tags" in body.model_fields_set else None,
    )
    if (
        changes.tags is not None
        and _check_tags(changes.tags) == (await tags_of(session, [prompt.id]))[prompt.id]
    ):
        changes.tags = None
    changed = sorted(changes.model_dump(exclude_none=True))
    latest = await _version_by_number(session, prompt, prompt.latest_version)
    same = _content_hash(checked.fields, checked.variables) == latest.content_hash
    if dry_run:
        action: PushAction = "unchanged" if same and not changed else "updated" if same else "versionCreated"
        return PushResult(action, changed, latest.version + (not same), prompt, latest if same else None)
    if changed:
        await update_prompt(session, principal, prompt.id, changes)
    if same:
        return PushResult("updated" if changed else "unchanged", changed, latest.version, prompt, latest)
    prompt, version = await create_version(session, principal, prompt.id, body, checked=checked)
    return PushResult("versionCreated", changed, version.version, prompt, version)


# --- labels ---------------------------------------------------------------------------------------------------


async def deployable_labels(session: AsyncSession, project_id: str) -> frozenset[str]:
    configured = (await tenancy.project_settings(session, project_id)).get("deployableLabels")
    return frozenset(configured if configured is not None else DEFAULT_DEPLOYABLE_LABELS)


@dataclass(frozen=True)
class LabelMove:
    prompt: Prompt
    label: str
    version: PromptVersion
    previous: PromptVersion | None
    deployed: bool


async def _move_label(
    session: AsyncSession,
    principal: Principal,
    prompt: Prompt,
    label: str,
    version: PromptVersion,
    *,
    action: str,
    reason: str = "",
    approver: str | None = None,
    grant: approval_gate.Grant | None = None,
) -> LabelMove | PendingApproval:
    """The one place a label moves. A label the project gates with approvals (``settings.approvals``) is not
    moved: the move becomes an approval request (:class:`PendingApproval`), unless ``grant`` (made only by the
    approvals service for an approved or overridden request) covers exactly this move, or a rollback takes the
    project's rollback fast path."""
    check_label_name(label)
    granted = grant is not None and grant.covers(prompt.id, label, version.id)
    deployable = label in await deployable_labels(session, prompt.project_id)
    if not granted:  # an approved request was checked when it was made, and by its reviewers
        principal.require(Permission.LABEL_WRITE)
        if deployable:
            principal.require(Permission.LABEL_DEPLOY)
    await _check_lint_gate(session, principal, prompt, label, version)
    current = (
        await session.execute(
            select(PromptLabel)
            .where(PromptLabel.prompt_id == prompt.id, PromptLabel.name == label)
            .with_for_update()
        )
    ).scalar_one_or_none()
    previous = await session.get(PromptVersion, current.version_id) if current else None
    fast_path = None
    if not granted:
        rule, fast_path = await approval_gate.needs_request(
            session, principal, prompt, label, version, current.version_id if current else None, action=action
        )
        if rule is not None:
            return await approval_gate.open_request(
                session,
                principal,
                rule,
                prompt=prompt,
                label=label,
                version=version,
                previous=previous,
                action=action,
                reason=reason,
            )
    now = utcnow()
    if current is None:
        session.add(
            PromptLabel(
                prompt_id=prompt.id,
                name=label,
                project_id=prompt.project_id,
                version_id=version.id,
                updated_by=principal.id,
                updated_at=now,
            )
        )
    else:
        current.version_id = version.id
        current.updated_by = principal.id
        current.updated_at = now
    session.add(
        LabelEvent(
            id=new_id("label_event"),
            project_id=prompt.project_id,
            prompt_id=prompt.id,
            label=label,
            from_version_id=previous.id if previous else None,
            to_version_id=version.id,
            action=action,
            reason=reason,
            actor_id=principal.id,
            created_at=now,
        )
    )
    await session.flush()
    await _index(session, prompt, scope="labels")
    data = {
        "name": prompt.name,
        "label": label,
        "versionId": version.id,
        "version": version.version,
        "previousId": previous.id if previous else None,
        "previousVersion": previous.version if previous else None,
        "deployRef": f"{prompt.name}@{label}",
        "reason": reason,
    }
    if grant is not None and granted:
        data["approvalRequestId"] = grant.request_id
        data["approval"] = grant.kind
        data["approvers"] = list(grant.approvers)
    elif fast_path is not None:
        data["approval"] = f"rollbackFastPath:{fast_path}"
    if action == "rollback":
        event = "RollbackTriggered"
        data["approver"] = approver or (
            ", ".join(grant.approvers) if granted and grant else audit.actor_name(principal)
        )
    else:
        event = "PromptDeployed" if deployable else "LabelMoved"
        if deployable:  # seed 004 §12: PromptDeployed {promptId, user, deployRef}
            data["promptId"] = prompt.id
            data["user"] = audit.actor_name(principal)  # a user by id: no personal data in the chain
    await audit.record(session, principal, event, prompt_id=prompt.id, data=data)
    return LabelMove(prompt, label, version, previous, deployable)


async def set_label(
    session: AsyncSession,
    principal: Principal,
    name: str,
    label: str,
    *,
    version: int | None = None,
    version_id: str | None = None,
    reason: str = "",
) -> LabelMove | PendingApproval:
    """Point ``label`` at a version (a deployment when the label is deployable, e.g. production); on a label
    the project gates with approvals the move becomes an approval request (:class:`PendingApproval`)."""
    if label == "latest":
        raise ValidationProblem(
            "'latest' is derived (the newest version) and cannot be set", code="invalid_label"
        )
    prompt = await _lock_prompt(session, principal, name)
    if version_id is not None:
        target = await get_version_by_id(session, principal, version_id)
        if target.prompt_id != prompt.id:
            raise ValidationProblem(
                f"Version {version_id} belongs to another prompt", code="version_mismatch"
            )
    else:
        assert version is not None
        target = await _version_by_number(session, prompt, version)
    move = await _move_label(session, principal, prompt, label, target, action="set", reason=reason)
    _invalidate(principal.project_id)
    return move


async def delete_label(session: AsyncSession, principal: Principal, name: str, label: str) -> None:
    prompt = await _lock_prompt(session, principal, name)
    current = (
        await session.execute(
            select(PromptLabel).where(PromptLabel.prompt_id == prompt.id, PromptLabel.name == label)
        )
    ).scalar_one_or_none()
    if current is None:
        raise _no_label(prompt.name, label)
    if label in await deployable_labels(session, prompt.project_id):
        principal.require(Permission.LABEL_DEPLOY)
    if (await approval_rules.approval_policy(session, prompt.project_id)).rule_for(label) is not None:
        raise Conflict(
            f"Label {label!r} is gated by approvals and cannot be removed; a project admin may first take it out "
            "of settings.approvals.labels (an audited change)",
            code="label_gated",
            label=label,
        )
    await session.delete(current)
    await session.flush()
    await _index(session, prompt, scope="labels")
    session.add(
        LabelEvent(
            id=new_id("label_event"),
            project_id=prompt.project_id,
            prompt_id=prompt.id,
            label=label,
            from_version_id=current.version_id,
            to_version_id=None,
            action="delete",
            actor_id=principal.id,
            created_at=utcnow(),
        )
    )
    await audit.record(
        session,
        principal,
        "LabelRemoved",
        prompt_id=prompt.id,
        data={"name": prompt.name, "label": label, "previousId": current.version_id},
    )
    _invalidate(principal.project_id)


async def rollback(
    session: AsyncSession,
    principal: Principal,
    name: str,
    label: str = "production",
    *,
    to_version: int | None = None,
    to_version_id: str | None = None,
    reason: str = "",
    approver: str | None = None,
) -> LabelMove | PendingApproval:
    """Move ``label`` back: to a named version, or else to where it pointed before its last move. On a label
    gated by approvals the project's rollback mode decides whether it moves now or becomes a request."""
    prompt = await _lock_prompt(session, principal, name)
    current = (
        await session.execute(
            select(PromptLabel).where(PromptLabel.prompt_id == prompt.id, PromptLabel.name == label)
        )
    ).scalar_one_or_none()
    if current is None:
        raise NotFound(f"Prompt {prompt.name!r} has no label {label!r} to roll back", code="label_not_found")
    if to_version_id is not None:
        target = await get_version_by_id(session, principal, to_version_id)
        if target.prompt_id != prompt.id:
            raise ValidationProblem(
                f"Version {to_version_id} belongs to another prompt", code="version_mismatch"
            )
    elif to_version is not None:
        target = await _version_by_number(session, prompt, to_version)
    else:
        last = (
            await session.execute(
                select(LabelEvent)
                .where(LabelEvent.prompt_id == prompt.id, LabelEvent.label == label)
                .order_by(LabelEvent.created_at.desc(), LabelEvent.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if last is None or last.from_version_id is None:
            raise Conflict(
                f"Label {label!r} of {prompt.name!r} has no previous version to roll back to; name a version",
                code="nothing_to_roll_back",
            )
        target = await get_version_by_id(session, principal, last.from_version_id)
    if target.id == current.version_id:
        raise Conflict(f"Label {label!r} already points at version {target.version}", code="rollback_noop")
    move = await _move_label(
        session, principal, prompt, label, target, action="rollback", reason=reason, approver=approver
    )
    _invalidate(principal.project_id)
    return move


async def apply_grant(
    session: AsyncSession, principal: Principal, grant: approval_gate.Grant, *, action: str, reason: str
) -> LabelMove:
    """Move the label an approved or overridden request names (called by the approvals service only)."""
    prompt = await _lock_prompt(session, principal, grant.prompt_id)
    version = await get_version_by_id(session, principal, grant.version_id)
    move = await _move_label(
        session, principal, prompt, grant.label, version, action=action, reason=reason, grant=grant
    )
    if not isinstance(move, LabelMove):  # the grant covers this very move, so the gate cannot ask again
        raise Conflict("The approved move was not applied", code="approval_not_applied")
    _invalidate(principal.project_id)
    return move


async def label_history(
    session: AsyncSession, principal: Principal, name: str, label: str | None = None, limit: int = 100
) -> list[tuple[LabelEvent, int | None, int | None]]:
    """Every move of the prompt's labels (newest first) with version numbers."""
    prompt = await get_prompt(session, principal, name)
    stmt = select(LabelEvent).where(LabelEvent.prompt_id == prompt.id)
    if label is not None:
        stmt = stmt.where(LabelEvent.label == label)
    events = list(
        (
            await session.execute(
                stmt.order_by(LabelEvent.created_at.desc(), LabelEvent.id.desc()).limit(limit)
            )
        ).scalars()
    )
    numbers = dict(
        (
            await session.execute(
                select(PromptVersion.id, PromptVersion.version).where(PromptVersion.prompt_id == prompt.id)
            )
        ).all()
    )
    return [(e, numbers.get(e.from_version_id or ""), numbers.get(e.to_version_id or "")) for e in events]


# --- listing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptFilter:
    """What the library list can narrow on; every field is optional (None = no condition)."""

    prefix: str | None = None
    tag: str | None = None
    label: str | None = None
    query: str | None = None
    archived: bool = False
    model: str | None = None  # the model named in the latest version's model config
    author: str | None = None  # a user id that wrote at least one version
    updated_after: datetime | None = None
    updated_before: datetime | None = None


PromptSort = Literal["name", "updated"]


def _updated_cursor(prompt: Prompt) -> str:
    return encode_cursor(f"{prompt.updated_at.isoformat()}|{prompt.name}")


def _after_updated_cursor(cursor: str) -> Any:
    """Rows after an ``updated`` cursor: older than its time, or as old with a later name."""
    when, _, name = decode_cursor(cursor).partition("|")
    try:
        moment = datetime.fromisoformat(when).astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid_cursor() from None
    if not YEAR_MIN <= moment.year <= YEAR_MAX:  # a hand-made cursor; the cursors given out are real times
        raise invalid_cursor()
    return or_(Prompt.updated_at < moment, and_(Prompt.updated_at == moment, Prompt.name > name))


async def list_prompts(
    session: AsyncSession,
    principal: Principal,
    filters: PromptFilter,
    *,
    sort: PromptSort = "name",
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Prompt], str | None]:
    """Prompts filtered, one page at a time: by name (cursor = last name seen) or most recently updated first."""
    stmt = scoped(select(Prompt), Prompt, principal).where(Prompt.archived == filters.archived)
    stmt = filter_by_name(stmt, Prompt, prefix=filters.prefix, query=filters.query)
    if filters.tag:
        stmt = stmt.where(
            Prompt.id.in_(
                scoped(select(PromptTag.prompt_id), PromptTag, principal).where(PromptTag.tag == filters.tag)
            )
        )
    if filters.label:
        if filters.label == "latest":
            stmt = stmt.where(Prompt.latest_version > 0)
        else:
            stmt = stmt.where(
                Prompt.id.in_(
                    scoped(select(PromptLabel.prompt_id), PromptLabel, principal).where(
                        PromptLabel.name == filters.label
                    )
                )
            )
    if filters.model:
        stmt = stmt.where(
            Prompt.id.in_(
                scoped(select(PromptVersion.prompt_id), PromptVersion, principal)
                .join(Prompt, Prompt.id == PromptVersion.prompt_id)
                .where(
                    PromptVersion.version == Prompt.latest_version,
                    PromptVersion.model_config_["model"].as_string() == filters.model,
                )
            )
        )
    if filters.author:
        stmt = stmt.where(
            Prompt.id.in_(
                scoped(select(PromptVersion.prompt_id), PromptVersion, principal).where(
                    PromptVersion.created_by == filters.author
                )
            )
        )
    if filters.updated_after:
        stmt = stmt.where(Prompt.updated_at >= filters.updated_after)
    if filters.updated_before:
        stmt = stmt.where(Prompt.updated_at < filters.updated_before)
    if sort == "updated":
        if cursor:
            stmt = stmt.where(_after_updated_cursor(cursor))
        ordered = stmt.order_by(Prompt.updated_at.desc(), Prompt.name)
        return await fetch_page(session, ordered, limit, _updated_cursor)
    if cursor:
        stmt = stmt.where(Prompt.name > decode_cursor(cursor))
    return await fetch_page(session, stmt.order_by(Prompt.name), limit, lambda p: encode_cursor(p.name))


async def list_versions(
    session: AsyncSession, principal: Principal, name: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[Prompt, list[PromptVersion], str | None]:
    """Versions of a prompt, newest first (cursor = last version number seen)."""
    prompt = await get_prompt(session, principal, name)
    stmt = select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
    if cursor:
        stmt = stmt.where(PromptVersion.version < decode_int_cursor(cursor))
    rows, next_cursor = await fetch_page(
        session, stmt.order_by(PromptVersion.version.desc()), limit, lambda v: encode_cursor(str(v.version))
    )
    return prompt, rows, next_cursor


# --- fork, diff, render ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageLink:
    """One fork edge: ``version`` of ``prompt_name`` made from ``from_version`` of ``from_prompt_name``."""

    prompt_name: str
    version: int
    from_prompt_name: str
    from_version: int
    created_at: datetime


LINEAGE_LIMIT = 200


async def lineage(
    session: AsyncSession, principal: Principal, name: str
) -> tuple[Prompt, list[LineageLink], list[LineageLink]]:
    """Where a prompt was forked from (versions whose parent is another prompt's version) and the prompts
    forked from it, newest first (at most :data:`LINEAGE_LIMIT` each)."""
    prompt = await get_prompt(session, principal, name)
    child = aliased(PromptVersion)
    parent = aliased(PromptVersion)
    child_prompt = aliased(Prompt)
    parent_prompt = aliased(Prompt)
    edges = (
        select(
            child_prompt.name,
            child.version,
            parent_prompt.name,
            parent.version,
            child.created_at,
        )
        .select_from(child)
        .join(parent, parent.id == child.parent_version_id)
        .join(child_prompt, child_prompt.id == child.prompt_id)
        .join(parent_prompt, parent_prompt.id == parent.prompt_id)
        .where(
            child.project_id == principal.project_id,
            parent.project_id == principal.project_id,
            child.prompt_id != parent.prompt_id,
        )
        .order_by(child.created_at.desc())
        .limit(LINEAGE_LIMIT)
    )
    sources = await session.execute(edges.where(child.prompt_id == prompt.id))
    forks = await session.execute(edges.where(parent.prompt_id == prompt.id))
    return prompt, [LineageLink(*row) for row in sources], [LineageLink(*row) for row in forks]


def version_fields(version: PromptVersion) -> dict[str, Any]:
    return {
        "kind": version.kind,
        "template": version.template,
        "messages": version.messages,
        "variables": version.variables,
        "modelConfig": version.model_config_,
        "responseSchema": version.response_schema,
        "metadata": version.metadata_,
    }


async def fork(
    session: AsyncSession, principal: Principal, name: str, body: ForkIn
) -> tuple[Prompt, PromptVersion]:
    """A new prompt whose version 1 copies a version of another, keeping lineage (source ``forked``)."""
    source_prompt, source_version, _ = await resolve(
        session, principal, name, label=body.label, version=body.version
    )
    validate_prompt_name(body.new_name)
    tags = (
        body.tags if body.tags is not None else (await tags_of(session, [source_prompt.id]))[source_prompt.id]
    )
    create = CreatePromptIn.model_validate(
        {
            "name": body.new_name,
            "description": body.description if body.description is not None else source_prompt.description,
            "tags": tags,
            **version_fields(source_version),
            "commitMessage": body.commit_message
            or f"Forked from {source_prompt.name}@{source_version.version}",
        }
    )
    exists = (
        await session.execute(
            scoped(select(Prompt.id), Prompt, principal).where(Prompt.name == body.new_name)
        )
    ).first()
    if exists is not None:
        raise Conflict(f"Prompt {body.new_name!r} already exists", code="prompt_exists")
    now = utcnow()
    prompt = Prompt(
        id=new_id("prompt"),
        project_id=principal.project_id,
        name=body.new_name,
        description=create.description,
        archived=False,
        latest_version=0,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(prompt)
    session.add_all(
        PromptTag(prompt_id=prompt.id, tag=t, project_id=principal.project_id) for t in _check_tags(tags)
    )
    await session.flush()
    await audit.record(
        session,
        principal,
        "PromptForked",
        prompt_id=prompt.id,
        data={
            "name": prompt.name,
            "fromPromptId": source_prompt.id,
            "fromName": source_prompt.name,
            "fromVersionId": source_version.id,
            "fromVersion": source_version.version,
        },
    )
    version = await _add_version(
        session, principal, prompt, create, source="forked", parent_version_id=source_version.id
    )
    _invalidate(principal.project_id)
    return prompt, version


async def _diff_side(
    session: AsyncSession, principal: Principal, prompt: Prompt, ref: str
) -> tuple[PromptVersion, str]:
    """A diff side: ``3``, ``production``, ``other/name@2`` or a version id."""
    if has_prefix(ref, "version"):
        version = await get_version_by_id(session, principal, ref)
        owner = await session.get(Prompt, version.prompt_id)
        return version, f"{owner.name if owner else '?'}@{version.version}"
    if "@" in ref:
        other, found, _ = await resolve(session, principal, ref)
        return found, f"{other.name}@{found.version}"
    if ref.isdigit():
        found = await _version_by_number(session, prompt, int(ref))
    else:
        found = await _version_by_label(session, prompt, ref)
    return found, f"{prompt.name}@{found.version}"


async def diff(
    session: AsyncSession, principal: Principal, name: str, from_ref: str, to_ref: str
) -> tuple[PromptVersion, PromptVersion, dict[str, Any], str, str]:
    """Unified text diff of template/messages and structured diff of config, variables, schema, metadata."""
    prompt = await get_prompt(session, principal, name)
    a, a_name = await _diff_side(session, principal, prompt, from_ref)
    b, b_name = await _diff_side(session, principal, prompt, to_ref)
    result = await template_pool.diff_versions(version_fields(a), version_fields(b), a_name, b_name)
    return a, b, result, a_name, b_name


async def render(
    session: AsyncSession,
    principal: Principal,
    name: str,
    variables: dict[str, Any],
    *,
    label: str | None = None,
    version: int | None = None,
    max_depth: int = 5,
) -> tuple[Prompt, PromptVersion, engine.RenderResult]:
    """Render a version with variables; includes (``{% include "name@label" %}``) resolve in this project."""
    prompt, found, _ = await resolve(session, principal, name, label=label, version=version)
    return prompt, found, await render_version(session, principal, found, variables, max_depth=max_depth)


def include_resolver(session: AsyncSession, principal: Principal) -> engine.Resolver:
    """Resolves ``{% include "name@label" %}`` references within the principal's project."""

    async def resolver(ref: str) -> engine.IncludedPrompt:
        included_prompt, included, _ = await resolve(session, principal, ref)
        return engine.IncludedPrompt(
            ref=ref,
            prompt_id=included_prompt.id,
            prompt_name=included_prompt.name,
            version_id=included.id,
            version=included.version,
            kind=included.kind,
            template=included.template or "",
            variables=tuple(engine.VariableSpec.from_dict(v) for v in included.variables),
        )

    return resolver


async def render_version(
    session: AsyncSession,
    principal: Principal,
    version: PromptVersion,
    variables: dict[str, Any],
    *,
    max_depth: int = 5,
) -> engine.RenderResult:
    resolver = include_resolver(session, principal)
    specs = [engine.VariableSpec.from_dict(v) for v in version.variables]
    return await engine.render(
        version.kind, version.template, version.messages, specs, variables, resolver, max_depth=max_depth
    )


async def render_fields(
    session: AsyncSession,
    principal: Principal,
    fields: VersionFields,
    variables: dict[str, Any],
    *,
    max_depth: int = 5,
) -> engine.RenderResult:
    """Render an unsaved version body (the editor's preview): the same engine, limits and include
    resolution as a saved version; 422 when the body does not parse or a required variable is missing."""
    specs = [engine.VariableSpec.from_dict(v.model_dump()) for v in fields.variables]
    messages = [m.model_dump() for m in fields.messages] if fields.messages else None
    resolver = include_resolver(session, principal)
    return await engine.render(
        fields.kind, fields.template, messages, specs, variables, resolver, max_depth=max_depth
    )


# --- lint -----------------------------------------------------------------------------------------------------


async def lint_config(session: AsyncSession, project_id: str) -> lint.LintConfig:
    """The project's lint settings (``settings.lint``); defaults when unset or unreadable."""
    raw = (await tenancy.project_settings(session, project_id)).get("lint")
    try:
        return lint.LintConfig.from_settings(raw if isinstance(raw, dict) else None)
    except (ValueError, TypeError):
        # Settings are validated when written; a stale unknown rule id must not break every save.
        return lint.LintConfig()


MAX_LINT_INCLUDES = 50


async def _include_results(
    session: AsyncSession, principal: Principal, refs: Sequence[str]
) -> dict[str, str | None]:
    """For each include reference: None when it resolves to a text prompt here, else why not.

    At most :data:`MAX_LINT_INCLUDES` references are looked up; lint reports the rest as unchecked.
    """
    results: dict[str, str | None] = {}
    for ref in refs[:MAX_LINT_INCLUDES]:
        try:
            name, label, number = _split_ref(ref, None, None)
            included_prompt = await get_prompt(session, principal, name)
            included, _ = await select_version(session, included_prompt, label=label, version=number)
        except ProblemError as problem:
            results[ref] = problem.detail
            continue
        results[ref] = (
            None
            if included.kind == "text"
            else f"{included_prompt.name} v{included.version} is a {included.kind} prompt; only text "
            "prompts can be included"
        )
    return results


async def lint_body(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None,
    variables: Sequence[dict[str, Any]],
    model_config: dict[str, Any],
    metadata: dict[str, Any] | None,
    response_schema: dict[str, Any] | None,
    config: lint.LintConfig | None = None,
    output_labels: Sequence[str] | None = None,
    analysis: engine.TemplateAnalysis | None = None,
) -> list[lint.LintFinding]:
    """Lint one prompt body against this project: includes resolve here, the model's window is looked up."""
    config = config or await lint_config(session, principal.project_id)
    if analysis is None:
        try:
            specs = [engine.VariableSpec.from_dict(v) for v in variables]
            analysis = await engine.analyze_async(kind, template, messages, specs)
        except ProblemError as problem:
            if problem.code == "template_too_complex":
                raise  # linting would hit the same limit
            analysis = None  # lint reports it as a finding
    refs = analysis.includes if analysis is not None else ()
    return await lint.lint_prompt_async(
        kind,
        template,
        messages,
        variables,
        config,
        include_results=await _include_results(session, principal, refs),
        context_window=await providers.context_window_for(session, principal, model_config),
        output_labels=output_labels,
        metadata=metadata,
        model_params=model_config.get("params") if isinstance(model_config.get("params"), dict) else None,
        response_schema=response_schema,
        analysis=analysis,
    )


async def lint_fields(
    session: AsyncSession,
    principal: Principal,
    fields: VersionFields,
    *,
    analysis: engine.TemplateAnalysis | None = None,
    output_labels: Sequence[str] | None = None,
    config: lint.LintConfig | None = None,
) -> list[lint.LintFinding]:
    """Lint a version body (create-version fields) without saving it."""
    return await lint_body(
        session,
        principal,
        kind=fields.kind,
        template=fields.template,
        messages=[m.model_dump() for m in fields.messages] if fields.messages else None,
        variables=[v.model_dump() for v in fields.variables],
        model_config=fields.model_config_.model_dump(exclude_none=True),
        metadata=fields.metadata,
        response_schema=fields.response_schema,
        analysis=analysis,
        output_labels=output_labels,
        config=config,
    )


def lint_offline(
    fields: VersionFields,
    config: lint.LintConfig,
    *,
    context_window: int | None = None,
    output_labels: Sequence[str] | None = None,
) -> list[lint.LintFinding]:
    """Lint a prompt body with no server or database (``promptops lint FILE``): the model's window comes from
    ``context_window`` or the built-in catalog, and includes cannot be resolved (they are reported as info)."""
    model_config = fields.model_config_.model_dump(exclude_none=True)
    params = model_config.get("params")
    return lint.lint_prompt(
        fields.kind,
        fields.template,
        [m.model_dump() for m in fields.messages] if fields.messages else None,
        [v.model_dump() for v in fields.variables],
        config,
        include_results=None,
        context_window=context_window or providers.catalog_context_window(model_config),
        output_labels=output_labels,
        metadata=fields.metadata,
        model_params=params if isinstance(params, dict) else None,
        response_schema=fields.response_schema,
    )


async def lint_version(
    session: AsyncSession,
    principal: Principal,
    version: PromptVersion,
    config: lint.LintConfig | None = None,
) -> list[lint.LintFinding]:
    """Lint a saved version as it stands now (current project settings, includes and model windows)."""
    return await lint_body(
        session,
        principal,
        kind=version.kind,
        template=version.template,
        messages=version.messages,
        variables=version.variables,
        model_config=version.model_config_ or {},
        metadata=version.metadata_,
        response_schema=version.response_schema,
        config=config,
    )


async def lint_saved_version(
    session: AsyncSession, principal: Principal, name: str, number: int
) -> tuple[Prompt, PromptVersion, list[lint.LintFinding], lint.LintConfig]:
    """A version of a prompt, linted now."""
    prompt = await get_prompt(session, principal, name)
    version = await _version_by_number(session, prompt, number)
    config = await lint_config(session, principal.project_id)
    return prompt, version, await lint_version(session, principal, version, config), config


def stored_findings(version: PromptVersion) -> tuple[list[dict[str, Any]], list[str]]:
    """The save-time lint findings of a version, and its warnings as text (older versions stored text)."""
    findings: list[dict[str, Any]] = []
    texts: list[str] = []
    for item in version.warnings or []:
        if isinstance(item, dict):
            finding = lint.LintFinding.from_dict(item)
            findings.append(finding.to_dict())
            if finding.severity != "info":
                texts.append(f"{finding.rule} {finding.name}: {finding.message}")
        else:
            texts.append(str(item))
    return findings, texts


async def _check_lint_gate(
    session: AsyncSession, principal: Principal, prompt: Prompt, label: str, version: PromptVersion
) -> None:
    """Refuse to point a label the project protects (``lint.blockOnLabels``) at a version failing lint."""
    config = await lint_config(session, prompt.project_id)
    if label not in config.block_on_labels:
        return
    blocking = config.blocking(await lint_version(session, principal, version, config))
    if blocking:
        summary = "; ".join(f"{f.rule} {f.name}: {f.message}" for f in blocking[:5])
        more = f" (and {len(blocking) - 5} more)" if len(blocking) > 5 else ""
        raise Conflict(
            f"Label {label!r} is protected by lint: {prompt.name} v{version.version} has "
            f"{len(blocking)} finding(s) at or above {config.block_on!r}: {summary}{more}",
            code="lint_blocked",
            label=label,
            version=version.version,
            blockOn=config.block_on,
            findings=[f.to_dict() for f in blocking],
        )


# --- search index upkeep --------------------------------------------------------------------------------------


async def index_missing_versions(db: Database, batch: int = 200) -> int:
    """Index every version that has no search document yet (a database from before search, or an index table
    emptied by hand); returns how many were indexed. Their words are searchable at once; their vectors are made
    by the background embedding that start-up runs after this (search_index.refresh_embeddings). Cheap when
    nothing is missing (two counts)."""
    async with db.transaction() as session:
        versions = int((await session.execute(select(func.count()).select_from(PromptVersion))).scalar_one())
        if await search_service.document_count(session) >= versions:
            return 0
    indexed, after = 0, ""
    while True:
        try:
            found, after = await _index_batch(db, after, batch)
        except (
            IntegrityError
        ):  # another process (server, worker, gateway) indexed this batch at the same time
            log.info("search_backfill_batch_taken", after=after)
            found, after = await _index_batch(db, after, batch, skip=True)
        if found < 0:
            return indexed
        indexed += found


async def _index_batch(db: Database, after: str, batch: int, *, skip: bool = False) -> tuple[int, str]:
    """Index the missing versions of the ``batch`` prompts after id ``after``: (versions indexed or -1 when
    there are no prompts left, the last prompt id); ``skip`` only moves past them."""
    indexed = 0
    async with db.transaction(write=True) as session:
        prompts = (
            (await session.execute(select(Prompt).where(Prompt.id > after).order_by(Prompt.id).limit(batch)))
            .scalars()
            .all()
        )
        if not prompts:
            return -1, after
        if skip:
            return 0, prompts[-1].id
        rows = (
            (
                await session.execute(
                    select(PromptVersion)
                    .where(PromptVersion.prompt_id.in_([p.id for p in prompts]))
                    .order_by(PromptVersion.version)
                )
            )
            .scalars()
            .all()
        )
        have = await search_service.indexed_versions(session, [v.id for v in rows])
        for prompt in prompts:
            missing = [v for v in rows if v.prompt_id == prompt.id and v.id not in have]
            if missing:
                await _index(session, prompt, missing, embed=False)
                indexed += len(missing)
    return indexed, prompts[-1].id
