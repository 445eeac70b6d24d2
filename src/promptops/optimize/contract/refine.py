"""Seed 004 ``POST /api/prompt/refine``: a prompt version + feedback -> an improved version, saved with lineage.

What feedback is used: the request's ``feedback`` notes; with ``useFeedback`` the version's recent feedback notes
and its low ratings (score <= 2 or thumbs down); with ``evalRunId`` that evaluation's results for the version
(failed cases become counter-examples, all of them the test set); with ``dataset`` its cases as the test set.

Strategies (each proposes one candidate when it applies):

* ``tighten-format`` (deterministic): notes such as "answer with one word", "only the label", "respond in JSON",
  "too long" make the format explicit in the template *and* enforce it through the version's model parameters
  (``temperature`` 0, a small ``max_tokens``, ``stop`` sequences); see
  :func:`promptops.optimize.contract.strategies.tighten_format`.
* ``counter-examples`` (deterministic): failed cases with an expected answer become few-shot examples in front
  of the input. Combined with ``tighten-format`` when both apply.
* ``critique-and-edit`` (model): the model reads the prompt, the notes and failing cases and writes a corrected
  prompt; kept only when it parses and keeps every required variable (weak models often write junk).
* ``apply-notes`` (deterministic): the notes as an explicit instruction.

Choosing: with test cases (failed evaluation cases or a dataset) the parent and every candidate run on the same
cases with the same scorers and the best mean score wins (ties: the order above); without cases, a heuristic
rank (format tightening when the notes ask for a format, then counter-examples, the model's edit, the notes
as an instruction) plus the lint-based quality score. The rationale says which strategy won and why.

The winner is saved as a new version (source ``refined``, parent = the refined version, no labels) and
``PromptRefined`` (promptId, parentId, user, feedback, deltas) is written to the audit log in the same
transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import case_variables
from promptops.errors import ValidationProblem
from promptops.evals import quick
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.feedback import service as feedback_service
from promptops.governance import audit
from promptops.optimize.contract import strategies as st
from promptops.optimize.contract.common import (
    EVAL_CONCURRENCY,
    ask_rewrite,
    labels_for,
    load_dataset_cases,
    load_version,
    now_iso,
    pick_scorers,
    quality,
    required_names,
    score_proposal,
    target_with_params,
)
from promptops.optimize.contract.schemas import PromptRefineRequest
from promptops.optimize.examples import Example, pick_examples
from promptops.registry import service as registry
from promptops.registry.schemas import CreateVersionIn
from promptops.runtime import Runtime
from promptops.templates import engine as templates
from promptops.templates import pool as template_pool

if TYPE_CHECKING:
    from promptops.registry.models import Prompt, PromptVersion

ORDER = (
    "tighten-format+counter-examples",
    "tighten-format",
    "counter-examples",
    "critique-and-edit",
    "apply-notes",
)
HEURISTIC_BONUS = {
    "tighten-format+counter-examples": 0.6,
    "tighten-format": 0.5,
    "counter-examples": 0.3,
    "critique-and-edit": 0.2,
    "apply-notes": 0.1,
}
LOW_SCORE = 2.0
MAX_NOTES = 20
MAX_COUNTER_EXAMPLES = 3
MAX_AUDIT_DIFF = 8000


# --- what refine returns (the router maps it to PromptRefineResult) --------------------------------------------


@dataclass(frozen=True)
class Considered:
    """One strategy's outcome: whether it proposed a candidate, why (not), and how the candidate scored."""

    strategy: str
    applied: bool
    note: str
    score: float | None
    pass_rate: float | None


@dataclass(frozen=True)
class Refined:
    """The saved refined version, why it was chosen, and what changed."""

    prompt_id: str
    version_id: str | None  # None: a dry run, nothing saved
    parent_id: str
    version: int | None
    prompt: str
    rationale: str
    diff: str
    strategy: str
    scores: dict[str, Any] | None
    model_config: dict[str, Any]
    deltas: dict[str, Any]
    candidates: tuple[Considered, ...]
    feedback_used: dict[str, Any]


