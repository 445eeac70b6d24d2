"""Drift statistics: a current window of runs against a baseline window, signal by signal.

Pure functions over samples (no database), so the false-positive rate and the power are checked by simulation
in the tests. Every signal needs both a significant test (p below ``alpha``) and an effect at least as large
as its threshold, so a large sample does not flag a shift too small to matter, and a small one does not flag
noise:

==================  =================================================================================  =========
signal              test (p-value)                      statistic (effect)                             threshold
==================  =================================================================================  =========
output_label_chi2   chi-square test of homogeneity      Cramér's V of the 2 x k table                  0.1
output_label_psi    the same chi-square test            population stability index (PSI)               0.2
output_length       two-sample Kolmogorov-Smirnov       KS distance D                                  0.1
refusal_rate        two-proportion z-test               current rate - baseline rate (absolute)        0.02
online_score        Welch's t-test                      current mean - baseline mean (scores in 0-1)   0.05
input_length        two-sample Kolmogorov-Smirnov       KS distance D                                  0.1
input_embedding     permutation test (centroid gap)     cosine distance between the centroids          0.02
latency_change      Mann-Whitney U                      relative change of the median latency          0.25
cost_change         Welch's t-test                      relative change of the mean cost per run       0.25
==================  =================================================================================  =========

Output labels are the answers normalised (first line, lower case, trimmed of punctuation); the label signals
apply only when the answers are labels, i.e. at most 30 distinct values cover 90% of them. Latency and cost
also carry a change point: the hour where the hourly series (baseline + current) splits into two means most
clearly (maximum of the CUSUM), with a permutation p-value.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType

DEFAULT_ALPHA = 0.01
MIN_SAMPLES = 30
MAX_LABELS = 30
LABEL_COVERAGE = 0.9
OTHER = "(other)"
PERMUTATIONS = 500
THRESHOLDS = {
    "output_label_chi2": 0.1,
    "output_label_psi": 0.2,
    "output_length": 0.1,
    "refusal_rate": 0.02,
    "online_score": 0.05,
    "input_length": 0.1,
    "input_embedding": 0.02,
    "latency_change": 0.25,
    "cost_change": 0.25,
}
MAX_LABEL_CHARS = 64
MAX_INPUT_CHARS = 4000
_REFUSAL = re.compile(
    r"\b(?:i\s*(?:am|'m)\s+(?:sorry|unable|not able)|i\s+(?:can(?:not|'t)|won't|will not)\s+"
    r"(?:help|assist|provide|comply|do that|answer|fulfil|fulfill|share|support)|as an ai\b)",
    re.IGNORECASE,
)
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_SPACE = re.compile(r"\s+")


def _sps() -> ModuleType:
    """scipy.stats, imported on first use (slow to import, only drift checks need it here)."""
    from scipy import stats

    return stats


def normalise_label(output: str) -> str:
    """An answer as a label: its first non-empty line, lower case, outer punctuation trimmed."""
    line = next((part for part in output.strip().splitlines() if part.strip()), "")
    return _EDGE.sub("", _SPACE.sub(" ", line.strip().lower()))[:MAX_LABEL_CHARS]


def input_text(value: Any) -> str:
    """A run's input as plain text: the prompt, or the chat messages' text contents joined."""
    if not isinstance(value, dict):
        return ""
    if isinstance(value.get("prompt"), str):
        return str(value["prompt"])[:MAX_INPUT_CHARS]
    parts: list[str] = []
    for message in value.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text")) for p in content if isinstance(p, dict) and p.get("text"))
    return "\n".join(parts)[:MAX_INPUT_CHARS]


def is_refusal(output: str) -> bool:
    return bool(_REFUSAL.search(output[:2000]))


@dataclass(frozen=True)
class RunPoint:
    """What drift reads of one run."""

    run_id: str
    ok: bool
    output: str | None
    input_text: str
    latency_ms: float
    cost_usd: float

    @property
    def label(self) -> str | None:
        return normalise_label(self.output) if self.ok and self.output is not None else None


@dataclass(frozen=True)
class Sample:
    """One window's runs (a bounded sample) and online-evaluation scores (run id, score)."""

    runs: list[RunPoint]
    scores: list[tuple[str, float]] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class HourlySeries:
    """Per-hour means over baseline + current (hours with runs only), for change points."""

    hours: list[datetime]
    latency_ms: list[float]
    cost_usd: list[float]


