"""Dataset behaviour: datasets, immutable versions of test cases, patches, imports, and cases from runs.

Service functions take an open session (the caller owns the transaction) and the acting principal; they
scope every query to the principal's project and append an audit event for every change.

Versioning rules:

* Every edit makes a new immutable version holding the full case list; version numbers are gapless per
  dataset (the dataset row is locked while a version is added). Evaluation runs pin a version.
* ``content_hash`` covers the ordered cases (key, input, expected, tags, metadata; see
  :mod:`promptops.datasets.formats`). Saving content identical to the latest version is a no-op: no version
  is written and the latest is returned with ``created=False`` (the API answers 200 instead of 201). So
  re-importing an unchanged file from CI is safe.
* Case keys are stable across versions (given by the file as ``id``, else derived from the input), so the
  results of two versions can be matched case by case. A patch that changes a case's input keeps its key.
* Archiving hides a dataset from listings and refuses new versions; its versions stay resolvable so
  evaluations that pinned them keep working. Unarchive with :func:`update_dataset`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.datasets import formats, sealing
from promptops.datasets.formats import Case
from promptops.datasets.models import Dataset, DatasetCase, DatasetVersion
from promptops.datasets.recover import recover_variables
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import has_prefix, new_id
from promptops.pagination import decode_cursor, decode_int_cursor, encode_cursor, fetch_page, filter_by_name
from promptops.registry import service as registry
from promptops.registry.refs import NAME_RE
from promptops.runs import payloads as run_payloads
from promptops.runs import service as runs_service
from promptops.tenancy.service import get_scoped, get_scoped_many, scoped

if TYPE_CHECKING:
    from promptops.registry.models import PromptVersion
    from promptops.runs.models import Run

Source = Literal["manual", "import", "runs", "edit"]
# Last path segments the REST routes use after a dataset name; a dataset name may not end with one.
RESERVED_SEGMENTS = frozenset({"versions", "cases", "import", "export", "from-runs"})
INSERT_CHUNK = 1000
MAX_RUNS = 10_000


def validate_dataset_name(name: str) -> str:
    if len(name) > 200 or not NAME_RE.match(name):
        raise ValidationProblem(
            f"Invalid dataset name {name!r}: use lowercase path segments of letters, digits, '.', '_' or '-' "
            "separated by '/', e.g. 'sentiment/reviews'",
            code="invalid_dataset_name",
        )
    if name.rsplit("/", 1)[-1] in RESERVED_SEGMENTS:
        raise ValidationProblem(
            f"Invalid dataset name {name!r}: the last segment may not be one of {sorted(RESERVED_SEGMENTS)}",
            code="invalid_dataset_name",
        )
    return name


@dataclass(frozen=True)
class Saved:
    """The outcome of a write: the dataset, its (new or unchanged latest) version, and whether one was made."""

    dataset: Dataset
    version: DatasetVersion
    created: bool


# --- lookups --------------------------------------------------------------------------------------------------


async def get_dataset(session: AsyncSession, principal: Principal, name_or_id: str) -> Dataset:
    """A dataset of the principal's project by name or id (404 otherwise, also for other projects)."""
    return await get_scoped(
        session,
        principal,
        Dataset,
        name_or_id,
        column=Dataset.id if has_prefix(name_or_id, "dataset") else Dataset.name,
        missing=f"Dataset {name_or_id!r} not found",
        code="dataset_not_found",
    )