# --- the flow -------------------------------------------------------------------------------------------------


@dataclass
class Evidence:
    notes: list[str] = field(default_factory=list)
    low_ratings: int = 0
    failures: list[tuple[dict[str, Any], str | None, str | None]] = field(default_factory=list)
    cases: list[quick.QuickCase] = field(default_factory=list)
    scorers: list[ScorerSpec] = field(default_factory=list)
    source: str = ""  # where the test cases came from

    @property
    def notes_text(self) -> str:
        return "\n".join(dict.fromkeys(n.strip() for n in self.notes if n.strip()))[:4000]

    @property
    def used(self) -> dict[str, int]:
        return {
            "notes": len([n for n in self.notes if n.strip()]),
            "lowRatings": self.low_ratings,
            "failedCases": len(self.failures),
            "testCases": len(self.cases),
        }


@dataclass(frozen=True)
class Choice:
    """Every strategy's proposal, the winner and why it won, and the parent's score (None: no test cases)."""

    proposals: list[st.Proposal]
    best: st.Proposal
    how: str
    parent_result: quick.QuickResult | None


@dataclass(frozen=True)
class InlinePrompt:
    """Stands for the registry prompt when the request sends raw ``text``: nothing is saved on it."""

    id: str
    name: str = "inline"


@dataclass(frozen=True)
class Subject:
    """The version being refined and what every strategy needs to know about it."""

    prompt: Prompt | InlinePrompt
    parent: PromptVersion
    model_target: dict[str, Any]  # the model that answers and edits
    variables: list[dict[str, Any]]
    required: set[str]
    includes: tuple[str, ...]
    labels: list[str]
    params: dict[str, Any]  # the parent's model parameters
    allowed: frozenset[str]  # the strategies asked for
    inline: bool = False  # raw text from the request: not in the registry, proposed only

    @property
    def template(self) -> str:
        return self.parent.template or ""

    def model_config(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**(self.parent.model_config_ or {}), "params": params}

    def params_of(self, proposal: st.Proposal) -> dict[str, Any]:
        return {**self.params, **(proposal.params or {})}

    @property
    def run_prompt_id(self) -> str | None:
        """The registry prompt the model calls are recorded on (None for raw text)."""
        return None if self.inline else self.prompt.id

    @property
    def run_version_id(self) -> str | None:
        return None if self.inline else self.parent.id

    @property
    def parent_label(self) -> str:
        return (
            f"{self.prompt.name} (your text)" if self.inline else f"{self.prompt.name} v{self.parent.version}"
        )


async def refine(runtime: Runtime, principal: Principal, body: PromptRefineRequest) -> Refined:
    """Build candidates, pick the best (evaluation when cases exist, else heuristics), save it as a version.

    Load (short read transactions: the version, the feedback and test cases), then the model calls (the
    parent's and the candidates' quick evaluation, the critique), then one write transaction that saves the
    winner with its ``PromptRefined`` event.
    """
    prompt: Prompt | InlinePrompt
    if body.text is not None:
        prompt, parent = _inline(body.text)
    else:
        assert body.prompt is not None  # the schema asks for one of them
        prompt, parent = await load_version(runtime, principal, body.prompt)
    await templates.preanalyze(parent.kind, parent.template, parent.messages)  # off the event loop
    await templates.preanalyze("text", parent.template, None)  # what _primary() analyses
    if body.accept is not None:
        return await _save_accepted(runtime, principal, prompt, parent, body)
    evidence = await _evidence(runtime, principal, parent, body)
    if not evidence.notes_text and not evidence.failures and not evidence.cases:
        raise ValidationProblem(
            "Nothing to refine from: give 'feedback' notes, 'useFeedback' (the version has no notes or low "
            "ratings), an 'evalRunId' with results for this version, or a 'dataset'",
            code="no_feedback",
        )
    subject = await _subject(runtime, principal, prompt, parent, body, evidence)
    # The parent's score first: it tells which cases fail (counter-examples) when only a dataset is given.
    parent_result = await _score_parent(runtime, principal, subject, evidence)
    proposals = await _proposals(runtime, principal, subject, evidence)
    live = _drop_repeats(subject, proposals)
    if parent_result is not None:
        best, how = await _choose_by_evaluation(runtime, principal, subject, evidence, live)
    else:
        best, how = await _choose_by_heuristics(runtime, principal, subject, live)
    choice = Choice(proposals, best, how, parent_result)
    if body.dry_run or subject.inline:
        return await _preview(subject, evidence, choice)
    return await _save(runtime, principal, subject, evidence, choice)


