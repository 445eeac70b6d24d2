"""Seed 004 ``POST /api/prompt/refine``: a prompt version + feedback -> an improved version, saved with lineage.

What feedback is used: the request's ``feedback`` notes; with ``useFeedback`` the version's recent feedback notes
and its low ratings (score <= 2 or thumbs down); with ``evalRunId`` that evaluation's results for the version
(failed cases become counter-examples, all of them the test set); with ``dataset`` its cases as the test set.

Strategies (each proposes one candidate when it applies):

* ``tighten-format`` (deterministic): notes such as "answer with one word", "only the label", "respond in JSON",
  "too long" make the format explicit in the template *and* enforce it through the version's model parameters
  (``temperature`` 0, a small ``max_tokens``, ``stop`` sequences); see
  :func:`promptops.optimize.strategies.tighten_format`.
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

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from promptops.auth.principal import Principal
from promptops.datasets.binding import case_variables
from promptops.datasets.models import DatasetCase
from promptops.errors import ValidationProblem
from promptops.evals import quick
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.feedback import service as feedback_service
from promptops.governance import audit
from promptops.optimize import strategies as st
from promptops.optimize.generate import (
    ask_model,
    load_dataset_cases,
    load_version,
    now_iso,
    pick_scorers,
    quality,
    required_names,
    target_with_params,
)
from promptops.optimize.schemas import PromptRefineRequest, PromptRefineResult, RefineCandidateOut
from promptops.registry import service as registry
from promptops.registry.models import PromptVersion
from promptops.registry.schemas import CreateVersionIn
from promptops.runtime import Runtime
from promptops.templates import engine as templates
from promptops.templates import pool as template_pool

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
EVAL_CONCURRENCY = 4
MAX_AUDIT_DIFF = 8000


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


@dataclass
class Proposal:
    strategy: str
    template: str | None
    params: dict[str, Any] | None
    note: str
    score: float | None = None
    pass_rate: float | None = None
    rank: float = 0.0

    @property
    def applied(self) -> bool:
        return self.template is not None


async def _evidence(
    runtime: Runtime, principal: Principal, parent: PromptVersion, body: PromptRefineRequest
) -> Evidence:
    evidence = Evidence(notes=[body.feedback] if body.feedback.strip() else [])
    async with runtime.db.transaction() as session:
        if body.use_feedback:
            noted = await feedback_service.recent_feedback(
                session, principal, parent.id, limit=MAX_NOTES, with_notes=True
            )
            evidence.notes.extend(f.notes for f in noted)
            low = await feedback_service.recent_feedback(
                session, principal, parent.id, limit=200, max_score=LOW_SCORE
            )
            evidence.low_ratings = len(low)
            evidence.notes.extend(f.notes for f in low if f.notes and f.notes not in evidence.notes)
        if body.eval_run_id:
            run = await evals.get_run(session, principal, body.eval_run_id)
            results, _ = await evals.list_results(session, principal, run.id, version_id=parent.id, limit=500)
            if not results:
                raise ValidationProblem(
                    f"Evaluation {run.id} has no results for version {parent.id}",
                    code="no_results_for_version",
                )
            case_ids = list({r.case_id for r in results})
            rows = (
                await session.execute(
                    select(DatasetCase).where(
                        DatasetCase.id.in_(case_ids), DatasetCase.project_id == principal.project_id
                    )
                )
            ).scalars()
            by_id = {c.id: c for c in rows}
            failed = [r for r in results if not r.passed and r.case_id in by_id]
            passed = [r for r in results if r.passed and r.case_id in by_id]
            for r in failed:
                case = by_id[r.case_id]
                evidence.failures.append((case_variables(case, parent), case.expected, r.output))
            ordered = failed + passed
            evidence.cases = [
                quick.QuickCase(
                    case_variables(by_id[r.case_id], parent), by_id[r.case_id].expected, r.case_key
                )
                for r in ordered[: body.max_cases]
            ]
            evidence.scorers = [ScorerSpec.model_validate(s) for s in run.spec.get("scorers") or []]
            evidence.source = f"evaluation {run.id} ({len(failed)} failed of {len(results)})"
    if body.dataset and not evidence.cases:
        loaded = await load_dataset_cases(runtime, principal, body.dataset, body.max_cases, parent)
        evidence.cases = loaded.cases
        evidence.source = f"dataset {body.dataset} ({len(loaded.cases)} case(s))"
    if body.scorers or not evidence.scorers:
        evidence.scorers = pick_scorers(body.scorers, evidence.cases) if evidence.cases else []
    return evidence


def _labels(parent: PromptVersion, evidence: Evidence) -> list[str]:
    labels = st.infer_labels(c.expected for c in evidence.cases)
    if not labels:
        meta = (parent.metadata_ or {}).get("labels")
        if isinstance(meta, list):
            labels = [str(x) for x in meta if isinstance(x, str | int)][:10]
    return labels


def _primary(parent: PromptVersion) -> str | None:
    used = templates.analyze("text", parent.template, None, []).used
    order = [v["name"] for v in parent.variables if v["name"] in used] or list(used)
    return st._primary_variable(parent.template or "") or (order[-1] if order else None)


async def refine(runtime: Runtime, principal: Principal, body: PromptRefineRequest) -> PromptRefineResult:
    """Build candidates, pick the best (evaluation when cases exist, else heuristics), save it as a version."""
    prompt, parent = await load_version(runtime, principal, body.prompt)
    await templates.preanalyze(parent.kind, parent.template, parent.messages)  # off the event loop
    await templates.preanalyze("text", parent.template, None)  # what _primary() analyses
    evidence = await _evidence(runtime, principal, parent, body)
    notes = evidence.notes_text
    if not notes and not evidence.failures and not evidence.cases:
        raise ValidationProblem(
            "Nothing to refine from: give 'feedback' notes, 'useFeedback' (the version has no notes or low "
            "ratings), an 'evalRunId' with results for this version, or a 'dataset'",
            code="no_feedback",
        )
    # The model that answers (and edits): the request's, else the parent's own; each version brings its params.
    model_target = body.model.model_dump() if body.model else {**evals.version_target(parent), "params": {}}
    await evals.check_targets(runtime.caller, principal, [model_target])
    allowed = set(body.strategies or ORDER[1:])
    template = parent.template or ""
    parent_params = dict((parent.model_config_ or {}).get("params") or {})
    variables = list(parent.variables)
    required = required_names(variables)
    includes = (await templates.analyze_async("text", template, None, [])).includes
    labels = _labels(parent, evidence)

    # The parent's score first: it tells which cases fail (counter-examples) when only a dataset is given.
    parent_result: quick.QuickResult | None = None
    if evidence.cases and evidence.scorers:
        parent_result = await quick.evaluate_version(
            runtime,
            principal,
            parent,
            target_with_params(model_target, parent_params),
            evidence.cases,
            evidence.scorers,
            prompt_id=prompt.id,
            version_id=parent.id,
            concurrency=EVAL_CONCURRENCY,
        )
        if not evidence.failures:
            evidence.failures = [
                (case.variables, case.expected, outcome.output)
                for case, outcome in zip(evidence.cases, parent_result.outcomes, strict=True)
                if not outcome.passed
            ]

    proposals: list[Proposal] = []
    tightened = st.tighten_format(template, parent_params, notes, labels=labels)
    if "tighten-format" in allowed:
        if tightened is None:
            proposals.append(
                Proposal("tighten-format", None, None, "the notes ask for no output format change")
            )
        else:
            proposals.append(
                Proposal(
                    "tighten-format",
                    tightened.template,
                    tightened.params,
                    f"format '{tightened.intent}': " + "; ".join(tightened.changes),
                )
            )
    counter = [
        st.Example({k: v for k, v in inputs.items()}, expected)
        for inputs, expected, _ in evidence.failures
        if expected is not None
    ]
    examples = st.pick_examples(counter, MAX_COUNTER_EXAMPLES)
    primary = _primary(parent)
    if "counter-examples" in allowed:
        if not examples:
            proposals.append(
                Proposal("counter-examples", None, None, "no failed cases with an expected answer")
            )
        else:
            proposals.append(
                Proposal(
                    "counter-examples",
                    st.with_examples(template, examples, primary),
                    None,
                    f"added {len(examples)} failed case(s) as worked examples",
                )
            )
            if tightened is not None and "tighten-format" in allowed:
                proposals.append(
                    Proposal(
                        "tighten-format+counter-examples",
                        st.with_examples(tightened.template, examples, primary),
                        tightened.params,
                        f"format '{tightened.intent}' and {len(examples)} counter-example(s)",
                    )
                )
    if "critique-and-edit" in allowed:
        shown = [
            (" ".join(f"{k}={v}" for k, v in inputs.items()), expected, actual)
            for inputs, expected, actual in evidence.failures
        ]
        budget = min(400, 64 + 2 * len(template) // 3)
        text, error = await ask_model(
            runtime,
            principal,
            model_target,
            st.critique_prompt(template, notes, shown),
            max_tokens=budget,
            prompt_id=prompt.id,
            version_id=parent.id,
        )
        edited = st.extract_prompt(text)
        reason = (
            f"model call failed ({error})"
            if error
            else "the model returned nothing"
            if edited is None
            else st.check_candidate(edited, variables, required, includes)
        )
        if reason is None and edited is not None and st.normalized(edited) == st.normalized(template):
            reason = "the model returned the prompt unchanged"
        proposals.append(
            Proposal("critique-and-edit", None, None, f"discarded: {reason}")
            if reason
            else Proposal(
                "critique-and-edit", edited, None, f"rewritten by {evals.target_label(model_target)}"
            )
        )
    if "apply-notes" in allowed:
        applied = st.apply_notes(template, notes) if notes else None
        proposals.append(
            Proposal("apply-notes", applied, None, "notes added as an instruction")
            if applied
            else Proposal("apply-notes", None, None, "no notes to apply")
        )
    # Drop candidates identical to the parent or to each other.
    seen = {(st.normalized(template), repr(sorted(parent_params.items())))}
    for proposal in proposals:
        if proposal.template is None:
            continue
        key = (st.normalized(proposal.template), repr(sorted((proposal.params or parent_params).items())))
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

    # Choose.
    order = {name: i for i, name in enumerate(ORDER)}
    if parent_result is not None:
        for proposal in live:
            params = {**parent_params, **(proposal.params or {})}
            candidate = quick.unsaved_version(
                "text",
                proposal.template,
                variables=variables,
                response_schema=parent.response_schema,
                model_config={**(parent.model_config_ or {}), "params": params},
            )
            result = await quick.evaluate_version(
                runtime,
                principal,
                candidate,
                target_with_params(model_target, params),
                evidence.cases,
                evidence.scorers,
                prompt_id=prompt.id,
                concurrency=EVAL_CONCURRENCY,
            )
            proposal.score, proposal.pass_rate = round(result.score, 4), round(result.pass_rate, 4)
        best = max(live, key=lambda p: (p.score or 0.0, p.pass_rate or 0.0, -order[p.strategy]))
        how = (
            f"chosen by a quick evaluation on {len(evidence.cases)} case(s) from {evidence.source} with "
            f"{', '.join(s.name or s.type for s in evidence.scorers)} on {evals.target_label(model_target)}"
        )
    else:
        async with runtime.db.transaction() as session:
            for proposal in live:
                params = {**parent_params, **(proposal.params or {})}
                findings = await registry.lint_body(
                    session,
                    principal,
                    kind="text",
                    template=proposal.template,
                    messages=None,
                    variables=variables,
                    model_config={**(parent.model_config_ or {}), "params": params},
                    metadata=parent.metadata_,
                    response_schema=parent.response_schema,
                )
                proposal.rank = HEURISTIC_BONUS[proposal.strategy] + quality(
                    proposal.template or "", [f.to_dict() for f in findings]
                )
        best = max(live, key=lambda p: (p.rank, -order[p.strategy]))
        how = "chosen by heuristics (format requests first) and lint quality: no test cases to evaluate on"

    # Save.
    assert best.template is not None
    new_params = {**parent_params, **(best.params or {})}
    model_config = {**(parent.model_config_ or {}), "params": new_params}
    if not new_params:
        model_config.pop("params")
    fields = {
        "kind": "text",
        "template": best.template,
        "variables": variables,
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
    scores = (
        {
            "parent": {"score": round(parent_result.score, 4), "passRate": round(parent_result.pass_rate, 4)},
            "refined": {"score": best.score, "passRate": best.pass_rate},
            "cases": len(evidence.cases),
            "model": evals.target_label(model_target),
        }
        if parent_result is not None
        else None
    )
    used = {
        "notes": len([n for n in evidence.notes if n.strip()]),
        "lowRatings": evidence.low_ratings,
        "failedCases": len(evidence.failures),
        "testCases": len(evidence.cases),
    }
    lines = [
        f"Feedback used: {used['notes']} note(s), {used['lowRatings']} low rating(s), "
        f"{used['failedCases']} failed case(s)."
    ]
    for p in proposals:
        scored = f" [score {p.score:.3f}, pass rate {p.pass_rate:.2f}]" if p.score is not None else ""
        lines.append(f"- {p.strategy}: {p.note}{scored}")
    if parent_result is not None:
        lines.append(
            f"Parent v{parent.version}: score {parent_result.score:.3f}, pass rate {parent_result.pass_rate:.2f}."
        )
        if (best.score or 0.0) <= parent_result.score:
            lines.append(
                "No candidate beat the parent on these cases; the best one is saved as a draft anyway."
            )
    lines.append(f"Winner: {best.strategy}, {how}.")
    rationale = "\n".join(lines)
    async with runtime.db.transaction(write=True) as session:
        saved_prompt, version = await registry.create_version(
            session, principal, prompt.id, CreateVersionIn.model_validate(fields)
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
        await audit.record(
            session,
            principal,
            "PromptRefined",
            prompt_id=prompt.id,
            data={
                "promptId": prompt.id,
                "parentId": parent.id,
                "versionId": version.id,
                "version": version.version,
                "user": principal.name,
                "feedback": notes[:2000],
                "deltas": deltas,
                "strategy": best.strategy,
                "scores": scores,
                "timestamp": now_iso(),
            },
        )
        out = PromptRefineResult(
            prompt_id=saved_prompt.id,
            version_id=version.id,
            parent_id=parent.id,
            version=version.version,
            prompt=version.template or "",
            rationale=rationale,
            diff=changes["template"],
            strategy=best.strategy,
            scores=scores,
            model_config_=version.model_config_ or {},
            deltas=deltas,
            candidates=[
                RefineCandidateOut(
                    strategy=p.strategy, applied=p.applied, note=p.note, score=p.score, pass_rate=p.pass_rate
                )
                for p in proposals
            ],
            feedback_used=used,
        )
    return out