async def _lock_dataset(session: AsyncSession, principal: Principal, name_or_id: str) -> Dataset:
    """The dataset row locked for update, so version numbers stay gapless under concurrent writers."""
    dataset = await get_dataset(session, principal, name_or_id)
    locked: Dataset = (
        await session.execute(
            select(Dataset)
            .where(Dataset.id == dataset.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return locked


async def get_version(session: AsyncSession, dataset: Dataset, number: int | None = None) -> DatasetVersion:
    """Version ``number`` of a dataset (default: the latest)."""
    number = dataset.latest_version if number is None else number
    version = (
        await session.execute(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == number
            )
        )
    ).scalar_one_or_none()
    if version is None:
        raise NotFound(f"Dataset {dataset.name!r} has no version {number}", code="dataset_version_not_found")
    return version


async def resolve_version(
    session: AsyncSession, principal: Principal, ref: str
) -> tuple[Dataset, DatasetVersion]:
    """Resolve ``name`` (latest), ``name@N`` / ``name@latest``, or a version id ``dsv_...``.

    Archived datasets still resolve (pinned evaluations must keep working). Unknown names, versions and
    ids of other projects are 404.
    """
    if has_prefix(ref, "dataset_version"):
        version = await _version_in_project(session, principal, ref)
        dataset = await get_dataset(session, principal, version.dataset_id)
        return dataset, version
    name, sep, selector = ref.partition("@")
    number: int | None = None
    if sep:
        if selector.isdigit() and int(selector) >= 1:
            number = int(selector)
        elif selector != "latest":
            raise ValidationProblem(
                f"Invalid dataset reference {ref!r}: use 'name', 'name@<version number>' or a dsv_ id",
                code="invalid_reference",
            )
    dataset = await get_dataset(session, principal, name)
    return dataset, await get_version(session, dataset, number)


async def _version_in_project(session: AsyncSession, principal: Principal, version_id: str) -> DatasetVersion:
    return await get_scoped(
        session,
        principal,
        DatasetVersion,
        version_id,
        missing=f"Dataset version {version_id} not found",
        code="dataset_version_not_found",
    )


def _has_any_tag(case: DatasetCase, tags: Sequence[str]) -> bool:
    return any(t in (case.tags or []) for t in tags)


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    version_id: str,
    tags: Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    *,
    after_position: int | None = None,
) -> list[DatasetCase]:
    """Cases of a version ordered by position.

    ``tags`` keeps the cases carrying *any* of the given tags. ``offset`` skips that many (matching) cases;
    ``after_position`` starts after a position (keyset paging, what the REST cursor uses); ``limit`` caps
    the answer. The version must belong to the principal's project (404 otherwise).
    """
    found = await _select_cases(session, principal, version_id, tags, limit, offset, after_position)
    await sealing.reveal_cases(session, found)  # sealed cases read as plaintext (datasets.sealing)
    return found


async def _select_cases(
    session: AsyncSession,
    principal: Principal,
    version_id: str,
    tags: Sequence[str] | None,
    limit: int | None,
    offset: int,
    after_position: int | None,
) -> list[DatasetCase]:
    """The cases :func:`list_cases` answers, as stored."""
    await _version_in_project(session, principal, version_id)
    stmt = select(DatasetCase).where(DatasetCase.dataset_version_id == version_id)
    if after_position is not None:
        stmt = stmt.where(DatasetCase.position > after_position)
    stmt = stmt.order_by(DatasetCase.position)
    if not tags:
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await session.execute(stmt)).scalars())
    # Tags live in a JSON column: filter in Python, reading in chunks until the page is full.
    wanted = list(tags)
    result: list[DatasetCase] = []
    skipped = 0
    last = after_position
    while True:
        chunk_stmt = stmt if last is None else stmt.where(DatasetCase.position > last)
        chunk = list((await session.execute(chunk_stmt.limit(INSERT_CHUNK))).scalars())
        for case in chunk:
            if not _has_any_tag(case, wanted):
                continue
            if skipped < offset:
                skipped += 1
                continue
            result.append(case)
            if limit is not None and len(result) >= limit:
                return result
        if len(chunk) < INSERT_CHUNK:
            return result
        last = chunk[-1].position


async def cases_by_id(
    session: AsyncSession, principal: Principal, case_ids: Iterable[str]
) -> dict[str, DatasetCase]:
    """The principal's project's cases with these ids (any dataset version); unknown ids are left out."""
    found = await get_scoped_many(session, principal, DatasetCase, case_ids)
    await sealing.reveal_cases(session, found.values())
    return found


async def cases_of_subject(
    session: AsyncSession, principal: Principal, subject_id: str, limit: int
) -> list[tuple[DatasetCase, str, int]]:
    """The principal's project's cases sealed under ``subject_id`` (copied from its runs), revealed, newest
    dataset versions first: (case, dataset name, version number)."""
    rows = await session.execute(
        select(DatasetCase, Dataset.name, DatasetVersion.version)
        .join(DatasetVersion, DatasetVersion.id == DatasetCase.dataset_version_id)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(DatasetCase.project_id == principal.project_id, DatasetCase.subject_id == subject_id)
        .order_by(DatasetVersion.created_at.desc(), DatasetCase.position)
        .limit(limit)
    )
    found = [(case, name, version) for case, name, version in rows]
    await sealing.reveal_cases(session, [case for case, _, _ in found])
    return found


