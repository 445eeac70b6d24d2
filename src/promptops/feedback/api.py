"""REST face of feedback: rich feedback, summaries and the annotation queue (the seed 004
``POST /api/prompt/feedback`` is in ``promptops.contract_api``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.feedback import annotation_queue as aq
from promptops.feedback import service
from promptops.feedback.models import AnnotationItem, Feedback
from promptops.feedback.schemas import (
    AnnotationOut,
    AnnotationPage,
    EnqueueIn,
    EnqueueOut,
    FeedbackIn,
    FeedbackOut,
    FeedbackPage,
    FeedbackSummaryOut,
    NextIn,
    RateIn,
    RateOut,
    SkipIn,
)
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.pagination import IdCursor, PageLimit, PromptFilter, Since, Until, VersionIdFilter
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])
annotations_router = APIRouter(prefix="/api/v1/annotations", tags=["annotation queue"])

Reader = Annotated[Principal, Depends(require(P.FEEDBACK_READ))]
Writer = Annotated[Principal, Depends(require(P.FEEDBACK_WRITE))]
Manager = Annotated[Principal, Depends(require(P.ANNOTATION_MANAGE))]
ItemStatus = Literal["pending", "claimed", "done", "skipped"]


def feedback_out(feedback: Feedback) -> FeedbackOut:
    return FeedbackOut.model_validate(feedback)


@router.post(
    "",
    status_code=201,
    response_model=FeedbackOut,
    summary="Rate a run, an evaluation result or a prompt version",
)
@idempotent
async def create_feedback(body: FeedbackIn, request: Request, principal: Writer) -> FeedbackOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return feedback_out(await service.submit(session, principal, body))


@router.get("", response_model=FeedbackPage, summary="List feedback, newest first")
async def list_feedback(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    prompt_id: Annotated[str | None, Query(alias="promptId", max_length=200)] = None,
    version_id: VersionIdFilter = None,
    run_id: Annotated[str | None, Query(alias="runId", max_length=40)] = None,
    eval_result_id: Annotated[str | None, Query(alias="evalResultId", max_length=40)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    source: Literal["human", "automated", "annotation"] | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    min_score: Annotated[float | None, Query(alias="minScore", ge=1, le=5)] = None,
    max_score: Annotated[float | None, Query(alias="maxScore", ge=1, le=5)] = None,
    since: Since = None,
    until: Until = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> FeedbackPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_feedback(
            session,
            principal,
            prompt=prompt or prompt_id,
            version_id=version_id,
            run_id=run_id,
            eval_result_id=eval_result_id,
            user=user,
            source=source,
            tag=tag,
            min_score=min_score,
            max_score=max_score,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    return FeedbackPage(items=[feedback_out(f) for f in rows], next_cursor=next_cursor)


@router.get(
    "/summary", response_model=FeedbackSummaryOut, summary="Feedback aggregates per version of a prompt"
)
async def summary(
    request: Request,
    principal: Reader,
    prompt: Annotated[
        str | None,
        Query(max_length=300, description="name or prm_ id (all versions), name@label, name@3 or ver_ id"),
    ] = None,
    version_id: Annotated[list[str] | None, Query(alias="versionId", max_length=50)] = None,
    since: Since = None,
    until: Until = None,
) -> FeedbackSummaryOut:
    async with runtime_of(request).db.transaction() as session:
        return await service.prompt_summary(
            session, principal, prompt=prompt, version_ids=version_id or [], since=since, until=until
        )


@router.get("/{feedback_id}", response_model=FeedbackOut, summary="One feedback record")
async def get_feedback(feedback_id: str, request: Request, principal: Reader) -> FeedbackOut:
    async with runtime_of(request).db.transaction() as session:
        return feedback_out(await service.get_feedback(session, principal, feedback_id))


# --- annotation queue -----------------------------------------------------------------------------------------


async def _with_subjects(
    session: AsyncSession, principal: Principal, items: list[AnnotationItem]
) -> list[AnnotationOut]:
    found = await aq.subjects(session, principal, items)
    return [aq.item_out(i, found.get(i.id)) for i in items]


@annotations_router.post(
    "", status_code=201, response_model=EnqueueOut, summary="Queue runs or evaluation results for rating"
)
@idempotent
async def enqueue(body: EnqueueIn, request: Request, principal: Manager) -> EnqueueOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        created, already = await aq.enqueue(session, principal, body)
        return EnqueueOut(queue=body.queue, created=[aq.item_out(i) for i in created], already_queued=already)


@annotations_router.get("", response_model=AnnotationPage, summary="List queue items with what to rate")
async def list_items(
    request: Request,
    principal: Reader,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    status: ItemStatus | None = None,
    prompt: PromptFilter = None,
    claimed_by: Annotated[str | None, Query(alias="claimedBy", max_length=40)] = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> AnnotationPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await aq.list_items(
            session,
            principal,
            queue=queue,
            status=status,
            prompt=prompt,
            claimed_by=claimed_by,
            cursor=cursor,
            limit=limit,
        )
        items = await _with_subjects(session, principal, rows)
    return AnnotationPage(items=items, next_cursor=next_cursor)


@annotations_router.post(
    "/next",
    response_model=AnnotationOut,
    summary="Claim the next item of a queue (204 when nothing is waiting)",
    responses={204: {"description": "Nothing is waiting in the queue"}},
)
async def claim_next(
    request: Request, principal: Writer, body: NextIn | None = None
) -> AnnotationOut | Response:
    body = body or NextIn()
    async with runtime_of(request).db.transaction(write=True) as session:
        item = await aq.claim_next(session, principal, body.queue, body.prompt)
        if item is None:
            return Response(status_code=204)
        return (await _with_subjects(session, principal, [item]))[0]


@annotations_router.get("/{item_id}", response_model=AnnotationOut, summary="One queue item")
async def get_item(item_id: str, request: Request, principal: Reader) -> AnnotationOut:
    async with runtime_of(request).db.transaction() as session:
        item = await aq.get_item(session, principal, item_id)
        return (await _with_subjects(session, principal, [item]))[0]


@annotations_router.post("/{item_id}/claim", response_model=AnnotationOut, summary="Claim one item")
async def claim(item_id: str, request: Request, principal: Writer) -> AnnotationOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        item = await aq.claim(session, principal, item_id)
        return (await _with_subjects(session, principal, [item]))[0]


@annotations_router.post(
    "/{item_id}/release", response_model=AnnotationOut, summary="Give a claimed item back"
)
async def release(item_id: str, request: Request, principal: Writer) -> AnnotationOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return aq.item_out(await aq.release(session, principal, item_id))


@annotations_router.post(
    "/{item_id}/skip", response_model=AnnotationOut, summary="Close an item without rating"
)
async def skip(
    item_id: str, request: Request, principal: Writer, body: SkipIn | None = None
) -> AnnotationOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        item = await aq.skip(session, principal, item_id, (body or SkipIn()).reason)
        return aq.item_out(item)


@annotations_router.post("/{item_id}/rate", response_model=RateOut, summary="Rate an item (creates feedback)")
async def rate(item_id: str, body: RateIn, request: Request, principal: Writer) -> RateOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        item, feedback = await aq.rate(session, principal, item_id, body)
        return RateOut(item=aq.item_out(item), feedback=feedback_out(feedback))
