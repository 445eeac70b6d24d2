"""REST face of datasets: thin handlers over :mod:`promptops.datasets.service`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.datasets import formats, service
from promptops.datasets.models import Dataset, DatasetCase, DatasetVersion
from promptops.datasets.schemas import (
    AddOp,
    CaseOut,
    CasePage,
    CreateDatasetIn,
    DatasetOut,
    DatasetPage,
    DatasetVersionOut,
    DatasetVersionPage,
    FromRunsIn,
    FromRunsOut,
    NewVersionIn,
    RemoveOp,
    SavedOut,
    UpdateDatasetIn,
)
from promptops.errors import Conflict
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.pagination import PageLimit, decode_int_cursor, encode_cursor
from promptops.runtime import runtime_of
from promptops.validation import DB_INT_MAX

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

Reader = Annotated[Principal, Depends(require(P.DATASET_READ))]
Writer = Annotated[Principal, Depends(require(P.DATASET_WRITE))]
Limit = PageLimit
CaseLimit = Annotated[int, Query(ge=1, le=1000, description="Page size (at most 1000)")]
FormatQuery = Annotated[
    Literal["csv", "jsonl", "json"] | None, Query(description="File format (default: from Content-Type)")
]

IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes (UTF-8): CSV, JSONL or JSON; see the Datasets section of docs/api.md",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "string"}},
        },
    }
}


@asynccontextmanager
async def writing(request: Request) -> AsyncIterator[AsyncSession]:
    """A write transaction; a unique-key race (two creates of one name) is a 409, not a 500."""
    try:
        async with runtime_of(request).db.transaction(write=True) as session:
            yield session
    except IntegrityError:
        raise Conflict(
            "Another request created or changed this dataset at the same moment; retry",
            code="concurrent_write",
        )


def version_out(dataset: Dataset, version: DatasetVersion) -> DatasetVersionOut:
    return DatasetVersionOut(
        id=version.id,
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        version=version.version,
        case_count=version.case_count,
        content_hash=version.content_hash,
        commit_message=version.commit_message,
        source=version.source,
        created_by=version.created_by,
        created_at=version.created_at,
    )


def dataset_out(dataset: Dataset, latest: DatasetVersion | None) -> DatasetOut:
    return DatasetOut(
        id=dataset.id,
        name=dataset.name,
        description=dataset.description,
        archived=dataset.archived,
        latest_version=dataset.latest_version,
        latest=version_out(dataset, latest) if latest is not None else None,
        created_by=dataset.created_by,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )


def saved_out(saved: service.Saved) -> SavedOut:
    return SavedOut(
        dataset=dataset_out(saved.dataset, saved.version),
        version=version_out(saved.dataset, saved.version),
        created=saved.created,
    )


def case_out(case: DatasetCase) -> CaseOut:
    case_input, metadata = formats.from_row(case.input, case.metadata_)
    return CaseOut(
        id=case.id,
        key=case.key,
        position=case.position,
        input=case_input,
        expected=case.expected,
        tags=list(case.tags or []),
        metadata=metadata,
        source_run_id=case.source_run_id,
    )


def _operations(body: NewVersionIn) -> list[service.Operation]:
    ops: list[service.Operation] = []
    for index, op in enumerate(body.operations or []):
        if isinstance(op, AddOp):
            ops.append(service.AddCases(formats.normalize_cases(op.cases, f"operations[{index}].cases")))
        elif isinstance(op, RemoveOp):
            ops.append(service.RemoveCases(op.keys))
        else:
            given = op.model_fields_set
            ops.append(
                service.UpdateCase(
                    op.key,
                    input=op.input if "input" in given else service.UNSET,
                    expected=op.expected if "expected" in given else service.UNSET,
                    tags=op.tags if "tags" in given else service.UNSET,
                    metadata=op.metadata if "metadata" in given else service.UNSET,
                )
            )
    return ops


async def _dataset_with_latest(session: AsyncSession, dataset: Dataset) -> DatasetOut:
    latest = (await service.latest_versions(session, [dataset])).get(dataset.id)
    return dataset_out(dataset, latest)


# Saving cases identical to the latest version writes nothing and answers 200 with that version.
UNCHANGED: dict[int | str, dict[str, Any]] = {
    200: {"model": SavedOut, "description": "Nothing changed: the latest version is returned"}
}


@router.post("", status_code=201, response_model=SavedOut, summary="Create a dataset with its first version")
@idempotent
async def create_dataset(body: CreateDatasetIn, request: Request, principal: Writer) -> SavedOut:
    cases = formats.normalize_cases(body.cases)
    async with writing(request) as session:
        dataset, version = await service.create_dataset(
            session, principal, body.name, body.description, cases, body.commit_message, source="manual"
        )
        return saved_out(service.Saved(dataset, version, created=True))


@router.get("", response_model=DatasetPage, summary="List datasets")
async def list_datasets(
    request: Request,
    principal: Reader,
    prefix: Annotated[
        str | None, Query(max_length=200, description="Folder prefix, e.g. 'sentiment/'")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in name or description")] = None,
    archived: bool = False,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Limit = 50,
) -> DatasetPage:
    async with runtime_of(request).db.transaction() as session:
        datasets, next_cursor = await service.list_datasets(
            session, principal, prefix=prefix, query=q, archived=archived, cursor=cursor, limit=limit
        )
        latest = await service.latest_versions(session, datasets)
    return DatasetPage(items=[dataset_out(d, latest.get(d.id)) for d in datasets], next_cursor=next_cursor)


@router.post(
    "/from-runs",
    response_model=FromRunsOut,
    summary="Build or extend a dataset from recorded runs",
    responses={201: {"model": FromRunsOut, "description": "A new dataset version was saved"}},
)
async def from_runs(body: FromRunsIn, request: Request, response: Response, principal: Writer) -> FromRunsOut:
    run_filter = None
    if body.filter is not None:
        f = body.filter
        run_filter = service.RunFilter(
            prompt=f.prompt_id,
            version_id=f.version_id,
            source=f.source,
            status=None if f.status == "any" else f.status,
            since=f.from_,
            until=f.to,
            limit=f.limit,
        )
    async with writing(request) as session:
        result = await service.from_runs(
            session,
            principal,
            body.name,
            run_ids=body.run_ids,
            run_filter=run_filter,
            expected_from=body.expected_from,
            description=body.description,
            commit_message=body.commit_message,
        )
    response.status_code = 201 if result.saved.created else 200
    saved = saved_out(result.saved)
    return FromRunsOut(
        **dict(saved),
        runs=result.runs,
        added=result.added,
        duplicates=result.duplicates,
        existing=result.existing,
        recovered=result.recovered,
    )


@router.post(
    "/{name:path}/versions",
    response_model=SavedOut,
    summary="Add a version (full case list or patch operations); 200 when nothing changed",
    status_code=201,
    responses=UNCHANGED,
)
async def create_version(
    name: str, body: NewVersionIn, request: Request, response: Response, principal: Writer
) -> SavedOut:
    async with writing(request) as session:
        if body.cases is not None:
            cases = formats.normalize_cases(body.cases)
            saved = await service.new_version(
                session, principal, name, cases, body.commit_message, source="edit"
            )
        else:
            saved = await service.patch_version(
                session, principal, name, _operations(body), body.commit_message
            )
    response.status_code = 201 if saved.created else 200
    return saved_out(saved)


@router.get(
    "/{name:path}/versions/{version:int}/cases",
    response_model=CasePage,
    summary="Cases of a version, in order (paginated, optional tag filter)",
)
async def list_cases(
    name: str,
    version: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    request: Request,
    principal: Reader,
    tag: Annotated[
        list[str] | None, Query(max_length=20, description="Keep cases with any of these tags")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: CaseLimit = 100,
) -> CasePage:
    async with runtime_of(request).db.transaction() as session:
        dataset = await service.get_dataset(session, principal, name)
        found = await service.get_version(session, dataset, version)
        after = decode_int_cursor(cursor) if cursor else None
        rows = await service.list_cases(
            session, principal, found.id, tags=tag, limit=limit + 1, after_position=after
        )
    next_cursor = encode_cursor(str(rows[limit - 1].position)) if len(rows) > limit else None
    return CasePage(
        dataset_name=dataset.name,
        version=found.version,
        version_id=found.id,
        case_count=found.case_count,
        items=[case_out(c) for c in rows[:limit]],
        next_cursor=next_cursor,
    )


@router.get("/{name:path}/versions/{version:int}", response_model=DatasetVersionOut, summary="One version")
async def get_version(
    name: str, version: Annotated[int, Path(ge=1, le=DB_INT_MAX)], request: Request, principal: Reader
) -> DatasetVersionOut:
    async with runtime_of(request).db.transaction() as session:
        dataset = await service.get_dataset(session, principal, name)
        found = await service.get_version(session, dataset, version)
    return version_out(dataset, found)


@router.get("/{name:path}/versions", response_model=DatasetVersionPage, summary="Versions, newest first")
async def list_versions(
    name: str,
    request: Request,
    principal: Reader,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Limit = 50,
) -> DatasetVersionPage:
    async with runtime_of(request).db.transaction() as session:
        dataset, versions, next_cursor = await service.list_versions(
            session, principal, name, cursor=cursor, limit=limit
        )
    return DatasetVersionPage(items=[version_out(dataset, v) for v in versions], next_cursor=next_cursor)


@router.get(
    "/{name:path}/export",
    summary="Download a version as CSV, JSONL or JSON",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}, "application/json": {}}}},
)
async def export(
    name: str,
    request: Request,
    principal: Reader,
    format: FormatQuery = None,
    version: Annotated[
        int | None, Query(ge=1, le=DB_INT_MAX, description="Version number (default: latest)")
    ] = None,
) -> Response:
    fmt = format or "jsonl"
    async with runtime_of(request).db.transaction() as session:
        dataset = await service.get_dataset(session, principal, name)
        found = await service.get_version(session, dataset, version)
        cases = await service.load_cases(session, principal, found.id)
    envelope: dict[str, Any] = {
        "name": dataset.name,
        "version": found.version,
        "description": dataset.description,
        "contentHash": found.content_hash,
    }
    filename = f"{dataset.name.replace('/', '-')}-v{found.version}.{fmt}"
    return Response(
        content=formats.write(cases, fmt, envelope),
        media_type=formats.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Dataset-Version": str(found.version),
            "X-Content-Hash": found.content_hash,
        },
    )


@router.post(
    "/{name:path}/import",
    response_model=SavedOut,
    status_code=201,
    summary="Import a CSV, JSONL or JSON file: creates the dataset or a new version (200 when unchanged)",
    openapi_extra=IMPORT_BODY,
    responses=UNCHANGED,
)
async def import_file(
    name: str,
    request: Request,
    response: Response,
    principal: Writer,
    format: FormatQuery = None,
    message: Annotated[str, Query(max_length=2000, description="Commit message of the new version")] = "",
    description: Annotated[
        str | None, Query(max_length=2000, description="Dataset description (set or changed)")
    ] = None,
    mode: Annotated[
        Literal["upsert", "create", "version"],
        Query(description="upsert (default); create: 409 if it exists; version: 404 if it does not"),
    ] = "upsert",
    input_col: Annotated[
        list[str] | None,
        Query(
            alias="inputCol",
            max_length=formats.MAX_VARIABLES,
            description="CSV: the input column (repeatable); one makes text inputs, several make variables, "
            "and the other columns go into metadata",
        ),
    ] = None,
    expected_col: Annotated[
        str | None, Query(alias="expectedCol", max_length=200, description="CSV: the expected-output column")
    ] = None,
) -> SavedOut:
    fmt = formats.detect_format(format, request.headers.get("content-type"))
    service.validate_dataset_name(name)
    columns = formats.ColumnMap.of(input_col, expected_col)
    cases = formats.parse(await request.body(), fmt, source=f"{fmt.upper()} file", columns=columns)
    async with writing(request) as session:
        saved = await service.import_cases(
            session, principal, name, cases, commit_message=message, description=description, mode=mode
        )
    response.status_code = 201 if saved.created else 200
    return saved_out(saved)


@router.patch("/{name:path}", response_model=DatasetOut, summary="Change description, archive or unarchive")
async def update_dataset(name: str, body: UpdateDatasetIn, request: Request, principal: Writer) -> DatasetOut:
    async with writing(request) as session:
        dataset = await service.update_dataset(
            session, principal, name, description=body.description, archived=body.archived
        )
        return await _dataset_with_latest(session, dataset)


@router.delete(
    "/{name:path}", response_model=DatasetOut, summary="Archive a dataset (versions stay resolvable)"
)
async def archive_dataset(name: str, request: Request, principal: Writer) -> DatasetOut:
    async with writing(request) as session:
        dataset = await service.archive_dataset(session, principal, name)
        return await _dataset_with_latest(session, dataset)


@router.get("/{name:path}", response_model=DatasetOut, summary="A dataset with its latest version")
async def get_dataset(name: str, request: Request, principal: Reader) -> DatasetOut:
    async with runtime_of(request).db.transaction() as session:
        dataset = await service.get_dataset(session, principal, name)
        return await _dataset_with_latest(session, dataset)