async def load_cases(session: AsyncSession, principal: Principal, version_id: str) -> list[Case]:
    """Every case of a version as normalized :class:`Case` values (for export, patches and hashing)."""
    await _version_in_project(session, principal, version_id)
    rows = await session.execute(
        select(
            DatasetCase.key,
            DatasetCase.input,
            DatasetCase.expected,
            DatasetCase.tags,
            DatasetCase.metadata_,
            DatasetCase.source_run_id,
            DatasetCase.subject_id,
        )
        .where(DatasetCase.dataset_version_id == version_id)
        .order_by(DatasetCase.position)
    )
    stored = rows.all()
    values = await sealing.reveal_values(session, [(row.input, row.expected) for row in stored])
    cases = []
    for (key, _, _, tags, metadata, run_id, subject_id), (inputs, expected) in zip(
        stored, values, strict=True
    ):
        case_input, case_metadata = formats.from_row(inputs, metadata)
        cases.append(
            Case(
                key=key,
                input=case_input,
                expected=expected,
                tags=tuple(tags or ()),
                metadata=case_metadata,
                source_run_id=run_id,
                subject_id=subject_id,
            )
        )
    return cases


async def latest_versions(session: AsyncSession, datasets: Sequence[Dataset]) -> dict[str, DatasetVersion]:
    """{dataset id: its latest version} in one query."""
    if not datasets:
        return {}
    rows = await session.execute(
        select(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .where(Dataset.id.in_([d.id for d in datasets]), DatasetVersion.version == Dataset.latest_version)
    )
    return {v.dataset_id: v for v in rows.scalars()}


# --- listing --------------------------------------------------------------------------------------------------


async def list_datasets(
    session: AsyncSession,
    principal: Principal,
    *,
    prefix: str | None = None,
    query: str | None = None,
    archived: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Dataset], str | None]:
    """Datasets ordered by name, filtered, one page at a time (cursor = last name seen)."""
    stmt = scoped(select(Dataset), Dataset, principal).where(Dataset.archived == archived)
    stmt = filter_by_name(stmt, Dataset, prefix=prefix, query=query)
    if cursor:
        stmt = stmt.where(Dataset.name > decode_cursor(cursor))
    return await fetch_page(session, stmt.order_by(Dataset.name), limit, lambda d: encode_cursor(d.name))


async def list_versions(
    session: AsyncSession, principal: Principal, name: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[Dataset, list[DatasetVersion], str | None]:
    """Versions of a dataset, newest first (cursor = last version number seen)."""
    dataset = await get_dataset(session, principal, name)
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if cursor:
        stmt = stmt.where(DatasetVersion.version < decode_int_cursor(cursor))
    rows, next_cursor = await fetch_page(
        session, stmt.order_by(DatasetVersion.version.desc()), limit, lambda v: encode_cursor(str(v.version))
    )
    return dataset, rows, next_cursor


# --- writing versions -----------------------------------------------------------------------------------------


async def _write_version(
    session: AsyncSession,
    principal: Principal,
    dataset: Dataset,
    cases: Sequence[Case],
    *,
    commit_message: str,
    source: str,
    extra: dict[str, Any] | None = None,
) -> DatasetVersion:
    """Insert version ``latest + 1`` with every case (the caller holds the dataset row lock)."""
    if len(cases) > formats.MAX_CASES:
        raise ValidationProblem(
            f"A dataset version holds at most {formats.MAX_CASES} cases; this one would have {len(cases)}",
            code="too_many_cases",
            limit=formats.MAX_CASES,
        )
    dupes = sorted(key for key, n in Counter(c.key for c in cases).items() if n > 1)
    if dupes:
        raise ValidationProblem(
            f"Duplicate case ids: {', '.join(dupes[:10])}; ids must be unique in a version",
            code="duplicate_case_id",
        )
    now = utcnow()
    number = dataset.latest_version + 1
    version = DatasetVersion(
        id=new_id("dataset_version"),
        project_id=dataset.project_id,
        dataset_id=dataset.id,
        version=number,
        case_count=len(cases),
        content_hash=formats.content_hash(cases),
        commit_message=commit_message,
        source=source,
        created_by=principal.id,
        created_at=now,
    )
    session.add(version)
    dataset.latest_version = number
    dataset.updated_at = now
    await session.flush()
    rows = []
    for position, case in enumerate(cases):
        stored_input, stored_metadata = formats.to_row(case)
        rows.append(
            {
                "id": new_id("case"),
                "project_id": dataset.project_id,
                "dataset_version_id": version.id,
                "position": position,
                "key": case.key,
                "input": stored_input,
                "expected": case.expected,
                "tags": list(case.tags),
                "metadata_": stored_metadata,
                "source_run_id": case.source_run_id,
                "subject_id": case.subject_id,
            }
        )
    await sealing.seal_rows(session, rows)
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(DatasetCase), rows[start : start + INSERT_CHUNK])
    await audit.record(
        session,
        principal,
        "DatasetVersionCreated",
        data={
            "name": dataset.name,
            "datasetId": dataset.id,
            "versionId": version.id,
            "version": number,
            "caseCount": version.case_count,
            "contentHash": version.content_hash,
            "source": source,
            "commitMessage": commit_message,
            **(extra or {}),
        },
    )
    return version