def _inline(text: str) -> tuple[InlinePrompt, PromptVersion]:
    """Raw template text (an editor selection) as an unsaved prompt and version: refined, never saved."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return InlinePrompt(id=f"inline:{digest}"), registry.unsaved_version("text", text)


async def _save_accepted(
    runtime: Runtime,
    principal: Principal,
    prompt: Prompt | InlinePrompt,
    parent: PromptVersion,
    body: PromptRefineRequest,
) -> Refined:
    """Save a proposal a reviewer saw in a dry run (and may have edited): no model call, same lineage and event."""
    assert body.accept is not None
    accepted = st.Proposal(
        body.accept.strategy, body.accept.template, body.accept.params, note="reviewed before saving"
    )
    evidence = Evidence(notes=[body.feedback] if body.feedback.strip() else [], source="a reviewed proposal")
    subject = await _subject(runtime, principal, prompt, parent, body, evidence)
    choice = Choice([accepted], accepted, "accepted by the reviewer after a dry run", None)
    return await _save(runtime, principal, subject, evidence, choice)


async def _preview(subject: Subject, evidence: Evidence, choice: Choice) -> Refined:
    """What :func:`_save` would save, diffed against the parent, with nothing written (``dryRun``)."""
    parent, best = subject.parent, choice.best
    fields = _version_fields(subject, evidence, best)
    proposed = {
        **registry.version_fields(parent),  # variables and response schema are the parent's
        "kind": fields.kind,
        "template": fields.template,
        "messages": None,
        "modelConfig": fields.model_config_.model_dump(exclude_none=True),
        "metadata": fields.metadata,
    }
    name = subject.prompt.name
    changes = await template_pool.diff_versions(
        registry.version_fields(parent), proposed, subject.parent_label, f"{name} (proposed)"
    )
    return Refined(
        prompt_id=subject.prompt.id,
        version_id=None,
        parent_id=parent.id,
        version=None,
        prompt=best.text,
        rationale=_rationale(subject, evidence, choice),
        diff=changes["template"],
        strategy=best.strategy,
        scores=_scores(subject, evidence, choice),
        model_config=proposed["modelConfig"] or {},
        deltas={
            "strategy": best.strategy,
            "modelConfig": changes["modelConfig"],
            "variables": changes["variables"],
        },
        candidates=tuple(
            Considered(p.strategy, p.applied, p.note, p.score, p.pass_rate) for p in choice.proposals
        ),
        feedback_used=evidence.used,
    )


# --- load -----------------------------------------------------------------------------------------------------


async def _evidence(
    runtime: Runtime, principal: Principal, parent: PromptVersion, body: PromptRefineRequest
) -> Evidence:
    """The notes, low ratings, failed cases and test cases the request points at (one read transaction)."""
    evidence = Evidence(notes=[body.feedback] if body.feedback.strip() else [])
    async with runtime.db.transaction() as session:
        if body.use_feedback:
            await _add_feedback(session, principal, parent, evidence)
        if body.eval_run_id:
            await _add_run_results(session, principal, parent, body, evidence)
    if body.dataset and not evidence.cases:
        loaded = await load_dataset_cases(runtime, principal, body.dataset, body.max_cases, parent)
        evidence.cases = loaded.cases
        evidence.source = f"dataset {body.dataset} ({len(loaded.cases)} case(s))"
    if body.scorers or not evidence.scorers:
        evidence.scorers = pick_scorers(body.scorers, evidence.cases) if evidence.cases else []
    return evidence


async def _add_feedback(
    session: AsyncSession, principal: Principal, parent: PromptVersion, evidence: Evidence
) -> None:
    """The version's recent feedback notes and its low ratings (with their notes)."""
    noted = await feedback_service.recent_feedback(
        session, principal, parent.id, limit=MAX_NOTES, with_notes=True
    )
    evidence.notes.extend(f.notes for f in noted)
    low = await feedback_service.recent_feedback(
        session, principal, parent.id, limit=200, max_score=LOW_SCORE
    )
    evidence.low_ratings = len(low)
    evidence.notes.extend(f.notes for f in low if f.notes and f.notes not in evidence.notes)


