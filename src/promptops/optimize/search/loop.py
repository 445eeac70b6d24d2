"""The optimizer's search loop (APE / OPRO style), independent of storage and of how a prompt is scored.

Round 0 scores the starting prompt (the baseline) on the training and the validation split. Every later round
proposes candidates from the best prompts so far (deterministic operators on the top-k parents, combinations
of them, and optionally an LLM proposer shown the prompts with their scores). When the parents' answers often
cannot be read as a label, the output-format operators (an answer cue, the list of labels, short-answer
parameters) come first, before the costlier few-shot variants.

Candidates are scored by successive halving: each is first scored on a small *screening* subset of the
training split (stratified by label); only the better half of a round, and none clearly worse than the best
prompt so far on that subset, go on to the rest of the training split. The top k by training score are the
next round's parents. The search stops on the budget, after ``patience`` rounds without a better training
score, after ``maxRounds``, when the top k are all perfect, or when nothing new can be proposed. The final
choice is made on the held-out validation split among the top k by training score (as far as the budget
allows, the best always) and the baseline, so a regression is never chosen.

Budget = model calls, counted exactly (evaluation calls and proposer calls). Before a candidate is scored the
search checks that the calls left cover it *and* the validation of the best candidate, which is reserved in
advance. Every state change goes through a :class:`Store` before and after the calls it covers: a candidate's
calls are charged before it is scored and trued up after, so the stored count never falls below the calls
actually made, even across a crash, and a restart never re-scores a stored result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from promptops.optimize.examples import Example
from promptops.optimize.search import mutations
from promptops.optimize.search.mutations import Draft

Split = Literal["screen", "rest", "val"]
PENDING = frozenset({"proposed", "evaluating"})
PERFECT = 1.0 - 1e-9
# A candidate goes on from screening to the whole training split when it is among the better half of its
# round and at most this share of the screening cases worse than the best prompt so far there.
SCREEN_SLACK_CASES = 1
# Parents whose answers are unreadable (no label found) this often get the output-format operators first.
FORMAT_FIRST_UNPARSED = 0.2


@dataclass
class Candidate:
    id: str
    round: int
    seq: int
    strategy: str
    recipe: dict[str, Any]
    draft: Draft
    parent_id: str | None = None
    train_score: float | None = None
    val_score: float | None = None
    calls: int = 0
    # proposed | evaluating | scored | skipped | discarded
    status: str = "proposed"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.draft.size()

    @property
    def scored(self) -> bool:
        return self.status == "scored" and self.train_score is not None

    @property
    def screen_score(self) -> float | None:
        screen = self.details.get("screen")
        return float(screen["score"]) if screen else None

    @property
    def unparsed_rate(self) -> float:
        """Share of training answers in which no label could be read."""
        train = self.details.get("train") or self.details.get("screen") or {}
        total = int(train.get("total") or 0)
        return int(train.get("unparsed") or 0) / total if total else 0.0


@dataclass(frozen=True)
class SplitScore:
    score: float
    calls: int
    passed: int
    total: int
    errors: int
    unparsed: int = 0  # answers in which no label could be read
    # per case, in split order: (passed, score)
    cases: tuple[tuple[bool, float], ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "passed": self.passed,
            "total": self.total,
            "errors": self.errors,
            "unparsed": self.unparsed,
        }


@dataclass(frozen=True)
class Settings:
    budget: int
    top_k: int
    max_rounds: int
    patience: int
    per_round: int
    seed: int
    proposer: str  # deterministic | llm | mixed
    llm_per_round: int
    screen_cost: int  # calls to score one prompt on the screening subset of the training split
    rest_cost: int  # calls to score it on the rest of the training split
    val_cost: int

    @property
    def train_cost(self) -> int:
        return self.screen_cost + self.rest_cost


class Store(Protocol):
    """Where the search keeps its state; every method persists before returning and says whether the
    optimization was asked to stop."""

    calls_used: int

    async def add(self, candidates: Sequence[Candidate], calls: int) -> bool: ...

    async def update(self, candidate: Candidate, calls: int) -> bool: ...

    async def progress(self, report: dict[str, Any]) -> bool: ...


Evaluate = Callable[[Draft, Split], Awaitable[SplitScore]]


class LlmProposer(Protocol):
    async def __call__(
        self, parents: Sequence[Candidate], seen: set[str]
    ) -> list[tuple[Draft | None, str, int]]:
        """Up to ``n`` proposals as (draft or None, discard reason, calls made)."""
        ...


class Cancelled(Exception):
    """The optimization was asked to stop."""


@dataclass
class Outcome:
    baseline: Candidate
    winner: Candidate
    finalists: list[Candidate]
    stop_reason: str


class Search:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        evaluate: Evaluate,
        new_id: Callable[[], str],
        *,
        base: Draft,
        examples: Sequence[Example],
        labels: Sequence[str],
        variables: Sequence[str],
        candidates: Sequence[Candidate],
        report: dict[str, Any],
        llm: LlmProposer | None = None,
    ) -> None:
        self.s = settings
        self.store = store
        self.evaluate = evaluate
        self.new_id = new_id
        self.base = base
        self.examples = list(examples)
        self.by_key = {e.key: e for e in examples}
        self.labels = list(labels)
        self.variables = list(variables)
        self.candidates = list(candidates)
        self.report = dict(report)
        self.llm = llm

    # --- bookkeeping -----------------------------------------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self.s.budget - self.store.calls_used

    def _scored(self) -> list[Candidate]:
        return [c for c in self.candidates if c.scored]

    def _ranked(self) -> list[Candidate]:
        """Scored candidates, best training score first (ties: fewer tokens, then earlier)."""
        return sorted(self._scored(), key=lambda c: (-(c.train_score or 0.0), c.tokens, c.round, c.seq))

    def _reserve(self, extra: int = 0) -> int:
        """Calls kept for the final validation of the best candidate, once there is (or will be) one."""
        contenders = sum(1 for c in self._scored() if c.strategy != "baseline") + extra
        return self.s.val_cost if contenders else 0

    def _affordable(self, cost: int | None = None, extra_calls: int = 0) -> bool:
        """Can ``cost`` more calls (default: screening one candidate and, should it pass, the rest of the
        training split) be spent, after ``extra_calls`` proposer calls, and still leave the final validation
        covered?"""
        cost = self.s.train_cost if cost is None else cost
        return extra_calls + cost + self._reserve(1) <= self.remaining

    def _seq(self) -> int:
        return max((c.seq for c in self.candidates), default=-1) + 1

    def _seen(self) -> set[str]:
        return {c.draft.key() for c in self.candidates}

    async def _progress(self, **fields: Any) -> None:
        self.report.update(fields)
        best = self._ranked()[:1]
        if best:
            self.report["best"] = {"candidateId": best[0].id, "trainScore": best[0].train_score}
        if await self.store.progress(self.report):
            raise Cancelled()

    async def _score(self, candidate: Candidate, split: Split) -> None:
        """Charge the calls, score ``candidate`` on ``split``, store the result and true up the charge."""
        cost = {"screen": self.s.screen_cost, "rest": self.s.rest_cost, "val": self.s.val_cost}[split]
        candidate.details["reserved"] = {"split": split, "calls": cost}
        if split == "screen":
            candidate.status = "evaluating"
        if await self.store.update(candidate, cost):
            raise Cancelled()
        result = await self.evaluate(candidate.draft, split)
        candidate.details.pop("reserved", None)
        candidate.calls += result.calls
        if split == "screen":
            candidate.details["screen"] = result.summary()
            if not self.s.rest_cost:
                self._set_train(candidate, result)
        elif split == "rest":
            self._set_train(
                candidate, _merge(SplitScore(**_split_fields(candidate.details["screen"])), result)
            )
        else:
            candidate.val_score = result.score
            candidate.details["val"] = {**result.summary(), "cases": [[int(p), sc] for p, sc in result.cases]}
        if await self.store.update(candidate, result.calls - cost):
            raise Cancelled()

    @staticmethod
    def _set_train(candidate: Candidate, result: SplitScore) -> None:
        candidate.train_score = result.score
        candidate.details["train"] = result.summary()
        candidate.status = "scored"

    def _recover(self) -> None:
        """After a restart: a candidate caught mid-scoring is scored again (its earlier charge stays)."""
        for candidate in self.candidates:
            reserved = candidate.details.pop("reserved", None)
            if reserved is not None:
                candidate.details["interrupted"] = candidate.details.get("interrupted", 0) + 1
                if reserved["split"] == "screen":
                    candidate.status = "proposed"

    # --- proposing -------------------------------------------------------------------------------------------

    def _deterministic(self, parents: Sequence[Candidate], round_: int) -> list[tuple[str, dict, str | None]]:
        """(strategy, recipe, parent id) in priority order."""
        out: list[tuple[str, dict[str, Any], str | None]] = []
        per_parent = [
            mutations.mutations(
                p.recipe,
                self.examples,
                self.labels,
                seed=self.s.seed,
                attempt=round_,
                format_first=p.unparsed_rate >= FORMAT_FIRST_UNPARSED,
            )
            for p in parents
        ]
        best = parents[0]
        combos = []
        for other in parents[1:]:
            merged = mutations.combine(best.recipe, other.recipe)
            if merged is not None:
                combos.append(("combine", merged, best.id))
        first = [(s, r, best.id) for s, r in per_parent[0]]
        out += first[:2] + combos + first[2:]
        for parent, proposals in zip(parents[1:], per_parent[1:], strict=True):
            out += [(s, r, parent.id) for s, r in proposals]
        return out

    async def _propose(self, round_: int) -> list[Candidate]:
        parents = self._ranked()[: self.s.top_k]
        seen = self._seen()
        fresh: list[Candidate] = []
        calls = 0
        if self.llm is not None and self.s.proposer in ("llm", "mixed"):
            calls = await self._propose_llm(self.llm, parents, seen, fresh, round_)
        usable = [c for c in fresh if c.details.get("status") != "discarded"]
        if self.s.proposer != "llm" or not usable:
            self._propose_deterministic(parents, seen, fresh, round_, room=self.s.per_round - len(usable))
        for candidate in fresh:
            candidate.status = candidate.details.pop("status", "proposed")
        self.candidates += fresh
        # Discarded proposals are stored too (the report lists every candidate) and their calls charged.
        if (fresh or calls) and await self.store.add(fresh, calls):
            raise Cancelled()
        return [c for c in fresh if c.status == "proposed"]

    def _add(
        self,
        fresh: list[Candidate],
        round_: int,
        strategy: str,
        recipe: dict[str, Any],
        draft: Draft,
        parent: str | None,
        calls: int = 0,
        **details: Any,
    ) -> None:
        """A new candidate of this round (not stored yet: :meth:`_propose` stores them all at once)."""
        fresh.append(
            Candidate(
                id=self.new_id(),
                round=round_,
                seq=self._seq() + len(fresh),
                strategy=strategy,
                recipe=recipe,
                draft=draft,
                parent_id=parent,
                calls=calls,
                details=details,
            )
        )

    async def _propose_llm(
        self,
        llm: LlmProposer,
        parents: Sequence[Candidate],
        seen: set[str],
        fresh: list[Candidate],
        round_: int,
    ) -> int:
        """The LLM proposer's candidates (discarded ones too, with the reason); the calls it made."""
        calls = 0
        wanted = self.s.llm_per_round
        # Each proposal is one call; ask only when a resulting candidate could still be scored.
        while wanted > 0 and self._affordable(extra_calls=calls + 1):
            wanted -= 1
            for draft, reason, made in await llm(parents, seen):
                calls += made
                if draft is None:
                    self._add(
                        fresh,
                        round_,
                        "llm",
                        {},
                        self.base,
                        parents[0].id,
                        made,
                        status="discarded",
                        reason=reason,
                    )
                    continue
                seen.add(draft.key())
                self._add(fresh, round_, "llm", {"rewrite": draft.to_json()}, draft, parents[0].id, made)
        return calls

    def _propose_deterministic(
        self, parents: Sequence[Candidate], seen: set[str], fresh: list[Candidate], round_: int, room: int
    ) -> None:
        """Up to ``room`` operator candidates with a recipe and a prompt not tried before."""
        recipes = {mutations.recipe_key(c.recipe) for c in self.candidates}
        for strategy, recipe, parent in self._deterministic(parents, round_):
            if room <= 0:
                break
            key = mutations.recipe_key(recipe)
            if key in recipes:
                continue
            recipes.add(key)
            draft = mutations.build(self.base, recipe, self.by_key, self.labels, self.variables)
            if draft is None or draft.key() in seen:
                continue
            seen.add(draft.key())
            self._add(fresh, round_, strategy, recipe, draft, parent)
            room -= 1

    # --- stopping --------------------------------------------------------------------------------------------

    def _best_until(self, round_: int) -> float:
        return max((c.train_score or 0.0 for c in self._scored() if c.round <= round_), default=0.0)

    def _stop_reason(self, round_: int) -> str | None:
        if round_ >= self.s.max_rounds:
            return "maxRounds"
        if 0 < self.s.patience <= round_ and self._best_until(round_) <= self._best_until(
            round_ - self.s.patience
        ):
            return "plateau"
        if not self._affordable():
            return "budget"
        top = self._ranked()[: self.s.top_k]
        if len(top) >= self.s.top_k and all((c.train_score or 0.0) >= PERFECT for c in top):
            return "perfect"
        return None

    # --- the loop ----------------------------------------------------------------------------------------

    def _promoted(self, screened: Sequence[Candidate]) -> set[str]:
        """Successive halving: the better half of a round's screened candidates (at least one), leaving out any
        clearly worse on the screening subset than the best prompt so far and any that got no screening case
        right (deterministic, so a restart decides the same)."""
        if not self.s.rest_cost:
            return {c.id for c in screened}
        best = max((c.screen_score or 0.0 for c in self._scored()), default=0.0)
        total = max(1, self.s.screen_cost)
        slack = SCREEN_SLACK_CASES / total
        ranked = sorted(screened, key=lambda c: (-(c.screen_score or 0.0), c.tokens, c.seq))
        keep = ranked[: max(1, -(-len(ranked) // 2))]
        # nothing right on the screening cases: not worth the rest of the split, whatever the others did
        return {c.id for c in keep if (c.screen_score or 0.0) >= max(best - slack - 1e-9, 1e-9)}

    async def _skip(self, candidate: Candidate, reason: str) -> None:
        candidate.status = "skipped" if reason == "budget" else "screened"
        candidate.details["reason"] = reason
        if await self.store.update(candidate, 0):
            raise Cancelled()

    async def _run_round(self, round_: int, pending: Sequence[Candidate]) -> None:
        for candidate in pending:
            if candidate.screen_score is not None:
                continue
            if not self._affordable():
                await self._skip(candidate, "budget")
                continue
            await self._score(candidate, "screen")
            await self._progress(round=round_, phase="search")
        screened = [c for c in pending if c.status == "evaluating" and c.screen_score is not None]
        promoted = self._promoted(screened)
        # the best screening scores get the budget first
        for candidate in sorted(screened, key=lambda c: (-(c.screen_score or 0.0), c.tokens, c.seq)):
            if candidate.id not in promoted:
                await self._skip(candidate, "screened out: weaker on the screening cases")
            elif not self._affordable(self.s.rest_cost):
                await self._skip(candidate, "budget")
            else:
                await self._score(candidate, "rest")
                await self._progress(round=round_, phase="search")

    async def run(self) -> Outcome:
        self._recover()
        baseline = next((c for c in self.candidates if c.strategy == "baseline"), None)
        if baseline is None:
            baseline = Candidate(self.new_id(), 0, 0, "baseline", {}, self.base)
            self.candidates.append(baseline)
            if await self.store.add([baseline], 0):
                raise Cancelled()
        if baseline.screen_score is None:
            await self._score(baseline, "screen")
        if not baseline.scored:
            if self.s.rest_cost and not baseline.screen_score:
                # Nothing right on the screening cases: the rest of the split would only confirm it. Its
                # training score is the screening one (the held-out comparison below is on every case).
                self._set_train(baseline, SplitScore(**_split_fields(baseline.details["screen"])))
                baseline.details["train"]["screenOnly"] = True
                if await self.store.update(baseline, 0):
                    raise Cancelled()
            else:
                await self._score(baseline, "rest")
        if baseline.val_score is None:
            await self._score(baseline, "val")
        await self._progress(
            baseline={"trainScore": baseline.train_score, "valScore": baseline.val_score}, phase="search"
        )

        stop = self.report.get("stopReason")
        while self.report.get("phase") != "final":
            round_ = max(c.round for c in self.candidates)
            pending = [c for c in self.candidates if c.round == round_ and c.status in PENDING]
            if not pending:
                stop = self._stop_reason(round_)
                if stop is None:
                    round_ += 1
                    await self._progress(round=round_, phase="search")
                    pending = await self._propose(round_)
                    if not pending:
                        stop = "exhausted" if self._affordable() else "budget"
                if stop is not None:
                    await self._progress(phase="final", stopReason=stop)
                    break
            await self._run_round(round_, pending)

        finalists = [c for c in self._ranked()[: self.s.top_k] if c.strategy != "baseline"]
        for candidate in finalists:
            if candidate.val_score is None and self.s.val_cost <= self.remaining:
                await self._score(candidate, "val")
        contenders = [c for c in finalists if c.val_score is not None] + [baseline]
        winner = min(
            contenders,
            key=lambda c: (-(c.val_score or 0.0), c.tokens, -(c.train_score or 0.0), c.round, c.seq),
        )
        return Outcome(baseline, winner, finalists, str(stop or self.report.get("stopReason") or ""))


def _split_fields(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("score", "passed", "total", "errors", "unparsed") if k in summary} | {
        "calls": 0
    }


def _merge(a: SplitScore, b: SplitScore) -> SplitScore:
    """One split's score from two disjoint parts (screening cases, then the rest)."""
    total = a.total + b.total
    return SplitScore(
        score=(a.score * a.total + b.score * b.total) / total if total else 0.0,
        calls=a.calls + b.calls,
        passed=a.passed + b.passed,
        total=total,
        errors=a.errors + b.errors,
        unparsed=a.unparsed + b.unparsed,
        cases=a.cases + b.cases,
    )
