"""The annotation queue: runs and evaluation results waiting for a QA rating.

An item moves ``pending -> claimed -> done | skipped`` (``release`` puts a claimed item back to pending).

* Claiming is atomic: ``next`` picks the oldest claimable item with ``SELECT ... FOR UPDATE SKIP LOCKED`` on
  PostgreSQL (concurrent claimers pass over each other's rows instead of waiting for them) and then moves
  it with a conditional ``UPDATE`` that only succeeds while the item is still claimable, so two analysts
  never get the same item on any backend (on SQLite the write transaction also serialises claimers).
* A claim expires after :data:`CLAIM_TTL` (30 minutes): an abandoned item is claimable again and is shown as
  ``pending``. Its old claimer may still rate it as long as nobody else has claimed it.
* Only the claimer, or a PromptOpsAdmin, may rate, skip or release a claimed item. Rating creates a
  :class:`Feedback` with source ``annotation`` on the item's run / evaluation result and closes the item.

Every change appends an audit event: ``AnnotationsQueued``, ``AnnotationClaimed``, ``AnnotationReleased``,
``AnnotationSkipped`` and, for a rating, ``FeedbackSubmitted`` (with ``annotationId``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.db import utcnow
from promptops.errors import Conflict, Forbidden, NotFound
from promptops.evals import service as evals
from promptops.feedback import service as feedback_service
from promptops.feedback.models import AnnotationItem, Feedback
from promptops.feedback.schemas import AnnotationOut, EnqueueIn, RatingFields, SubjectOut
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.ids import has_prefix, new_id
from promptops.pagination import fetch_page, id_cursor
from promptops.registry import service as registry
from promptops.runs import service as runs_service
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.evals.models import EvalResult
    from promptops.runs.models import Run

CLAIM_MINUTES = 30
CLAIM_TTL = timedelta(minutes=CLAIM_MINUTES)
CLAIM_ATTEMPTS = 5
OPEN_STATUSES = ("pending", "claimed")


def _claimable(cutoff: datetime) -> ColumnElement[bool]:
    """Pending, or claimed longer ago than the claim lifetime."""
    return or_(
        AnnotationItem.status == "pending",
        and_(AnnotationItem.status == "claimed", AnnotationItem.claimed_at < cutoff),
    )


def claim_expired(item: AnnotationItem, now: datetime | None = None) -> bool:
    return (
        item.status == "claimed"
        and item.claimed_at is not None
        and item.claimed_at < (now or utcnow()) - CLAIM_TTL
    )


def effective_status(item: AnnotationItem, now: datetime | None = None) -> str:
    return "pending" if claim_expired(item, now) else item.status


def item_out(item: AnnotationItem, subject: SubjectOut | None = None) -> AnnotationOut:
    """The item as clients see it: an expired claim shows as pending with no claimer."""
    expired = claim_expired(item)
    claimed = item.status == "claimed" and not expired
    return AnnotationOut(
        id=item.id,
        queue=item.queue,
        status=effective_status(item),
        run_id=item.run_id,
        eval_result_id=item.eval_result_id,
        prompt_id=item.prompt_id,
        version_id=item.version_id,
        claimed_by=item.claimed_by if claimed else None,
        claimed_at=item.claimed_at if claimed else None,
        claim_expires_at=item.claimed_at + CLAIM_TTL if claimed and item.claimed_at else None,
        feedback_id=item.feedback_id,
        skip_reason=item.skip_reason,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        subject=subject,
    )


# --- enqueue --------------------------------------------------------------------------------------------------


async def _open_items(
    session: AsyncSession, principal: Principal, queue: str, column: Any, ids: Sequence[str]
) -> set[str]:
    """Of ``ids``, those already waiting (pending or claimed) in ``queue``."""
    if not ids:
        return set()
    rows = await session.execute(
        scoped(select(column), AnnotationItem, principal).where(
            AnnotationItem.queue == queue,
            AnnotationItem.status.in_(OPEN_STATUSES),
            column.in_(list(ids)),
        )
    )
    return {r for (r,) in rows.all()}


async def _sample_runs(session: AsyncSession, principal: Principal, queue: str, body: EnqueueIn) -> list[Run]:
    assert body.sample is not None
    sample = body.sample
    ref = sample.prompt.strip()
    prompt_id = version_id = None
    if "@" in ref or has_prefix(ref, "version"):
        version_id = (await feedback_service.resolve_prompt_ref(session, principal, ref)).version_id
    else:
        prompt_id = (await registry.get_prompt(session, principal, ref)).id
    already_queued = select(AnnotationItem.run_id).where(
        AnnotationItem.project_id == principal.project_id,
        AnnotationItem.queue == queue,
        AnnotationItem.run_id.is_not(None),
    )
    runs, _ = await runs_service.list_runs(
        session,
        principal,
        prompt_id=prompt_id,
        version_id=version_id,
        status="ok",
        source=sample.source,
        since=sample.since,
        exclude=already_queued,
        limit=sample.limit,
    )
    return runs


async def enqueue(
    session: AsyncSession, principal: Principal, body: EnqueueIn
) -> tuple[list[AnnotationItem], list[str]]:
    """Queue runs and evaluation results for rating; returns (new items, ids that were already waiting).

    Named ids must all exist in the project (else 404 and nothing is queued). A sample takes the newest
    successful runs of the prompt that were never queued in this queue.
    """
    queue = body.queue
    run_ids = list(dict.fromkeys(body.run_ids))
    result_ids = list(dict.fromkeys(body.eval_result_ids))
    runs: list[Run] = []
    if run_ids:
        found = await runs_service.runs_by_id(session, principal, run_ids)
        missing = [i for i in run_ids if i not in found]
        if missing:
            raise NotFound(f"Run {missing[0]} not found", code="run_not_found", missing=missing[:20])
        runs = [found[i] for i in run_ids]
    results: list[EvalResult] = []
    if result_ids:
        found_results = await evals.results_by_id(session, principal, result_ids)
        missing = [i for i in result_ids if i not in found_results]
        if missing:
            raise NotFound(
                f"Evaluation result {missing[0]} not found",
                code="eval_result_not_found",
                missing=missing[:20],
            )
        results = [found_results[i] for i in result_ids]
    if body.sample is not None:
        listed = {r.id for r in runs}
        runs += [r for r in await _sample_runs(session, principal, queue, body) if r.id not in listed]

    waiting_runs = await _open_items(session, principal, queue, AnnotationItem.run_id, [r.id for r in runs])
    waiting_results = await _open_items(
        session, principal, queue, AnnotationItem.eval_result_id, [r.id for r in results]
    )
    prompt_of = await feedback_service.prompt_ids_of_versions(
        session, principal, [r.version_id for r in results]
    )
    now = utcnow()
    created: list[AnnotationItem] = []

    def add(**fields: Any) -> None:
        item = AnnotationItem(
            id=new_id("annotation"),
            project_id=principal.project_id,
            queue=queue,
            status="pending",
            skip_reason="",
            created_by=principal.id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        session.add(item)
        created.append(item)

    for run in runs:
        if run.id not in waiting_runs:
            add(run_id=run.id, prompt_id=run.prompt_id, version_id=run.version_id)
    for result in results:
        if result.id not in waiting_results:
            add(
                eval_result_id=result.id,
                run_id=result.run_id,
                prompt_id=prompt_of.get(result.version_id),
                version_id=result.version_id,
            )
    already = sorted(waiting_runs) + sorted(waiting_results)
    if created or already:
        prompts = {i.prompt_id for i in created}
        await audit.record(
            session,
            principal,
            "AnnotationsQueued",
            prompt_id=prompts.pop() if len(prompts) == 1 else None,
            data={
                "queue": queue,
                "count": len(created),
                "itemIds": [i.id for i in created],
                "runIds": [i.run_id for i in created if i.run_id and not i.eval_result_id],
                "evalResultIds": [i.eval_result_id for i in created if i.eval_result_id],
                "alreadyQueued": already,
                "sample": body.sample.model_dump(mode="json", by_alias=True) if body.sample else None,
            },
        )
    await session.flush()
    return created, already


# --- reading --------------------------------------------------------------------------------------------------


async def get_item(session: AsyncSession, principal: Principal, item_id: str) -> AnnotationItem:
    return await _find_item(session, principal, item_id, for_update=False)


async def list_items(
    session: AsyncSession,
    principal: Principal,
    *,
    queue: str | None = None,
    status: str | None = None,
    prompt: str | None = None,
    claimed_by: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AnnotationItem], str | None]:
    """Items oldest first (the order they are handed out in); ``status`` is the effective status."""
    stmt = scoped(select(AnnotationItem), AnnotationItem, principal)
    if queue:
        stmt = stmt.where(AnnotationItem.queue == queue)
    cutoff = utcnow() - CLAIM_TTL
    if status == "pending":
        stmt = stmt.where(_claimable(cutoff))
    elif status == "claimed":
        stmt = stmt.where(AnnotationItem.status == "claimed", AnnotationItem.claimed_at >= cutoff)
    elif status:
        stmt = stmt.where(AnnotationItem.status == status)
    if prompt:
        stmt = stmt.where(AnnotationItem.prompt_id == await registry.prompt_id_of(session, principal, prompt))
    if claimed_by:
        stmt = stmt.where(AnnotationItem.claimed_by == claimed_by, AnnotationItem.status == "claimed")
    if cursor:
        stmt = stmt.where(AnnotationItem.id > id_cursor(cursor, "annotation"))
    return await fetch_page(session, stmt.order_by(AnnotationItem.id), limit, lambda row: row.id)


async def subjects(
    session: AsyncSession, principal: Principal, items: Sequence[AnnotationItem]
) -> dict[str, SubjectOut]:
    """What each item asks to rate (run input and output, or the evaluation case, expected and output)."""
    result_ids = [i.eval_result_id for i in items if i.eval_result_id]
    run_ids = [i.run_id for i in items if i.run_id and not i.eval_result_id]
    runs = await runs_service.runs_by_id(session, principal, run_ids)
    results = await evals.results_by_id(session, principal, result_ids)
    cases = await datasets.cases_by_id(session, principal, (r.case_id for r in results.values()))
    out: dict[str, SubjectOut] = {}
    for item in items:
        if item.eval_result_id and item.eval_result_id in results:
            res = results[item.eval_result_id]
            case = cases.get(res.case_id)
            provider, _, model = res.target.partition("/")
            out[item.id] = SubjectOut(
                kind="eval_result",
                id=res.id,
                run_id=res.run_id,
                eval_run_id=res.eval_run_id,
                case_key=res.case_key,
                expected=case.expected if case else None,
                provider=provider or None,
                model=model or None,
                input=case.input if case else None,
                output=res.output,
                status="error" if res.error_class else "ok",
                created_at=res.created_at,
            )
        elif item.run_id and item.run_id in runs:
            run = runs[item.run_id]
            out[item.id] = SubjectOut(
                kind="run",
                id=run.id,
                run_id=run.id,
                provider=run.provider,
                model=run.model,
                input=run.input,
                output=run.output,
                status=run.status,
                created_at=run.created_at,
            )
    return out


# --- claiming -------------------------------------------------------------------------------------------------


async def _take(
    session: AsyncSession, principal: Principal, item: AnnotationItem, now: datetime, condition: Any
) -> bool:
    """Move ``item`` to claimed-by-principal if ``condition`` still holds (compare-and-set)."""
    previous = item.claimed_by if item.status == "claimed" else None
    result = await session.execute(
        update(AnnotationItem)
        .where(AnnotationItem.id == item.id, AnnotationItem.project_id == principal.project_id, condition)
        .values(status="claimed", claimed_by=principal.id, claimed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    await session.refresh(item)
    await _record_item_event(session, principal, "AnnotationClaimed", item, previousClaimer=previous)
    return True


async def claim_next(
    session: AsyncSession, principal: Principal, queue: str = "default", prompt: str | None = None
) -> AnnotationItem | None:
    """Claim the oldest claimable item of ``queue`` (optionally of one prompt); None when there is none."""
    prompt_id = await registry.prompt_id_of(session, principal, prompt) if prompt else None
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(CLAIM_ATTEMPTS):
        now = utcnow()
        condition = _claimable(now - CLAIM_TTL)
        stmt = (
            scoped(select(AnnotationItem), AnnotationItem, principal)
            .where(AnnotationItem.queue == queue, condition)
            .order_by(AnnotationItem.created_at, AnnotationItem.id)
            .limit(1)
        )
        if prompt_id:
            stmt = stmt.where(AnnotationItem.prompt_id == prompt_id)
        if postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        item = (await session.execute(stmt)).scalar_one_or_none()
        if item is None:
            return None
        if await _take(session, principal, item, now, condition):
            return item
    raise Conflict("The queue is busy; try again", code="queue_busy")


def _is_admin(principal: Principal) -> bool:
    return principal.role == Role.ADMIN


def _check_open(item: AnnotationItem) -> None:
    if item.status in ("done", "skipped"):
        raise Conflict(f"Annotation item {item.id} is already {item.status}", code="annotation_closed")


def _check_may_act(principal: Principal, item: AnnotationItem, now: datetime) -> None:
    """The claimer (or an admin) acts on a claimed item; anyone with the permission on a pending one."""
    held = item.status == "claimed" and not claim_expired(item, now)
    if held and item.claimed_by != principal.id and not _is_admin(principal):
        raise Forbidden(
            f"Annotation item {item.id} is claimed by {item.claimed_by}; only its claimer or an admin "
            "may rate, skip or release it",
            code="claimed_by_other",
        )


async def _record_item_event(
    session: AsyncSession, principal: Principal, event: str, item: AnnotationItem, **extra: Any
) -> None:
    """An audit event about one queue item: its id, queue and subject, plus ``extra``."""
    await audit.record(
        session,
        principal,
        event,
        prompt_id=item.prompt_id,
        data={
            "annotationId": item.id,
            "queue": item.queue,
            "runId": item.run_id,
            "evalResultId": item.eval_result_id,
            **extra,
        },
    )


async def _find_item(
    session: AsyncSession, principal: Principal, item_id: str, *, for_update: bool
) -> AnnotationItem:
    return await get_scoped(
        session,
        principal,
        AnnotationItem,
        item_id,
        missing=f"Annotation item {item_id} not found",
        code="annotation_not_found",
        for_update=for_update,
    )


async def _locked_item(session: AsyncSession, principal: Principal, item_id: str) -> AnnotationItem:
    return await _find_item(session, principal, item_id, for_update=True)


async def claim(session: AsyncSession, principal: Principal, item_id: str) -> AnnotationItem:
    """Claim one item: pending or expired -> claimed by the caller; the caller's own claim is renewed."""
    item = await _locked_item(session, principal, item_id)
    _check_open(item)
    now = utcnow()
    if item.status == "claimed" and not claim_expired(item, now) and item.claimed_by != principal.id:
        raise Conflict(f"Annotation item {item.id} is claimed by {item.claimed_by}", code="already_claimed")
    condition = or_(_claimable(now - CLAIM_TTL), AnnotationItem.claimed_by == principal.id)
    if not await _take(
        session, principal, item, now, and_(AnnotationItem.status.in_(OPEN_STATUSES), condition)
    ):
        raise Conflict(f"Annotation item {item.id} was claimed by someone else", code="already_claimed")
    return item