async def _add_run_results(
    session: AsyncSession,
    principal: Principal,
    parent: PromptVersion,
    body: PromptRefineRequest,
    evidence: Evidence,
) -> None:
    """An evaluation's results for the version: failed cases are counter-examples, failed first the test set."""
    assert body.eval_run_id is not None
    run = await evals.get_run(session, principal, body.eval_run_id)
    results, _ = await evals.list_results(session, principal, run.id, version_id=parent.id, limit=500)
    if not results:
        raise ValidationProblem(
            f"Evaluation {run.id} has no results for version {parent.id}", code="no_results_for_version"
        )
    by_id = await datasets.cases_by_id(session, principal, (r.case_id for r in results))
    failed = [r for r in results if not r.passed and r.case_id in by_id]
    passed = [r for r in results if r.passed and r.case_id in by_id]
    for r in failed:
        case = by_id[r.case_id]
        evidence.failures.append((case_variables(case, parent), case.expected, r.output))
    evidence.cases = [
        quick.QuickCase(case_variables(by_id[r.case_id], parent), by_id[r.case_id].expected, r.case_key)
        for r in (failed + passed)[: body.max_cases]
    ]
    evidence.scorers = list(run.spec_model.scorers)
    evidence.source = f"evaluation {run.id} ({len(failed)} failed of {len(results)})"


async def _subject(
    runtime: Runtime,
    principal: Principal,
    prompt: Prompt | InlinePrompt,
    parent: PromptVersion,
    body: PromptRefineRequest,
    evidence: Evidence,
) -> Subject:
    # The model that answers (and edits): the request's, else the parent's own; each version brings its params.
    model_target = body.model.model_dump() if body.model else {**evals.version_target(parent), "params": {}}
    await evals.check_targets(runtime.caller, principal, [model_target])
    variables = list(parent.variables)
    return Subject(
        prompt=prompt,
        parent=parent,
        model_target=model_target,
        variables=variables,
        required=required_names(variables),
        includes=tuple((await templates.analyze_async("text", parent.template or "", None, [])).includes),
        labels=labels_for(parent, evidence.cases),
        params=dict((parent.model_config_ or {}).get("params") or {}),
        allowed=frozenset(body.strategies or ORDER[1:]),
        inline=body.text is not None,
    )


async def _score_parent(
    runtime: Runtime, principal: Principal, subject: Subject, evidence: Evidence
) -> quick.QuickResult | None:
    """The parent on the test cases (None without cases); its failures become the counter-examples when the
    request brought none."""
    if not (evidence.cases and evidence.scorers):
        return None
    result = await quick.evaluate_version(
        runtime,
        principal,
        subject.parent,
        target_with_params(subject.model_target, subject.params),
        evidence.cases,
        evidence.scorers,
        prompt_id=subject.run_prompt_id,
        version_id=subject.run_version_id,
        concurrency=EVAL_CONCURRENCY,
    )
    if not evidence.failures:
        evidence.failures = [
            (case.variables, case.expected, outcome.output)
            for case, outcome in zip(evidence.cases, result.outcomes, strict=True)
            if not outcome.passed
        ]
    return result