async def create_dataset(
    session: AsyncSession,
    principal: Principal,
    name: str,
    description: str = "",
    cases: Sequence[Case] = (),
    commit_message: str = "",
    source: str = "manual",
) -> tuple[Dataset, DatasetVersion]:
    """Create a dataset with version 1 holding ``cases`` (possibly none). 409 if the name is taken."""
    validate_dataset_name(name)
    existing = (
        await session.execute(
            scoped(select(Dataset.archived), Dataset, principal).where(Dataset.name == name)
        )
    ).first()
    if existing is not None:
        hint = " (archived: unarchive it, or pick another name)" if existing[0] else ""
        raise Conflict(f"Dataset {name!r} already exists{hint}", code="dataset_exists")
    now = utcnow()
    dataset = Dataset(
        id=new_id("dataset"),
        project_id=principal.project_id,
        name=name,
        description=description,
        archived=False,
        latest_version=0,
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(dataset)
    await session.flush()
    await audit.record(
        session,
        principal,
        "DatasetCreated",
        data={"name": name, "datasetId": dataset.id, "description": description},
    )
    version = await _write_version(
        session, principal, dataset, cases, commit_message=commit_message, source=source
    )
    return dataset, version


async def _keep_subjects(session: AsyncSession, version_id: str, cases: Sequence[Case]) -> list[Case]:
    """A case sent again in full (an edit, an import) under the key of a case sealed under a data subject stays
    sealed under it, even if its text changed (sealing more is the safe side)."""
    rows = await session.execute(
        select(DatasetCase.key, DatasetCase.subject_id).where(
            DatasetCase.dataset_version_id == version_id, DatasetCase.subject_id.is_not(None)
        )
    )
    subjects = {key: subject for key, subject in rows}
    if not subjects:
        return list(cases)
    return [
        replace(c, subject_id=subjects[c.key]) if c.subject_id is None and c.key in subjects else c
        for c in cases
    ]


async def _save(
    session: AsyncSession,
    principal: Principal,
    dataset: Dataset,
    cases: Sequence[Case],
    *,
    commit_message: str,
    source: str,
    extra: dict[str, Any] | None = None,
) -> Saved:
    if dataset.archived:
        raise Conflict(f"Dataset {dataset.name!r} is archived; unarchive it first", code="dataset_archived")
    if dataset.latest_version > 0:
        latest = await get_version(session, dataset)
        if latest.content_hash == formats.content_hash(cases):
            return Saved(dataset, latest, created=False)
        cases = await _keep_subjects(session, latest.id, cases)
    version = await _write_version(
        session, principal, dataset, cases, commit_message=commit_message, source=source, extra=extra
    )
    return Saved(dataset, version, created=True)


async def new_version(
    session: AsyncSession,
    principal: Principal,
    name: str,
    cases: Sequence[Case],
    commit_message: str = "",
    source: str = "edit",
) -> Saved:
    """A new version holding exactly ``cases`` (unless identical to the latest: then ``created=False``)."""
    dataset = await _lock_dataset(session, principal, name)
    return await _save(session, principal, dataset, cases, commit_message=commit_message, source=source)


async def import_cases(
    session: AsyncSession,
    principal: Principal,
    name: str,
    cases: Sequence[Case],
    *,
    commit_message: str = "",
    description: str | None = None,
    mode: Literal["upsert", "create", "version"] = "upsert",
) -> Saved:
    """Cases read from a file: a new dataset if ``name`` is free (unless ``mode='version'``), else a new
    version of it (unless ``mode='create'``, which answers 409)."""
    exists = (
        await session.execute(scoped(select(Dataset.id), Dataset, principal).where(Dataset.name == name))
    ).first()
    if exists is None:
        if mode == "version":
            raise NotFound(f"Dataset {name!r} not found", code="dataset_not_found")
        dataset, version = await create_dataset(
            session, principal, name, description or "", cases, commit_message, source="import"
        )
        return Saved(dataset, version, created=True)
    if mode == "create":
        raise Conflict(f"Dataset {name!r} already exists", code="dataset_exists")
    dataset = await _lock_dataset(session, principal, name)
    if description is not None and description != dataset.description:
        await _update(session, principal, dataset, description=description)
    return await _save(session, principal, dataset, cases, commit_message=commit_message, source="import")


# --- patches --------------------------------------------------------------------------------------------------

UNSET: Any = object()


@dataclass(frozen=True)
class AddCases:
    cases: Sequence[Case]


@dataclass(frozen=True)
class RemoveCases:
    keys: Sequence[str]


@dataclass(frozen=True)
class UpdateCase:
    """Change fields of the case ``key`` (fields left UNSET keep their value; the key never changes)."""

    key: str
    input: Any = UNSET
    expected: Any = UNSET
    tags: Any = UNSET
    metadata: Any = UNSET


Operation = AddCases | RemoveCases | UpdateCase


@dataclass
class _Counts:
    added: int = 0
    removed: int = 0
    updated: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def apply_operations(current: Sequence[Case], operations: Sequence[Operation]) -> tuple[list[Case], _Counts]:
    """The case list after ``operations`` in order: added cases go to the end, removed ones drop out,
    updated ones keep their position and key. Unknown keys are 404; adding an existing key is 422."""
    cases = list(current)
    counts = _Counts()
    for index, op in enumerate(operations):
        where = f"operations[{index}]"
        positions = {c.key: i for i, c in enumerate(cases)}
        if isinstance(op, AddCases):
            clash = [c.key for c in op.cases if c.key in positions]
            if clash:
                raise ValidationProblem(
                    f"{where}: the dataset already has case(s) {', '.join(clash[:10])}; "
                    "use an 'update' operation to change them",
                    code="duplicate_case_id",
                )
            cases.extend(op.cases)
            counts.added += len(op.cases)
        elif isinstance(op, RemoveCases):
            missing = [k for k in op.keys if k not in positions]
            if missing:
                raise NotFound(f"{where}: no case with id {', '.join(missing[:10])}", code="case_not_found")
            drop = set(op.keys)
            cases = [c for c in cases if c.key not in drop]
            counts.removed += len(drop)
        else:
            if op.key not in positions:
                raise NotFound(f"{where}: no case with id {op.key!r}", code="case_not_found")
            old = cases[positions[op.key]]
            try:
                updated = formats.make_case(
                    key=old.key,
                    inputs=old.input if op.input is UNSET else op.input,
                    expected=old.expected if op.expected is UNSET else op.expected,
                    tags=list(old.tags) if op.tags is UNSET else op.tags,
                    metadata=old.metadata if op.metadata is UNSET else op.metadata,
                    source_run_id=old.source_run_id,
                    subject_id=old.subject_id,
                )
            except formats.CaseError as exc:
                column = f" {exc.column}" if exc.column else ""
                raise ValidationProblem(f"{where}{column}: {exc.message}", code="invalid_case")
            cases[positions[op.key]] = updated
            counts.updated += 1
    return cases, counts


async def patch_version(
    session: AsyncSession,
    principal: Principal,
    name: str,
    operations: Sequence[Operation],
    commit_message: str = "",
) -> Saved:
    """A new version = the latest version's cases with ``operations`` applied (see :func:`apply_operations`)."""
    dataset = await _lock_dataset(session, principal, name)
    current = await load_cases(session, principal, (await get_version(session, dataset)).id)
    cases, counts = apply_operations(current, operations)
    extra = {"operations": {"added": counts.added, "removed": counts.removed, "updated": counts.updated}}
    return await _save(
        session, principal, dataset, cases, commit_message=commit_message, source="edit", extra=extra
    )


async def add_cases(
    session: AsyncSession, principal: Principal, name: str, cases: Sequence[Case], commit_message: str = ""
) -> Saved:
    """A new version with ``cases`` appended (their keys must be new)."""
    return await patch_version(session, principal, name, [AddCases(cases)], commit_message)


async def remove_cases(
    session: AsyncSession, principal: Principal, name: str, keys: Sequence[str], commit_message: str = ""
) -> Saved:
    """A new version without the cases ``keys`` (each must exist)."""
    return await patch_version(session, principal, name, [RemoveCases(keys)], commit_message)


async def update_case(
    session: AsyncSession,
    principal: Principal,
    name: str,
    key: str,
    *,
    input: Any = UNSET,
    expected: Any = UNSET,
    tags: Any = UNSET,
    metadata: Any = UNSET,
    commit_message: str = "",
) -> Saved:
    """A new version where the case ``key`` has the given fields replaced."""
    op = UpdateCase(key, input=input, expected=expected, tags=tags, metadata=metadata)
    return await patch_version(session, principal, name, [op], commit_message)


# --- dataset settings and archive -----------------------------------------------------------------------------


async def _update(
    session: AsyncSession,
    principal: Principal,
    dataset: Dataset,
    *,
    description: str | None = None,
    archived: bool | None = None,
) -> Dataset:
    changes: dict[str, Any] = {}
    if description is not None and description != dataset.description:
        changes["description"] = {"from": dataset.description, "to": description}
        dataset.description = description
    if archived is not None and archived != dataset.archived:
        dataset.archived = archived
        event = "DatasetArchived" if archived else "DatasetUnarchived"
        await audit.record(
            session,
            principal,
            event,
            data={"name": dataset.name, "datasetId": dataset.id, "latestVersion": dataset.latest_version},
        )
    if changes:
        await audit.record(
            session,
            principal,
            "DatasetUpdated",
            data={"name": dataset.name, "datasetId": dataset.id, "changes": changes},
        )
    if changes or archived is not None:
        dataset.updated_at = utcnow()
    return dataset


async def update_dataset(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    archived: bool | None = None,
) -> Dataset:
    """Change the description and/or archive or unarchive (description changes make no new version)."""
    dataset = await _lock_dataset(session, principal, name)
    return await _update(session, principal, dataset, description=description, archived=archived)


async def archive_dataset(session: AsyncSession, principal: Principal, name: str) -> Dataset:
    """Archive (the REST DELETE): hidden from listings, no new versions, versions stay resolvable."""
    return await update_dataset(session, principal, name, archived=True)


# --- cases from runs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    """Which runs to turn into cases: the newest ``limit`` matching ones (default: successful runs)."""

    prompt: str | None = None  # prompt name or id
    version_id: str | None = None
    source: str | None = None
    status: str | None = "ok"
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


@dataclass(frozen=True)
class FromRunsResult:
    saved: Saved
    runs: int  # runs read
    added: int  # cases added to the dataset
    duplicates: int  # runs whose input repeated a newer run's (one case per distinct input)
    existing: int  # runs whose case id the dataset already had
    recovered: int  # cases whose template variables were recovered from the prompt version


async def _select_runs(
    session: AsyncSession, principal: Principal, run_ids: Sequence[str] | None, flt: RunFilter | None
) -> list[Run]:
    """The runs, newest first (read through the runs service)."""
    if run_ids:
        unique = list(dict.fromkeys(run_ids))
        rows = await runs_service.runs_by_id(session, principal, unique)
        missing = [i for i in unique if i not in rows]
        if missing:
            raise NotFound(f"Run(s) not found: {', '.join(missing[:10])}", code="run_not_found")
        return sorted(rows.values(), key=lambda r: (r.created_at, r.id), reverse=True)
    flt = flt or RunFilter()
    prompt_id = None
    if flt.prompt:
        prompt_id = (
            flt.prompt
            if has_prefix(flt.prompt, "prompt")
            else (await registry.get_prompt(session, principal, flt.prompt)).id
        )
    runs, _ = await runs_service.list_runs(
        session,
        principal,
        prompt_id=prompt_id,
        version_id=flt.version_id,
        source=flt.source,
        status=flt.status,
        since=flt.since,
        until=flt.until,
        limit=max(1, min(flt.limit, MAX_RUNS)),
    )
    return runs


async def _version_templates(
    session: AsyncSession, principal: Principal, version_ids: set[str]
) -> dict[str, PromptVersion]:
    return await registry.versions_by_id(session, principal, version_ids)


def run_to_case(
    run: Run,
    version: PromptVersion | None,
    expected_from: Literal["output", "none"],
    subject_id: str | None = None,
) -> tuple[Case, bool]:
    """The case a run becomes, and whether its variables were recovered.

    Input: the variables of the run's prompt version when its templates are simple enough to invert
    (see :mod:`promptops.datasets.recover`), else ``{"input": <prompt text>}`` for text calls or
    ``{"messages": [...]}`` for chat calls. Expected: the run's output (``expected_from='output'``) or
    nothing. Tags: ``source:<run source>``. Metadata: the run id, model, provider, prompt version and time.
    ``subject_id``: the subject the run's payload is sealed under; the case is sealed under it too.
    """
    recovered = None
    if version is not None:
        recovered = recover_variables(
            version.kind, version.template, version.messages, version.variables or [], run.input or {}
        )
    raw = run.input or {}
    if recovered is not None:
        inputs: dict[str, Any] = recovered
    elif "messages" in raw:
        inputs = {"messages": raw["messages"]}
    else:
        inputs = {"input": raw.get("prompt", "")}
    metadata = {
        "runId": run.id,
        "provider": run.provider,
        "model": run.model,
        "promptId": run.prompt_id,
        "versionId": run.version_id,
        "createdAt": run.created_at.isoformat() if run.created_at else None,
    }
    if run.status != "ok":
        metadata["status"] = run.status
    case = formats.make_case(
        inputs=inputs,
        expected=run.output if expected_from == "output" else None,
        tags=[f"source:{run.source}"] if run.source else None,
        metadata={k: v for k, v in metadata.items() if v is not None},
        source_run_id=run.id,
        subject_id=subject_id,
    )
    return case, recovered is not None


async def from_runs(
    session: AsyncSession,
    principal: Principal,
    name: str,
    *,
    run_ids: Sequence[str] | None = None,
    run_filter: RunFilter | None = None,
    expected_from: Literal["output", "none"] = "output",
    description: str = "",
    commit_message: str = "",
) -> FromRunsResult:
    """Turn recorded runs (production traffic, playground calls) into test cases.

    Runs are either listed (``run_ids``; every id must exist in the project) or selected by
    ``run_filter`` (the newest ``limit`` matching runs, successful ones unless ``status`` says otherwise).
    Each distinct input becomes one case (key derived from the input; of repeated inputs the newest run
    wins) in chronological order, mapped by :func:`run_to_case`. A new dataset is created when ``name`` is
    free; otherwise the cases are appended to its latest version as a new version, skipping inputs it
    already holds. Source of the version: ``runs``.
    """
    principal.require(Permission.RUN_READ)
    runs = await _select_runs(session, principal, run_ids, run_filter)
    if not runs:
        raise ValidationProblem("No runs match; nothing to add", code="no_runs")
    versions = await _version_templates(session, principal, {r.version_id for r in runs if r.version_id})
    subjects = await run_payloads.sealed_subjects(session, [r.id for r in runs])
    by_key: dict[str, Case] = {}
    duplicates = recovered = 0
    for run in runs:  # newest first: the first case of a key wins
        try:
            case, was_recovered = run_to_case(
                run, versions.get(run.version_id or ""), expected_from, subjects.get(run.id)
            )
        except formats.CaseError as exc:
            raise ValidationProblem(f"Run {run.id}: {exc.message}", code="invalid_case")
        if case.key in by_key:
            duplicates += 1
            continue
        by_key[case.key] = case
        recovered += was_recovered
    new_cases = list(reversed(by_key.values()))
    exists = (
        await session.execute(scoped(select(Dataset.id), Dataset, principal).where(Dataset.name == name))
    ).first()
    if exists is None:
        dataset, version = await create_dataset(
            session, principal, name, description, new_cases, commit_message, source="runs"
        )
        saved = Saved(dataset, version, created=True)
        return FromRunsResult(saved, len(runs), len(new_cases), duplicates, 0, recovered)
    dataset = await _lock_dataset(session, principal, name)
    current = await load_cases(session, principal, (await get_version(session, dataset)).id)
    have = {c.key for c in current}
    fresh = [c for c in new_cases if c.key not in have]
    saved = await _save(
        session,
        principal,
        dataset,
        [*current, *fresh],
        commit_message=commit_message,
        source="runs",
        extra={"runs": len(runs), "added": len(fresh)},
    )
    return FromRunsResult(saved, len(runs), len(fresh), duplicates, len(new_cases) - len(fresh), recovered)