@dataclass(frozen=True)
class DriftSignal:
    name: str
    statistic: float
    threshold: float
    drifted: bool
    detail: str
    p_value: float | None = None
    baseline_value: float | None = None
    current_value: float | None = None
    change_point_at: datetime | None = None


@dataclass(frozen=True)
class Comparison:
    signals: list[DriftSignal]
    skipped: list[tuple[str, str]]  # (signal, why it was not computed)
    affected: list[str]  # run ids of the current window behind the drifted signals, most telling first


# --- tests -------------------------------------------------------------------------------------------------


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def label_tables(
    baseline: Sequence[str], current: Sequence[str]
) -> tuple[list[str], list[int], list[int]] | None:
    """The label categories (most common first, the rest folded into "(other)") and both windows' counts;
    None when the answers are free text (more than 30 values needed to cover 90% of them)."""
    counts = Counter(baseline) + Counter(current)
    total = sum(counts.values())
    ranked = [label for label, _ in counts.most_common()]
    kept = ranked[:MAX_LABELS]
    if sum(counts[label] for label in kept) < LABEL_COVERAGE * total:
        return None
    if len(kept) < len(ranked):
        kept.append(OTHER)
    index = {label: i for i, label in enumerate(kept)}
    other = index.get(OTHER)

    def tally(values: Sequence[str]) -> list[int]:
        row = [0] * len(kept)
        for value in values:
            position = index.get(value, other)
            if position is not None:
                row[position] += 1
        return row

    return kept, tally(baseline), tally(current)


def chi_square(base: Sequence[int], cur: Sequence[int]) -> tuple[float, float, float]:
    """(chi-square, p-value, Cramér's V) of the homogeneity test on a 2 x k table (empty columns dropped)."""
    columns = [(b, c) for b, c in zip(base, cur, strict=True) if b + c > 0]
    if len(columns) < 2:
        return 0.0, 1.0, 0.0
    table = np.array(columns, dtype=float).T
    statistic, p_value, _, _ = _sps().chi2_contingency(table, correction=False)
    n = table.sum()
    cramers_v = math.sqrt(statistic / n) if n else 0.0  # min(rows, cols) - 1 = 1 for two rows
    return float(statistic), float(p_value), cramers_v


def psi(base: Sequence[int], cur: Sequence[int], epsilon: float = 1e-4) -> float:
    """Population stability index sum((c - b) * ln(c / b)) over the category shares (smoothed by epsilon)."""
    b = np.array(base, dtype=float)
    c = np.array(cur, dtype=float)
    if b.sum() == 0 or c.sum() == 0:
        return 0.0
    bp = np.maximum(b / b.sum(), epsilon)
    cp = np.maximum(c / c.sum(), epsilon)
    return float(np.sum((cp - bp) * np.log(cp / bp)))


def ks(base: Sequence[float], cur: Sequence[float]) -> tuple[float, float]:
    """(KS distance D, p-value) of the two-sample Kolmogorov-Smirnov test."""
    with warnings.catch_warnings():  # the exact method falls back to the asymptotic one with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        result = _sps().ks_2samp(np.asarray(base, dtype=float), np.asarray(cur, dtype=float))
    return float(result.statistic), float(result.pvalue)


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1 when both rates are 0 or 1)."""
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return float(2 * _sps().norm.sf(abs(z)))


def welch(base: Sequence[float], cur: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (1 when both samples are constant and equal)."""
    a = np.asarray(base, dtype=float)
    b = np.asarray(cur, dtype=float)
    if np.ptp(a) <= 1e-12 * max(1.0, abs(a[0])) and np.ptp(b) <= 1e-12 * max(1.0, abs(b[0])):
        return 1.0 if math.isclose(a[0], b[0], rel_tol=1e-9, abs_tol=1e-15) else 0.0
    with (
        warnings.catch_warnings()
    ):  # nearly constant samples: scipy warns of precision loss, p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        return _finite_p(_sps().ttest_ind(a, b, equal_var=False).pvalue)