# --- propose --------------------------------------------------------------------------------------------------


async def _proposals(
    runtime: Runtime, principal: Principal, subject: Subject, evidence: Evidence
) -> list[st.Proposal]:
    """One proposal per strategy asked for, in :data:`ORDER` (a strategy that does not apply says why)."""
    notes = evidence.notes_text
    proposals = _format_and_examples(subject, evidence, notes)
    if "critique-and-edit" in subject.allowed:
        proposals.append(await _critique(runtime, principal, subject, evidence, notes))
    if "apply-notes" in subject.allowed:
        applied = st.apply_notes(subject.template, notes) if notes else None
        proposals.append(
            st.Proposal("apply-notes", applied, None, "notes added as an instruction")
            if applied
            else st.Proposal("apply-notes", None, None, "no notes to apply")
        )
    return proposals


def _format_and_examples(subject: Subject, evidence: Evidence, notes: str) -> list[st.Proposal]:
    """The deterministic strategies: ``tighten-format``, ``counter-examples`` and both together."""
    out: list[st.Proposal] = []
    template, allowed = subject.template, subject.allowed
    tightened = st.tighten_format(template, subject.params, notes, labels=subject.labels)
    if "tighten-format" in allowed:
        out.append(
            st.Proposal("tighten-format", None, None, "the notes ask for no output format change")
            if tightened is None
            else st.Proposal(
                "tighten-format",
                tightened.template,
                tightened.params,
                f"format '{tightened.intent}': " + "; ".join(tightened.changes),
            )
        )
    if "counter-examples" not in allowed:
        return out
    counter = [
        Example("", dict(inputs), expected)
        for inputs, expected, _ in evidence.failures
        if expected is not None
    ]
    examples = pick_examples(counter, MAX_COUNTER_EXAMPLES)
    if not examples:
        out.append(st.Proposal("counter-examples", None, None, "no failed cases with an expected answer"))
        return out
    primary = _primary(subject.parent)
    count = len(examples)
    out.append(
        st.Proposal(
            "counter-examples",
            st.with_examples(template, examples, primary),
            None,
            f"added {count} failed case(s) as worked examples",
        )
    )
    if tightened is not None and "tighten-format" in allowed:
        out.append(
            st.Proposal(
                "tighten-format+counter-examples",
                st.with_examples(tightened.template, examples, primary),
                tightened.params,
                f"format '{tightened.intent}' and {count} counter-example(s)",
            )
        )
    return out


def _primary(parent: PromptVersion) -> str | None:
    used = templates.analyze("text", parent.template, None, []).used
    order = [v["name"] for v in parent.variables if v["name"] in used] or list(used)
    return st.primary_variable(parent.template or "") or (order[-1] if order else None)