async def release(session: AsyncSession, principal: Principal, item_id: str) -> AnnotationItem:
    """Give a claimed item back to the queue (its claimer or an admin)."""
    item = await _locked_item(session, principal, item_id)
    _check_open(item)
    now = utcnow()
    mine = item.claimed_by == principal.id or _is_admin(principal)
    if item.status != "claimed" or (claim_expired(item, now) and not mine):
        raise Conflict(f"Annotation item {item.id} is not claimed", code="not_claimed")
    _check_may_act(principal, item, now)
    previous = item.claimed_by
    item.status = "pending"
    item.claimed_by = None
    item.claimed_at = None
    item.updated_at = now
    await audit.record(
        session,
        principal,
        "AnnotationReleased",
        prompt_id=item.prompt_id,
        data={"annotationId": item.id, "queue": item.queue, "previousClaimer": previous},
    )
    await session.flush()
    return item


async def skip(session: AsyncSession, principal: Principal, item_id: str, reason: str = "") -> AnnotationItem:
    """Close an item without a rating (e.g. the output is unreadable or out of scope)."""
    item = await _locked_item(session, principal, item_id)
    _check_open(item)
    now = utcnow()
    _check_may_act(principal, item, now)
    item.status = "skipped"
    item.skip_reason = reason
    item.claimed_by = principal.id
    item.claimed_at = item.claimed_at or now
    item.updated_at = now
    await _record_item_event(session, principal, "AnnotationSkipped", item, reason=reason)
    await session.flush()
    return item


async def rate(
    session: AsyncSession, principal: Principal, item_id: str, rating: RatingFields
) -> tuple[AnnotationItem, Feedback]:
    """Rate the item's run / evaluation result: a Feedback with source ``annotation``; the item is done."""
    item = await _locked_item(session, principal, item_id)
    _check_open(item)
    now = utcnow()
    _check_may_act(principal, item, now)
    subject = feedback_service.Subject(
        prompt_id=item.prompt_id,
        version_id=item.version_id,
        run_id=item.run_id,
        eval_result_id=item.eval_result_id,
    )
    feedback = await feedback_service.record_feedback(
        session,
        principal,
        subject,
        rating,
        source="annotation",
        audit_extra={"annotationId": item.id, "queue": item.queue},
    )
    item.status = "done"
    item.feedback_id = feedback.id
    item.claimed_by = principal.id
    item.claimed_at = item.claimed_at or now
    item.updated_at = now
    await session.flush()
    return item, feedback