def mann_whitney(base: Sequence[float], cur: Sequence[float]) -> float:
    a = np.asarray(base, dtype=float)
    b = np.asarray(cur, dtype=float)
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    return _finite_p(_sps().mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _finite_p(value: Any) -> float:
    p = float(value)
    return p if math.isfinite(p) else 1.0


def centroid_shift(
    base: np.ndarray, cur: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0
) -> tuple[float, float]:
    """(cosine distance between the two centroids, permutation p-value of the centroid gap)."""

    def gap(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))

    ca, cb = base.mean(axis=0), cur.mean(axis=0)
    norms = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    distance = 1.0 - float(ca @ cb) / norms if norms else 0.0
    observed = gap(base, cur)
    pooled = np.vstack([base, cur])
    rng = np.random.default_rng(seed)
    n = len(base)
    hits = 0
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        hits += gap(pooled[order[:n]], pooled[order[n:]]) >= observed
    return max(0.0, distance), (hits + 1) / (permutations + 1)


def change_point(
    values: Sequence[float], *, permutations: int = PERMUTATIONS, seed: int = 0
) -> tuple[int, float]:
    """(index where the series' second segment starts, permutation p-value): the split maximising the
    absolute CUSUM of deviations from the mean, tested against the same maximum over shuffled orders."""
    x = np.asarray(values, dtype=float)
    if len(x) < 4 or x.std() == 0:
        return 0, 1.0

    def peak(series: np.ndarray) -> tuple[int, float]:
        cusum = np.cumsum(series - series.mean())[:-1]
        at = int(np.argmax(np.abs(cusum)))
        return at + 1, float(abs(cusum[at]))

    index, observed = peak(x)
    rng = np.random.default_rng(seed)
    hits = sum(peak(rng.permutation(x))[1] >= observed for _ in range(permutations))
    return index, (hits + 1) / (permutations + 1)


# --- the comparison ----------------------------------------------------------------------------------------


def _p(p: float) -> str:
    return "p<0.0001" if p < 0.0001 else f"p={p:.4f}"


def _signal(
    name: str, statistic: float, p_value: float, alpha: float, detail: str, **extra: Any
) -> DriftSignal:
    threshold = THRESHOLDS[name]
    drifted = p_value < alpha and abs(statistic) >= threshold
    return DriftSignal(
        name, round(_finite(statistic), 6), threshold, drifted, f"{detail}; {_p(p_value)}", p_value, **extra
    )


