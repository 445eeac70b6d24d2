"""REST face of search: ``GET /api/v1/search`` and ``GET /api/v1/search/duplicates`` (a prompt's similar prompts
are served by the prompts router: ``GET /api/v1/prompts/{name}/similar``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.pagination import Since, Until
from promptops.runtime import runtime_of
from promptops.search import service, spaces
from promptops.search.embed import embedder
from promptops.search.models import SearchDocument
from promptops.search.schemas import (
    DuplicateClusterOut,
    DuplicatesOut,
    PromptRefOut,
    SearchHitOut,
    SearchOut,
    SearchSettingsIn,
    SearchSettingsOut,
    SegmentOut,
)

router = APIRouter(prefix="/api/v1", tags=["search"])
Reader = Annotated[Principal, Depends(require(P.PROMPT_READ))]
Manager = Annotated[Principal, Depends(require(P.PROVIDER_MANAGE))]
Projects = Annotated[
    list[str] | None,
    Query(
        alias="project",
        max_length=50,
        description="Project names or ids to search (repeat the parameter); '*' = every project you can read. "
        "Default: the current project.",
    ),
]


def ref_out(doc: SearchDocument, project: str) -> dict[str, object]:
    return {
        "prompt_id": doc.prompt_id,
        "name": doc.prompt_name,
        "project_id": doc.project_id,
        "project": project,
        "version": doc.version,
        "version_id": doc.version_id,
        "description": doc.description,
        "tags": doc.tags.split(),
        "labels": doc.labels.split(),
        "model": doc.model,
        "updated_at": doc.updated_at,
    }


@router.get("/search", response_model=SearchOut, summary="Search prompts by words and by meaning")
async def search(
    request: Request,
    principal: Reader,
    q: Annotated[
        str, Query(min_length=1, max_length=service.MAX_QUERY_CHARS, description="What to look for")
    ],
    mode: Annotated[service.Mode, Query(description="hybrid (default), text or semantic")] = "hybrid",
    tag: Annotated[list[str] | None, Query(max_length=20, description="Only prompts with every tag")] = None,
    label: Annotated[
        list[str] | None, Query(max_length=20, description="Only versions with every label")
    ] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    author: Annotated[
        str | None, Query(max_length=40, description="User or key id of the version's author")
    ] = None,
    since: Since = None,
    until: Until = None,
    projects: Projects = None,
    all_versions: Annotated[
        bool, Query(alias="allVersions", description="Also match older versions' text and commit messages")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> SearchOut:
    filters = service.Filters(
        tags=tag or (),
        labels=label or (),
        model=model,
        author=author,
        updated_after=since,
        updated_before=until,
        projects=projects or (),
        all_versions=all_versions,
    )
    db = runtime_of(request).db
    provided = service.QueryVectors()
    if mode != "text":  # a project's provider model embeds the query first, with no transaction open
        provided = await service.provider_query_vectors(db, principal, q, filters.projects)
    async with db.transaction() as session:
        page = await service.search(
            session, principal, q, mode=mode, filters=filters, limit=limit, offset=offset, provided=provided
        )
    return SearchOut(
        query=q,
        mode=page.mode,
        corrections=page.corrections,
        warnings=page.warnings,
        total=page.total,
        items=[
            SearchHitOut(
                **ref_out(hit.doc, hit.project_name),
                score=hit.score,
                text_rank=hit.text_rank,
                semantic_rank=hit.semantic_rank,
                similarity=hit.similarity,
                snippet=[SegmentOut(text=s.text, match=s.match) for s in hit.snippet],
            )
            for hit in page.hits
        ],
    )


@router.get(
    "/search/duplicates",
    response_model=DuplicatesOut,
    summary="Clusters of near-duplicate prompts in the current project",
)
async def duplicates(
    request: Request,
    principal: Reader,
    threshold: Annotated[
        float | None,
        Query(
            ge=0.05,
            le=1.0,
            description="Duplicate score from which prompts are linked (default: the embedding model's, 0.27 "
            "for the default model)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DuplicatesOut:
    async with runtime_of(request).db.transaction() as session:
        clusters = await service.duplicate_clusters(session, principal, threshold=threshold, limit=limit)
        here = await service.readable_projects(session, principal)
        space = await spaces.space_of(session, principal.project_id)
    name = here[principal.project_id]
    return DuplicatesOut(
        threshold=space.profile.duplicate_score if threshold is None else threshold,
        clusters=[
            DuplicateClusterOut(
                score=c.score,
                prompts=[PromptRefOut(**ref_out(m, name)) for m in c.members],
            )
            for c in clusters
        ],
    )


def _settings_out(found: spaces.Settings, waiting: int) -> SearchSettingsOut:
    space, row = found.space, found.row
    return SearchSettingsOut(
        project_id=found.project_id,
        source="deployment" if space.local else "provider",
        connection=space.connection,
        model=space.model or embedder().name,
        duplicate_score=space.profile.duplicate_score,
        min_similarity=space.profile.min_similarity,
        dimensions=found.dimensions,
        documents_waiting=waiting,
        updated_by=None if row is None else row.updated_by,
        updated_at=None if row is None else row.updated_at,
    )


@router.get(
    "/search/settings",
    response_model=SearchSettingsOut,
    summary="The embedding model the project's search uses",
)
async def get_settings(request: Request, principal: Reader) -> SearchSettingsOut:
    db = runtime_of(request).db
    async with db.transaction() as session:
        found = await spaces.get_settings(session, principal)
        return _settings_out(found, await spaces.waiting_documents(session, principal.project_id))


@router.put(
    "/search/settings",
    response_model=SearchSettingsOut,
    summary="Search the project with a provider embedding model (its prompts are embedded again)",
)
async def put_settings(body: SearchSettingsIn, request: Request, principal: Manager) -> SearchSettingsOut:
    db = runtime_of(request).db
    async with db.transaction() as session:  # a connection the project has, that can embed, before any call
        await spaces.check_connection(session, principal, body.connection, body.model)
    dimensions = await spaces.probe(principal, body.connection, body.model)  # no transaction open
    async with db.transaction(write=True) as session:
        found = await spaces.set_settings(
            session,
            principal,
            connection=body.connection,
            model=body.model,
            duplicate_score=body.duplicate_score,
            min_similarity=body.min_similarity,
            dimensions=dimensions,
        )
        return _settings_out(found, await spaces.waiting_documents(session, principal.project_id))


@router.delete(
    "/search/settings",
    response_model=SearchSettingsOut,
    summary="Search the project with the deployment's offline model again",
)
async def delete_settings(request: Request, principal: Manager) -> SearchSettingsOut:
    db = runtime_of(request).db
    async with db.transaction(write=True) as session:
        found = await spaces.reset_settings(session, principal)
        return _settings_out(found, await spaces.waiting_documents(session, principal.project_id))
