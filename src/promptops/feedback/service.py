"""Feedback behaviour: record ratings of prompt versions, runs and evaluation results; aggregate them.

A feedback record always names what it rates as precisely as it can: a run or an evaluation result resolves to
its prompt and version, a prompt reference resolves to one version. How a reference resolves:

* ``ver_...``: that version.
* ``name@label`` / ``name@3``: the version the label points to / version 3.
* ``prm_...`` or a bare ``name``: the version the ``production`` label points to (what users of the prompt
  saw), or the latest version when the prompt has no ``production`` label. The stored record carries the
  version id, so a client can always see which version its feedback was attached to.

Scores, rubric criteria and thumbs follow the QA rubric of seed 004: 1-5 per score and criterion, +1/-1 thumbs.
Every record appends a ``FeedbackSubmitted`` audit event (promptId, user, score, notes, ...) in the same
transaction.

Personal data: ``user`` and ``notes`` are sealed under the key of the record's data subject (the end user the
``user`` field names, else the acting user; promptops.personal.vault), stored in ``subject_id``. The audit
event carries the subject id as ``user`` and a keyed digest as ``notes``, so erasing the subject (shredding its
key) leaves nothing readable and the chain intact. Reads reveal the fields (``[erased]`` once erased).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Select, case, cast, delete, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from promptops.auth import service as auth_service
from promptops.auth.principal import Principal
from promptops.errors import NotFound, ValidationProblem
from promptops.evals import service as evals
from promptops.feedback.models import Feedback
from promptops.feedback.schemas import (
    CRITERIA,
    CriterionSummary,
    FeedbackAggregate,
    FeedbackIn,
    FeedbackPayload,
    FeedbackSummaryOut,
    RatingFields,
    VersionFeedbackOut,
)
from promptops.governance import audit
from promptops.ids import has_prefix, new_id
from promptops.pagination import fetch_page, id_cursor
from promptops.personal import vault
from promptops.registry import service as registry
from promptops.runs.rollup import run_hour
from promptops.runs.service import get_run
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.evals.models import EvalResult

DEFAULT_LABEL = "production"


@dataclass(frozen=True)
class Subject:
    """What a feedback record is about."""

    prompt_id: str | None
    version_id: str | None
    run_id: str | None = None
    eval_result_id: str | None = None


# --- resolving what is rated ----------------------------------------------------------------------------------


async def resolve_prompt_ref(session: AsyncSession, principal: Principal, ref: str) -> Subject:
    """The (prompt, version) a reference names; see the module docstring for the rules."""
    ref = ref.strip()
    if not ref:
        raise ValidationProblem("Empty prompt reference", code="invalid_reference")
    if has_prefix(ref, "version"):
        version = await registry.get_version_by_id(session, principal, ref)
        return Subject(prompt_id=version.prompt_id, version_id=version.id)
    if "@" in ref:
        prompt, version, _ = await registry.resolve(session, principal, ref)
        return Subject(prompt_id=prompt.id, version_id=version.id)
    prompt = await registry.get_prompt(session, principal, ref)
    labels = await registry.labels_of_prompt(session, prompt.id)
    if DEFAULT_LABEL in labels:
        return Subject(prompt_id=prompt.id, version_id=labels[DEFAULT_LABEL].version_id)
    latest, _ = await registry.select_version(session, prompt)
    return Subject(prompt_id=prompt.id, version_id=latest.id)


async def _eval_result(session: AsyncSession, principal: Principal, result_id: str) -> EvalResult:
    found = (await evals.results_by_id(session, principal, [result_id])).get(result_id)
    if found is None:
        raise NotFound(f"Evaluation result {result_id} not found", code="eval_result_not_found")
    return found


async def prompt_ids_of_versions(
    session: AsyncSession, principal: Principal, version_ids: Iterable[str]
) -> dict[str, str]:
    refs = await registry.version_refs(session, principal, version_ids)
    return {version_id: prompt_id for version_id, (prompt_id, _) in refs.items()}


async def subject_of_run(session: AsyncSession, principal: Principal, run_id: str) -> Subject:
    run = await get_run(session, principal, run_id)
    return Subject(prompt_id=run.prompt_id, version_id=run.version_id, run_id=run.id)


async def subject_of_eval_result(session: AsyncSession, principal: Principal, result_id: str) -> Subject:
    result = await _eval_result(session, principal, result_id)
    prompt_ids = await prompt_ids_of_versions(session, principal, [result.version_id])
    return Subject(
        prompt_id=prompt_ids.get(result.version_id),
        version_id=result.version_id,
        run_id=result.run_id,
        eval_result_id=result.id,
    )


# --- recording ------------------------------------------------------------------------------------------------


async def record_feedback(
    session: AsyncSession,
    principal: Principal,
    subject: Subject,
    rating: RatingFields,
    *,
    source: str = "human",
    audit_extra: dict[str, Any] | None = None,
) -> Feedback:
    """Store one rating of ``subject`` and append its ``FeedbackSubmitted`` event (same transaction)."""
    user = rating.user.strip() or principal.display
    subject_id, kind = await data_subject(session, principal, rating.user.strip())
    feedback = Feedback(
        id=new_id("feedback"),
        project_id=principal.project_id,
        prompt_id=subject.prompt_id,
        version_id=subject.version_id,
        run_id=subject.run_id,
        eval_result_id=subject.eval_result_id,
        user=await vault.seal(session, subject_id, user, kind=kind, project_id=principal.project_id),
        subject_id=subject_id,
        actor_id=principal.id,
        source=source,
        score=rating.score,
        thumbs=rating.thumbs,
        rubric=dict(rating.rubric),
        tags=list(rating.tags),
        notes=await vault.seal(session, subject_id, rating.notes, kind=kind, project_id=principal.project_id),
    )
    session.add(feedback)
    data: dict[str, Any] = {
        "feedbackId": feedback.id,
        "promptId": subject.prompt_id,
        "versionId": subject.version_id,
        "user": subject_id,  # the data subject, never the name or email itself
        "score": rating.score,
        "notes": await vault.digest(session, rating.notes) if rating.notes else "",
        "source": source,
    }
    optional = {
        "runId": subject.run_id,
        "evalResultId": subject.eval_result_id,
        "thumbs": rating.thumbs,
        "rubric": dict(rating.rubric) or None,
        "tags": list(rating.tags) or None,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    data.update(audit_extra or {})
    await audit.record(session, principal, "FeedbackSubmitted", prompt_id=subject.prompt_id, data=data)
    await session.flush()
    set_committed_value(feedback, "user", user)
    set_committed_value(feedback, "notes", rating.notes)
    return feedback


# --- personal data --------------------------------------------------------------------------------------------


async def data_subject(session: AsyncSession, principal: Principal, user: str) -> tuple[str, str]:
    """(subject id, kind) whose key seals a record: the end user named by ``user``, else the acting user (or,
    for an API key, the key's name as an end user of the project)."""
    if not user and principal.kind == "user" and principal.user_id:
        return principal.user_id, "user"
    return await vault.end_user_subject(session, principal.project_id, user or principal.display), "end_user"


async def subjects_named(session: AsyncSession, principal: Principal, user: str) -> list[str]:
    """The subject ids a ``user`` filter value may mean: that end user, or the user with that email."""
    found = [await vault.end_user_subject(session, principal.project_id, user)]
    if "@" in user:
        account = await auth_service.user_by_email(session, user.strip().lower())
        if account is not None:
            found.append(account.id)
    return found


async def reveal(session: AsyncSession, rows: Sequence[Feedback]) -> list[Feedback]:
    """Replace the sealed ``user`` and ``notes`` of loaded records by plaintext (``[erased]`` once erased)."""
    plain = await vault.reveal_many(session, [v for f in rows for v in (f.user, f.notes)])
    for row in rows:
        set_committed_value(row, "user", plain.get(row.user, row.user))
        set_committed_value(row, "notes", plain.get(row.notes, row.notes))
    return list(rows)


async def feedback_of_subject(session: AsyncSession, principal: Principal, subject_id: str) -> list[Feedback]:
    """Every record of one data subject in the principal's project, oldest first, revealed (DSAR export)."""
    rows = await session.execute(
        scoped(select(Feedback), Feedback, principal)
        .where(Feedback.subject_id == subject_id)
        .order_by(Feedback.id)
    )
    return await reveal(session, list(rows.scalars()))


async def delete_feedback_before(session: AsyncSession, project_id: str, cutoff: datetime) -> int:
    """Delete one project's feedback created before ``cutoff`` (retention); the number deleted."""
    result = await session.execute(
        delete(Feedback).where(Feedback.project_id == project_id, Feedback.created_at < cutoff)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def seal_plaintext_feedback(session: AsyncSession, batch: int = 500) -> int:
    """Seal a batch of records written before personal-data encryption (``subject_id`` NULL); the count."""
    rows = list(
        (await session.execute(select(Feedback).where(Feedback.subject_id.is_(None)).limit(batch))).scalars()
    )
    for row in rows:
        subject_id, kind = await _legacy_subject(session, row)
        row.subject_id = subject_id
        row.user = await vault.seal(session, subject_id, row.user, kind=kind, project_id=row.project_id)
        row.notes = await vault.seal(session, subject_id, row.notes, kind=kind, project_id=row.project_id)
    await session.flush()
    return len(rows)


async def _legacy_subject(session: AsyncSession, row: Feedback) -> tuple[str, str]:
    """A pre-encryption record sent by a user with their own email as ``user`` belongs to that user."""
    if row.actor_id and has_prefix(row.actor_id, "user"):
        names = await auth_service.user_display_names(session, [row.actor_id])
        if names.get(row.actor_id) == row.user:
            return row.actor_id, "user"
    return await vault.end_user_subject(session, row.project_id, row.user), "end_user"


async def submit_contract(session: AsyncSession, principal: Principal, payload: FeedbackPayload) -> Feedback:
    """``POST /api/prompt/feedback`` (seed 004 FeedbackPayload): a score and notes on a prompt version."""
    subject = await resolve_prompt_ref(session, principal, payload.prompt_id)
    rating = RatingFields(score=payload.score, notes=payload.notes, user=payload.user)
    return await record_feedback(session, principal, subject, rating, source="human")


async def submit(session: AsyncSession, principal: Principal, body: FeedbackIn) -> Feedback:
    """``POST /api/v1/feedback``: a rating of one run, evaluation result or prompt version."""
    if body.run_id:
        subject = await subject_of_run(session, principal, body.run_id)
    elif body.eval_result_id:
        subject = await subject_of_eval_result(session, principal, body.eval_result_id)
    else:
        assert body.prompt is not None
        subject = await resolve_prompt_ref(session, principal, body.prompt)
    return await record_feedback(session, principal, subject, body, source=body.source)


# --- reading --------------------------------------------------------------------------------------------------


async def get_feedback(session: AsyncSession, principal: Principal, feedback_id: str) -> Feedback:
    found = await get_scoped(
        session,
        principal,
        Feedback,
        feedback_id,
        missing=f"Feedback {feedback_id} not found",
        code="feedback_not_found",
    )
    return (await reveal(session, [found]))[0]


def _has_tag(session: AsyncSession, stmt: Select[Any], tag: str) -> Select[Any]:
    """Rows whose JSON ``tags`` list contains ``tag`` (JSONB containment on PostgreSQL, json_each on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.where(type_coerce(Feedback.tags, JSONB).contains([tag]))
    each = func.json_each(Feedback.tags).table_valued("value")
    return stmt.where(exists(select(literal(1)).select_from(each).where(each.c.value == tag)))


async def list_feedback(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt: str | None = None,
    version_id: str | None = None,
    run_id: str | None = None,
    eval_result_id: str | None = None,
    user: str | None = None,
    source: str | None = None,
    tag: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Feedback], str | None]:
    """Feedback newest first with filters; the cursor is the last id of the previous page."""
    stmt = scoped(select(Feedback), Feedback, principal)
    if prompt:
        stmt = stmt.where(Feedback.prompt_id == await registry.prompt_id_of(session, principal, prompt))
    for column, value in (
        (Feedback.version_id, version_id),
        (Feedback.run_id, run_id),
        (Feedback.eval_result_id, eval_result_id),
        (Feedback.source, source),
    ):
        if value:
            stmt = stmt.where(column == value)
    if user:
        stmt = stmt.where(Feedback.subject_id.in_(await subjects_named(session, principal, user.strip())))
    if tag:
        stmt = _has_tag(session, stmt, tag)
    if min_score is not None:
        stmt = stmt.where(Feedback.score >= min_score)
    if max_score is not None:
        stmt = stmt.where(Feedback.score <= max_score)
    if since:
        stmt = stmt.where(Feedback.created_at >= since)
    if until:
        stmt = stmt.where(Feedback.created_at < until)
    if cursor:
        stmt = stmt.where(Feedback.id < id_cursor(cursor, "feedback"))
    rows, next_cursor = await fetch_page(
        session, stmt.order_by(Feedback.id.desc()), limit, lambda row: row.id
    )
    return await reveal(session, rows), next_cursor


async def recent_feedback(
    session: AsyncSession,
    principal: Principal,
    version_id: str,
    limit: int = 50,
    *,
    max_score: float | None = None,
    with_notes: bool = False,
) -> list[Feedback]:
    """The newest feedback on one version (for refinement: what people said, and the low-scored runs).

    ``max_score`` keeps only records scored at or below it (thumbs-down records without a score count as
    low too); ``with_notes`` keeps only records with a non-empty note.
    """
    stmt = scoped(select(Feedback), Feedback, principal).where(Feedback.version_id == version_id)
    if max_score is not None:
        stmt = stmt.where(
            (Feedback.score <= max_score) | ((Feedback.score.is_(None)) & (Feedback.thumbs == -1))
        )
    if with_notes:
        stmt = stmt.where(Feedback.notes != "")
    rows = await session.execute(stmt.order_by(Feedback.id.desc()).limit(max(1, min(limit, 1000))))
    return await reveal(session, list(rows.scalars()))


# --- aggregates -----------------------------------------------------------------------------------------------


class _Accumulator:
    def __init__(self) -> None:
        self.count = 0
        self.scores: list[float] = []
        self.up = 0
        self.down = 0
        self.criteria: dict[str, list[float]] = defaultdict(list)
        self.tags: Counter[str] = Counter()
        self.last_at: datetime | None = None

    def add(self, score: float | None, thumbs: int | None, rubric: Any, tags: Any, at: datetime) -> None:
        self.count += 1
        if score is not None:
            self.scores.append(float(score))
        if thumbs == 1:
            self.up += 1
        elif thumbs == -1:
            self.down += 1
        for criterion, value in (rubric or {}).items():
            if isinstance(value, int | float):
                self.criteria[criterion].append(float(value))
        self.tags.update(t for t in (tags or []) if isinstance(t, str))
        if self.last_at is None or at > self.last_at:
            self.last_at = at

    def result(self) -> dict[str, Any]:
        histogram = {str(n): 0 for n in range(1, 6)}
        for score in self.scores:
            histogram[str(min(5, max(1, round(score))))] += 1
        return {
            "count": self.count,
            "scored": len(self.scores),
            "mean_score": _mean(self.scores),
            "min_score": min(self.scores) if self.scores else None,
            "max_score": max(self.scores) if self.scores else None,
            "score_histogram": histogram,
            "thumbs_up": self.up,
            "thumbs_down": self.down,
            "rubric": {
                c: CriterionSummary(count=len(self.criteria[c]), mean=_mean(self.criteria[c]))
                for c in CRITERIA
                if self.criteria.get(c)
            },
            "tags": dict(sorted(self.tags.items(), key=lambda kv: (-kv[1], kv[0]))),
            "last_at": self.last_at,
        }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


async def _aggregate(
    session: AsyncSession,
    principal: Principal,
    version_ids: Sequence[str] | None,
    prompt_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[_Accumulator, dict[str, _Accumulator]]:
    stmt = scoped(
        select(
            Feedback.version_id,
            Feedback.score,
            Feedback.thumbs,
            Feedback.rubric,
            Feedback.tags,
            Feedback.created_at,
        ),
        Feedback,
        principal,
    )
    if version_ids is not None:
        stmt = stmt.where(Feedback.version_id.in_(list(version_ids)))
    if prompt_id is not None:
        stmt = stmt.where(Feedback.prompt_id == prompt_id)
    if since:
        stmt = stmt.where(Feedback.created_at >= since)
    if until:
        stmt = stmt.where(Feedback.created_at < until)
    overall = _Accumulator()
    per_version: dict[str, _Accumulator] = {}
    result = await session.stream(stmt.execution_options(yield_per=2000))
    async for version_id, score, thumbs, rubric, tags, at in result:
        overall.add(score, thumbs, rubric, tags, at)
        if version_id:
            per_version.setdefault(version_id, _Accumulator()).add(score, thumbs, rubric, tags, at)
    return overall, per_version


async def feedback_summary(
    session: AsyncSession,
    principal: Principal,
    version_ids: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, FeedbackAggregate]:
    """Aggregates per version id (every id asked for is in the answer; count 0 when nothing was said)."""
    ids = list(dict.fromkeys(version_ids))
    if not ids:
        return {}
    _, per_version = await _aggregate(session, principal, ids, None, since, until)
    return {vid: FeedbackAggregate(**(per_version.get(vid) or _Accumulator()).result()) for vid in ids}


async def prompt_summary(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt: str | None = None,
    version_ids: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> FeedbackSummaryOut:
    """Aggregates for a prompt (per version that has feedback, plus overall) or for given versions.

    ``prompt`` as a bare name or ``prm_`` id covers every version of the prompt; ``name@label``, ``name@3``
    or a ``ver_`` id covers that one version.
    """
    if not prompt and not version_ids:
        raise ValidationProblem("Give 'prompt' or 'versionId'", code="summary_scope_required")
    prompt_id: str | None = None
    name: str | None = None
    ids: list[str] | None = list(dict.fromkeys(version_ids)) or None
    if prompt:
        if "@" in prompt or has_prefix(prompt, "version"):
            subject = await resolve_prompt_ref(session, principal, prompt)
            ids = [*(ids or []), subject.version_id] if subject.version_id else ids
            prompt_id = subject.prompt_id
        else:
            found = await registry.get_prompt(session, principal, prompt)
            prompt_id = found.id
        if prompt_id:
            name = (await registry.get_prompt(session, principal, prompt_id)).name
        scope_prompt = prompt_id if ids is None else None
    else:
        scope_prompt = None
    overall, per_version = await _aggregate(session, principal, ids, scope_prompt, since, until)
    wanted = ids if ids is not None else list(per_version)
    numbers = {
        vid: number for vid, (_, number) in (await registry.version_refs(session, principal, wanted)).items()
    }
    versions = [
        VersionFeedbackOut(
            version_id=vid, version=numbers.get(vid), **(per_version.get(vid) or _Accumulator()).result()
        )
        for vid in wanted
    ]
    versions.sort(key=lambda v: (v.version is None, v.version or 0, v.version_id))
    return FeedbackSummaryOut(
        prompt_id=prompt_id, name=name, overall=FeedbackAggregate(**overall.result()), versions=versions
    )


@dataclass(frozen=True)
class ScoreBucket:
    """Feedback on one version in one hour: how many records, how many carry a 1-5 score, their sum, thumbs."""

    hour: int  # hours since the Unix epoch (UTC)
    version_id: str
    count: int
    scored: int
    score_sum: float
    thumbs_up: int
    thumbs_down: int


async def score_buckets(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_id: str,
    since: datetime,
    until: datetime,
    version_ids: Sequence[str] | None = None,
) -> list[ScoreBucket]:
    """Feedback on a prompt's versions summed per (hour, version) in the database (for monitoring charts):
    one row per hour and version that has feedback in [since, until)."""
    hour = run_hour(session.get_bind().dialect.name, Feedback.created_at).label("hour")
    stmt = scoped(
        select(
            hour,
            Feedback.version_id,
            func.count(),
            func.count(Feedback.score),
            func.coalesce(func.sum(Feedback.score), 0.0),
            func.sum(case((Feedback.thumbs == 1, 1), else_=0)),
            func.sum(case((Feedback.thumbs == -1, 1), else_=0)),
        ),
        Feedback,
        principal,
    ).where(Feedback.prompt_id == prompt_id, Feedback.created_at >= since, Feedback.created_at < until)
    if version_ids is not None:
        stmt = stmt.where(Feedback.version_id.in_(list(version_ids)))
    rows = (await session.execute(stmt.group_by(hour, Feedback.version_id))).all()
    return [
        ScoreBucket(int(h), v or "", int(n), int(s), float(total or 0.0), int(up or 0), int(down or 0))
        for h, v, n, s, total, up, down in rows
    ]


@dataclass(frozen=True)
class GroupScores:
    """Feedback on a group of runs: scores (1-5) and thumbs (+1/-1) with their counts and sums of squares."""

    scores: int = 0
    score_sum: float = 0.0
    score_sq: float = 0.0
    thumbs: int = 0
    thumbs_sum: float = 0.0
    thumbs_sq: float = 0.0


async def scores_by_run_group(
    session: AsyncSession, principal: Principal, runs: Select[Any]
) -> dict[str, GroupScores]:
    """Feedback on runs grouped as ``runs`` says: a ``select(run_id, arm)`` (e.g. an experiment's runs per arm,
    from the runs engine); every feedback record on a run counts once for the run's group."""
    grouped = runs.subquery()
    score = Feedback.score
    thumbs = cast(Feedback.thumbs, Float)
    rows = await session.execute(
        scoped(
            select(
                grouped.c.arm,
                func.count(score),
                func.sum(score),
                func.sum(score * score),
                func.count(Feedback.thumbs),
                func.sum(thumbs),
                func.sum(thumbs * thumbs),
            ),
            Feedback,
            principal,
        )
        .join(grouped, grouped.c.run_id == Feedback.run_id)
        .group_by(grouped.c.arm)
    )
    return {
        str(arm): GroupScores(int(n), float(s or 0), float(sq or 0), int(tn), float(ts or 0), float(tsq or 0))
        for arm, n, s, sq, tn, ts, tsq in rows.all()
        if arm is not None
    }