class _Builder:
    def __init__(self, baseline: Sample, current: Sample, alpha: float) -> None:
        self.baseline = baseline
        self.current = current
        self.alpha = alpha
        self.signals: list[DriftSignal] = []
        self.skipped: list[tuple[str, str]] = []
        self.affected: dict[str, list[str]] = {}

    def enough(self, names: Sequence[str], n_base: int, n_cur: int, what: str) -> bool:
        if n_base >= MIN_SAMPLES and n_cur >= MIN_SAMPLES:
            return True
        for name in names:
            self.skipped.append(
                (name, f"needs {MIN_SAMPLES} {what} in each window; baseline {n_base}, current {n_cur}")
            )
        return False

    def labels(self) -> None:
        names = ("output_label_chi2", "output_label_psi")
        base = [label for run in self.baseline.runs if (label := run.label) is not None]
        cur_runs = [run for run in self.current.runs if run.label is not None]
        cur = [run.label or "" for run in cur_runs]
        if not self.enough(names, len(base), len(cur), "answers"):
            return
        tables = label_tables(base, cur)
        if tables is None:
            self.skipped.extend((name, "the answers are free text, not labels") for name in names)
            return
        categories, b, c = tables
        statistic, p_value, cramers_v = chi_square(b, c)
        index = psi(b, c)
        shares = ", ".join(
            f"{label}: {bi / len(base):.0%} -> {ci / len(cur):.0%}"
            for label, bi, ci in sorted(zip(categories, b, c, strict=True), key=lambda t: -abs(t[2] - t[1]))[
                :5
            ]
        )
        self.signals.append(
            _signal("output_label_chi2", cramers_v, p_value, self.alpha, f"chi2={statistic:.1f}; {shares}")
        )
        self.signals.append(
            _signal("output_label_psi", index, p_value, self.alpha, f"PSI={index:.3f}; {shares}")
        )
        if any(s.drifted for s in self.signals[-2:]):
            rising = {
                label
                for label, bi, ci in zip(categories, b, c, strict=True)
                if ci / len(cur) > bi / len(base)
            }
            self.affected["labels"] = [
                run.run_id for run in cur_runs if (run.label if run.label in categories else OTHER) in rising
            ]

    def lengths(self, name: str, base: list[float], cur: list[tuple[str, float]], what: str) -> None:
        if not self.enough([name], len(base), len(cur), what):
            return
        values = [v for _, v in cur]
        distance, p_value = ks(base, values)
        b_median, c_median = float(np.median(base)), float(np.median(values))
        signal = _signal(
            name,
            distance,
            p_value,
            self.alpha,
            f"median length {b_median:.0f} -> {c_median:.0f} characters; D={distance:.3f}",
            baseline_value=b_median,
            current_value=c_median,
        )
        self.signals.append(signal)
        if signal.drifted:  # the current runs furthest from the baseline median first
            self.affected[name] = [rid for rid, v in sorted(cur, key=lambda t: -abs(t[1] - b_median))]

    def refusals(self) -> None:
        base = [run for run in self.baseline.runs if run.ok and run.output is not None]
        cur = [run for run in self.current.runs if run.ok and run.output is not None]
        if not self.enough(["refusal_rate"], len(base), len(cur), "answers"):
            return
        x1 = sum(is_refusal(run.output or "") for run in base)
        refused = [run.run_id for run in cur if is_refusal(run.output or "")]
        r1, r2 = x1 / len(base), len(refused) / len(cur)
        signal = _signal(
            "refusal_rate",
            r2 - r1,
            two_proportions(x1, len(base), len(refused), len(cur)),
            self.alpha,
            f"refusals {r1:.1%} -> {r2:.1%}",
            baseline_value=r1,
            current_value=r2,
        )
        self.signals.append(signal)
        if signal.drifted:
            self.affected["refusal_rate"] = refused

    def scores(self) -> None:
        base = [score for _, score in self.baseline.scores]
        cur = self.current.scores
        if not self.enough(["online_score"], len(base), len(cur), "online-evaluation scores"):
            return
        values = [score for _, score in cur]
        b_mean, c_mean = float(np.mean(base)), float(np.mean(values))
        signal = _signal(
            "online_score",
            c_mean - b_mean,
            welch(base, values),
            self.alpha,
            f"mean online score {b_mean:.3f} -> {c_mean:.3f}",
            baseline_value=b_mean,
            current_value=c_mean,
        )
        self.signals.append(signal)
        if signal.drifted:
            self.affected["online_score"] = [rid for rid, score in sorted(cur, key=lambda t: t[1])]

    def embeddings(self, embed: Callable[[list[str]], np.ndarray] | None, limit: int) -> None:
        name = "input_embedding"
        if embed is None:
            self.skipped.append((name, "no embedder available"))
            return
        base = [run.input_text for run in self.baseline.runs if run.input_text][:limit]
        cur = [run.input_text for run in self.current.runs if run.input_text][:limit]
        if not self.enough([name], len(base), len(cur), "inputs"):
            return
        distance, p_value = centroid_shift(embed(base), embed(cur))
        self.signals.append(
            _signal(name, distance, p_value, self.alpha, f"centroid cosine distance {distance:.4f}")
        )

    def change(self, name: str, hourly: HourlySeries | None) -> None:
        pick: Callable[[RunPoint], float] = (
            (lambda run: run.latency_ms) if name == "latency_change" else (lambda run: run.cost_usd)
        )
        base = [pick(run) for run in self.baseline.runs]
        cur_pairs = [(run.run_id, pick(run)) for run in self.current.runs]
        if not self.enough([name], len(base), len(cur_pairs), "runs"):
            return
        cur = [v for _, v in cur_pairs]
        if name == "latency_change":
            b_center, c_center = float(np.median(base)), float(np.median(cur))
            p_value, what = mann_whitney(base, cur), "median latency"
            text = f"{what} {b_center:.0f} -> {c_center:.0f} ms"
        else:
            b_center, c_center = float(np.mean(base)), float(np.mean(cur))
            p_value, what = welch(base, cur), "mean cost per run"
            text = f"{what} ${b_center:.6f} -> ${c_center:.6f}"
        relative = (c_center - b_center) / b_center if b_center else (0.0 if c_center == 0 else math.inf)
        at: datetime | None = None
        if hourly is not None and len(hourly.hours) >= 4:
            series = hourly.latency_ms if name == "latency_change" else hourly.cost_usd
            index, cp_p = change_point(series)
            if cp_p < self.alpha and 0 < index < len(hourly.hours):
                at = hourly.hours[index]
                text += f"; change point at {at.isoformat()} ({_p(cp_p)})"
        signal = _signal(
            name,
            relative if math.isfinite(relative) else 1e9,
            p_value,
            self.alpha,
            text,
            baseline_value=b_center,
            current_value=c_center,
            change_point_at=at,
        )
        self.signals.append(signal)
        if signal.drifted:
            self.affected[name] = [rid for rid, v in sorted(cur_pairs, key=lambda t: -abs(t[1] - b_center))]