async def _critique(
    runtime: Runtime, principal: Principal, subject: Subject, evidence: Evidence, notes: str
) -> st.Proposal:
    """``critique-and-edit``: the model reads the prompt, the notes and failing cases and writes a new prompt."""
    template = subject.template
    shown = [
        (" ".join(f"{k}={v}" for k, v in inputs.items()), expected, actual)
        for inputs, expected, actual in evidence.failures
    ]
    edited, reason = await ask_rewrite(
        runtime,
        principal,
        subject.model_target,
        st.critique_prompt(template, notes, shown),
        start=template,
        unchanged="the model returned the prompt unchanged",
        variables=subject.variables,
        required=subject.required,
        includes=subject.includes,
        max_tokens=min(400, 64 + 2 * len(template) // 3),
        prompt_id=subject.run_prompt_id,
        version_id=subject.run_version_id,
    )
    if edited is None:
        return st.Proposal("critique-and-edit", None, None, f"discarded: {reason}")
    label = evals.target_label(subject.model_target)
    return st.Proposal("critique-and-edit", edited, None, f"rewritten by {label}")


def _drop_repeats(subject: Subject, proposals: list[st.Proposal]) -> list[st.Proposal]:
    """Drop candidates identical to the parent or to each other; the live ones (422 when none is left)."""
    seen = {(st.normalized(subject.template), repr(sorted(subject.params.items())))}
    for proposal in proposals:
        if proposal.template is None:
            continue
        key = (st.normalized(proposal.template), repr(sorted((proposal.params or subject.params).items())))
        if key in seen:
            proposal.note += " (no change; skipped)"
            proposal.template = None
            continue
        seen.add(key)
    live = [p for p in proposals if p.applied]
    if not live:
        raise ValidationProblem(
            "No strategy could improve the prompt from this feedback: "
            + "; ".join(f"{p.strategy}: {p.note}" for p in proposals),
            code="nothing_to_refine",
        )
    return live


# --- choose ---------------------------------------------------------------------------------------------------


async def _choose_by_evaluation(
    runtime: Runtime, principal: Principal, subject: Subject, evidence: Evidence, live: list[st.Proposal]
) -> tuple[st.Proposal, str]:
    """Every candidate on the parent's test cases with the same scorers: the best mean score wins."""
    for proposal in live:
        params = subject.params_of(proposal)
        candidate = registry.unsaved_version(
            "text",
            proposal.template,
            variables=subject.variables,
            response_schema=subject.parent.response_schema,
            model_config=subject.model_config(params),
        )
        proposal.score, proposal.pass_rate = await score_proposal(
            runtime,
            principal,
            candidate,
            target_with_params(subject.model_target, params),
            evidence.cases,
            evidence.scorers,
            prompt_id=subject.run_prompt_id,
        )
    best = max(live, key=lambda p: (p.score or 0.0, p.pass_rate or 0.0, -ORDER.index(p.strategy)))
    how = (
        f"chosen by a quick evaluation on {len(evidence.cases)} case(s) from {evidence.source} with "
        f"{', '.join(s.name or s.type for s in evidence.scorers)} on {evals.target_label(subject.model_target)}"
    )
    return best, how


async def _choose_by_heuristics(
    runtime: Runtime, principal: Principal, subject: Subject, live: list[st.Proposal]
) -> tuple[st.Proposal, str]:
    """No test cases: the strategy's heuristic rank plus the lint-based quality (one read transaction)."""
    parent = subject.parent
    async with runtime.db.transaction() as session:
        for proposal in live:
            findings = await registry.lint_body(
                session,
                principal,
                kind="text",
                template=proposal.template,
                messages=None,
                variables=subject.variables,
                model_config=subject.model_config(subject.params_of(proposal)),
                metadata=parent.metadata_,
                response_schema=parent.response_schema,
            )
            proposal.rank = HEURISTIC_BONUS[proposal.strategy] + quality(
                proposal.text, [f.to_dict() for f in findings]
            )
    best = max(live, key=lambda p: (p.rank, -ORDER.index(p.strategy)))
    return best, "chosen by heuristics (format requests first) and lint quality: no test cases to evaluate on"


# --- save -----------------------------------------------------------------------------------------------------


async def _save(
    runtime: Runtime,
    principal: Principal,
    subject: Subject,
    evidence: Evidence,
    choice: Choice,
) -> Refined:
    """One write transaction: the winner as a new version (lineage: the parent) and its ``PromptRefined``."""
    prompt, parent = subject.prompt, subject.parent
    best = choice.best
    scores = _scores(subject, evidence, choice)
    rationale = _rationale(subject, evidence, choice)
    async with runtime.db.transaction(write=True) as session:
        saved_prompt, version = await registry.create_version(
            session, principal, prompt.id, _version_fields(subject, evidence, best)
        )
        a_name, b_name = f"{prompt.name} v{parent.version}", f"{prompt.name} v{version.version}"
        changes = await template_pool.diff_versions(
            registry.version_fields(parent), registry.version_fields(version), a_name, b_name
        )
        deltas = {
            "strategy": best.strategy,
            "template": changes["template"][:MAX_AUDIT_DIFF],
            "modelConfig": changes["modelConfig"],
            "variables": changes["variables"],
        }
        await _record(session, principal, subject, evidence, version, deltas, scores)
        return Refined(
            prompt_id=saved_prompt.id,
            version_id=version.id,
            parent_id=parent.id,
            version=version.version,
            prompt=version.template or "",
            rationale=rationale,
            diff=changes["template"],
            strategy=best.strategy,
            scores=scores,
            model_config=version.model_config_ or {},
            deltas=deltas,
            candidates=tuple(
                Considered(p.strategy, p.applied, p.note, p.score, p.pass_rate) for p in choice.proposals
            ),
            feedback_used=evidence.used,
        )


async def _record(
    session: AsyncSession,
    principal: Principal,
    subject: Subject,
    evidence: Evidence,
    version: PromptVersion,
    deltas: dict[str, Any],
    scores: dict[str, Any] | None,
) -> None:
    await audit.record(
        session,
        principal,
        "PromptRefined",
        prompt_id=subject.prompt.id,
        data={
            "promptId": subject.prompt.id,
            "parentId": subject.parent.id,
            "versionId": version.id,
            "version": version.version,
            "user": principal.name,
            "feedback": evidence.notes_text[:2000],
            "deltas": deltas,
            "strategy": deltas["strategy"],
            "scores": scores,
            "timestamp": now_iso(),
        },
    )


def _version_fields(subject: Subject, evidence: Evidence, best: st.Proposal) -> CreateVersionIn:
    parent, notes = subject.parent, evidence.notes_text
    new_params = subject.params_of(best)
    model_config = subject.model_config(new_params)
    if not new_params:
        model_config.pop("params")
    fields = {
        "kind": "text",
        "template": best.text,
        "variables": subject.variables,
        "modelConfig": model_config,
        "responseSchema": parent.response_schema,
        "metadata": {
            **(parent.metadata_ or {}),
            "promptopt": {"refinedFrom": parent.id, "strategy": best.strategy, "feedback": notes[:500]},
        },
        "commitMessage": f"Refined ({best.strategy}) from v{parent.version}: {(notes or evidence.source)[:300]}",
        "source": "refined",
        "parentVersionId": parent.id,
    }
    return CreateVersionIn.model_validate(fields)


def _scores(subject: Subject, evidence: Evidence, choice: Choice) -> dict[str, Any] | None:
    parent_result, best = choice.parent_result, choice.best
    if parent_result is None:
        return None
    return {
        "parent": {"score": round(parent_result.score, 4), "passRate": round(parent_result.pass_rate, 4)},
        "refined": {"score": best.score, "passRate": best.pass_rate},
        "cases": len(evidence.cases),
        "model": evals.target_label(subject.model_target),
    }


def _rationale(subject: Subject, evidence: Evidence, choice: Choice) -> str:
    """What was used, what each strategy did (and scored), and why the winner won."""
    best, parent_result = choice.best, choice.parent_result
    used = evidence.used
    lines = [
        f"Feedback used: {used['notes']} note(s), {used['lowRatings']} low rating(s), "
        f"{used['failedCases']} failed case(s)."
    ]
    for p in choice.proposals:
        scored = f" [score {p.score:.3f}, pass rate {p.pass_rate:.2f}]" if p.score is not None else ""
        lines.append(f"- {p.strategy}: {p.note}{scored}")
    if parent_result is not None:
        lines.append(
            f"Parent {subject.parent_label}: score {parent_result.score:.3f}, pass rate {parent_result.pass_rate:.2f}."
        )
        if (best.score or 0.0) <= parent_result.score:
            lines.append(
                "No candidate beat the parent on these cases; the best one is saved as a draft anyway."
            )
    lines.append(f"Winner: {best.strategy}, {choice.how}.")
    return "\n".join(lines)