def compare(
    baseline: Sample,
    current: Sample,
    *,
    alpha: float = DEFAULT_ALPHA,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    hourly: HourlySeries | None = None,
    embed_limit: int = 500,
    max_affected: int = 200,
) -> Comparison:
    """Every drift signal of ``current`` against ``baseline`` (see the module docstring for the tests)."""
    builder = _Builder(baseline, current, alpha)
    builder.labels()
    builder.lengths(
        "output_length",
        [float(len(run.output)) for run in baseline.runs if run.ok and run.output is not None],
        [(run.run_id, float(len(run.output))) for run in current.runs if run.ok and run.output is not None],
        "answers",
    )
    builder.refusals()
    builder.scores()
    builder.lengths(
        "input_length",
        [float(len(run.input_text)) for run in baseline.runs],
        [(run.run_id, float(len(run.input_text))) for run in current.runs],
        "inputs",
    )
    builder.embeddings(embed, embed_limit)
    builder.change("latency_change", hourly)
    builder.change("cost_change", hourly)
    # round-robin over the drifted signals' runs so each is represented, without repeats
    affected: list[str] = []
    seen: set[str] = set()
    queues = [list(ids) for ids in builder.affected.values()]
    while queues and len(affected) < max_affected:
        for queue in list(queues):
            while queue and queue[0] in seen:
                queue.pop(0)
            if not queue:
                queues.remove(queue)
                continue
            run_id = queue.pop(0)
            seen.add(run_id)
            affected.append(run_id)
            if len(affected) >= max_affected:
                break
    return Comparison(builder.signals, builder.skipped, affected)
