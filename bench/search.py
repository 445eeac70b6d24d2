"""Prompt search: quality on a labelled set, and latency and index build time at scale, on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py [--scale 100000 | --quick] [--skip-quality] [--skip-scale] [--skip-pg]
                                     [--skip-sqlite] [--workers 2] [--concurrency 8] [--requests 800] [--embeddings minilm|static]
                                     [--output bench/results/search.json]

``--quick`` (5,000 versions) takes about 25 minutes on a 2-core machine. The default 100,000-version run
embeds every version on each database: with the default model (about 18 versions a second per process on a
loaded 2-core machine) expect 3-4 hours; ``--embeddings static`` about an hour.

Quality (a real ``promptops serve`` on SQLite, everything through the REST API): every prompt of
bench/data/similarity/prompts.jsonl is created as a registry prompt, then

* duplicate detection on pairs.jsonl (``duplicate`` against ``related`` + ``unrelated``) with the similarity the
  product reports (``GET /api/v1/prompts/{a}/similar?minSimilarity=0&limit=50``; a pair whose other prompt is
  not among the 50 nearest scores 0): accuracy, precision, recall and F1 at the product's fixed threshold
  (``search.service.DUPLICATE_SIMILARITY``), and with a threshold chosen by 5-fold cross-validation (chosen on
  four folds, measured on the fifth, so the figure is not tuned on the pairs it is measured on). Text-only
  baselines computed here (word-set Jaccard, TF-IDF cosine) are measured the same way.
* find-similar on the duplicate pairs: recall@5 and MRR of b in a's similar list and of a in b's.
* search on queries.jsonl: recall@5 (share of the relevant prompts in the top 5) and MRR, for ``mode=text``,
  ``semantic`` and ``hybrid``.
* alternatives, computed here from the same rankings and the same embedder (``promptops.search.embed``), each
  chosen by cross-validation as well: other fusion weights, other text for the vectors, lexical features for
  duplicates. They are what the report proposes; the product is not changed by this bench.
* the worst misses (queries, duplicate pairs, find-similar) so the ranking can be improved.

Scale (``--scale N``, default 100,000 prompt versions; ``--quick`` = 5,000): N/4 prompts x 4 versions in one
project, texts recombined from the sentences of prompts.jsonl with varied domain, audience and tone words (all
distinct). They are written in-process through the registry's service layer (``create_prompt`` /
``create_version`` with the system principal, 100 prompts per transaction, so each version is indexed in its
transaction as in production). When the registry path would take longer than ``--write-budget`` seconds for
all N, its rate is measured on the first versions and the rest are bulk-inserted as plain rows and indexed by
the product's own start-up backfill (``registry.service.index_missing_versions``, words) and background
embedding (``search.index.refresh_embeddings``, vectors), both timed. Then a real
``promptops serve`` on that database: start-up, the first semantic query (it builds the project's vector index
from the rows), process RSS before and after, search latency (p50/p95/p99) for text, semantic and hybrid with 8
concurrent clients (httpx, queries drawn from queries.jsonl) and with 1, and the same for ``GET /api/v1/projects``
(the floor: what an authenticated request with no search costs); then a restart that loads the persisted
index. SQLite, then PostgreSQL (a fresh database, dropped at the end), where the load is measured again with
``promptops serve --workers N`` (``--workers``, default 2: one process per core of this machine).

Prints tables and writes bench/results/search.json (a run that skips a part keeps that part's earlier figures).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from eval import cpu_seconds
from numpy.typing import NDArray
from resolve import drop_postgres, postgres_database
from server import HEADERS, KEY, free_port, wait_ready

from promptops.search import embed as search_embed
from promptops.search import service as search_service
from promptops.search.embed import embedder
from promptops.search.index import content_text, make_vectors, name_text

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "similarity"
RESULTS = HERE / "results" / "search.json"
MODES = ("text", "semantic", "hybrid")
PRODUCT = "product: duplicate score from /similar (server)"
FOLDS = 5
SEED = 20240601


def code_state() -> dict[str, Any]:
    """The commit measured, and whether the search code had uncommitted changes."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=HERE.parent, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "search_code_uncommitted": bool(git("status", "--porcelain", "src/promptops/search")),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embedding_model": EMBEDDINGS[0],
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- a real server ----------------------------------------------------------------------------------------------


class Server:
    """``promptops serve`` on a database and data folder that outlive it (so it can be restarted)."""

    def __init__(self, database_url: str, data_dir: Path, log: Path, workers: int = 1) -> None:
        self.workers = workers  # promptops serve --workers (PostgreSQL)
        self.database_url = database_url
        self.data_dir = data_dir
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> float:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PROMPTOPS_DATA_DIR": str(self.data_dir),
            "PROMPTOPS_DATABASE_URL": self.database_url,
            "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
            "PROMPTOPS_LOAD_EXAMPLES": "false",
            "PROMPTOPS_LOG_LEVEL": "warning",
            "PROMPTOPS_SEARCH_EMBEDDINGS": EMBEDDINGS[0],
        }
        started = time.perf_counter()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "promptops"),
                    "serve",
                    "--port",
                    str(port),
                    *(["--workers", str(self.workers)] if self.workers > 1 else []),
                ],
                env=env,
                stdout=out,
                stderr=out,
            )
        wait_ready(self.base, self.proc, timeout=900)
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        """The server's process and, with several workers, the worker processes uvicorn started."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
        return found

    def cpu_s(self) -> float | None:
        """CPU seconds used so far by the server's processes."""
        times = [cpu_seconds(pid) for pid in self.pids()]
        known = [t for t in times if t is not None]
        return sum(known) if known and len(known) == len(times) else None

    def rss_mb(self) -> float | None:
        """Resident memory of the server's processes, summed."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return round(total / 1024, 1) if total else None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=HEADERS, timeout=300)


def ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise SystemExit(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
        )
    return response.json()


# --- metrics ----------------------------------------------------------------------------------------------------


def stratified_folds(labels: NDArray[np.bool_], k: int = FOLDS, seed: int = SEED) -> NDArray[np.int_]:
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=int)
    for value in (True, False):
        where = np.where(labels == value)[0]
        rng.shuffle(where)
        folds[where] = np.arange(len(where)) % k
    return folds


def binary(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> dict[str, float]:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": round(float((pred == truth).mean()), 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def best_threshold(scores: NDArray[np.float64], truth: NDArray[np.bool_]) -> float:
    """The threshold (score >= t means duplicate) with the best accuracy on these pairs; the middle of the
    best range of candidates when several tie."""
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = np.array([((scores >= t) == truth).mean() for t in candidates])
    best = np.flatnonzero(accuracy == accuracy.max())
    return float(candidates[best[len(best) // 2]])


def auc(scores: NDArray[np.float64], truth: NDArray[np.bool_]) -> float:
    pos, neg = scores[truth], scores[~truth]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(wins / (len(pos) * len(neg))), 4)


def cross_validated(
    truth: NDArray[np.bool_],
    candidates: dict[str, NDArray[np.float64]],
) -> dict[str, Any]:
    """5-fold CV: on four folds pick the candidate score (when there are several, e.g. mixing weights) and
    its threshold with the best accuracy, measure on the fifth. Precision/recall/F1 are over the pooled
    held-out predictions."""
    folds = stratified_folds(truth)
    accuracies: list[float] = []
    thresholds: list[float] = []
    chosen: list[str] = []
    pred = np.zeros(len(truth), dtype=bool)
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        best: tuple[float, str, float] | None = None
        for name, scores in candidates.items():
            t = best_threshold(scores[train], truth[train])
            acc = float(((scores[train] >= t) == truth[train]).mean())
            if best is None or acc > best[0]:
                best = (acc, name, t)
        assert best is not None
        _, name, t = best
        held = candidates[name][test] >= t
        pred[test] = held
        accuracies.append(float((held == truth[test]).mean()))
        thresholds.append(round(t, 4))
        chosen.append(name)
    pooled = binary(pred, truth)
    out: dict[str, Any] = {
        "accuracy_mean": round(float(np.mean(accuracies)), 4),
        "accuracy_std": round(float(np.std(accuracies)), 4),
        "fold_accuracies": [round(a, 4) for a in accuracies],
        "precision": pooled["precision"],
        "recall": pooled["recall"],
        "f1": pooled["f1"],
        "thresholds": thresholds,
    }
    if len(candidates) > 1:
        out["chosen"] = chosen
    return out


def rank_metrics(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int = 5
) -> dict[str, float]:
    recalls, reciprocal = [], []
    for items, rel in zip(ranked, relevant, strict=True):
        recalls.append(len(rel & set(items[:k])) / len(rel))
        rr = 0.0
        for position, item in enumerate(items, start=1):
            if item in rel:
                rr = 1.0 / position
                break
        reciprocal.append(rr)
    return {
        f"recall_at_{k}": round(float(np.mean(recalls)), 4),
        "mrr": round(float(np.mean(reciprocal)), 4),
    }


# --- lexical features -------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "in",
        "on",
        "for",
        "with",
        "from",
        "by",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "as",
        "at",
        "your",
        "you",
        "our",
        "we",
        "their",
        "its",
        "if",
        "not",
        "no",
        "only",
        "each",
        "any",
        "all",
        "one",
        "into",
        "than",
        "then",
        "so",
        "do",
        "does",
    ]
)


def words(text: str) -> list[str]:
    """Lower-case words of the text without template placeholders and stop words."""
    return [w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text).lower()) if w not in STOPWORDS]


def stem(word: str) -> str:
    return word[:5]


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def tfidf(docs: list[list[str]]) -> list[dict[str, float]]:
    df: collections.Counter[str] = collections.Counter()
    for doc in docs:
        df.update(set(doc))
    n = len(docs)
    out = []
    for doc in docs:
        counts = collections.Counter(doc)
        vec = {w: (1 + math.log(c)) * math.log((n + 1) / (df[w] + 1)) for w, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in vec.values())) or 1.0
        out.append({w: x / norm for w, x in vec.items()})
    return out


def sparse_cos(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(x * b.get(w, 0.0) for w, x in a.items())


def char_grams(text: str, n: int) -> dict[str, float]:
    """L2-normalised counts of the character n-grams of the text's words (placeholders left out)."""
    joined = " ".join(_WORD.findall(_PLACEHOLDER.sub(" ", text).lower()))
    counts = collections.Counter(joined[i : i + n] for i in range(len(joined) - n + 1))
    norm = math.sqrt(sum(c * c for c in counts.values())) or 1.0
    return {g: c / norm for g, c in counts.items()}


def logistic_fit(x: NDArray[np.float64], y: NDArray[np.bool_], l2: float = 0.01) -> NDArray[np.float64]:
    """Weights (last: intercept) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = l2 * np.r_[np.ones(x.shape[1]), 0.0]
    target = y.astype(float)
    for _ in range(50):
        p = 1 / (1 + np.exp(-xb @ w))
        gradient = xb.T @ (p - target) + penalty * w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        w -= np.linalg.solve(hessian, gradient)
    return w


def logistic_cv(x: NDArray[np.float64], truth: NDArray[np.bool_]) -> dict[str, Any]:
    """Nested 5-fold CV of a logistic combination: weights and threshold fitted on four folds, measured on the
    fifth; plus the in-sample accuracy and the weights fitted on all pairs."""
    folds = stratified_folds(truth)
    accuracies, thresholds = [], []
    pred = np.zeros(len(truth), dtype=bool)
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        w = logistic_fit(x[train], truth[train])
        score_train = np.c_[x[train], np.ones(train.sum())] @ w
        t = best_threshold(score_train, truth[train])
        held = np.c_[x[test], np.ones(test.sum())] @ w >= t
        pred[test] = held
        accuracies.append(float((held == truth[test]).mean()))
        thresholds.append(round(t, 4))
    w = logistic_fit(x, truth)
    score = np.c_[x, np.ones(len(x))] @ w
    pooled = binary(pred, truth)
    return {
        "auc": auc(score, truth),
        "in_sample_accuracy": round(float(((score >= best_threshold(score, truth)) == truth).mean()), 4),
        "weights_all_pairs": [round(float(v), 3) for v in w],
        "cv": {
            "accuracy_mean": round(float(np.mean(accuracies)), 4),
            "accuracy_std": round(float(np.std(accuracies)), 4),
            "fold_accuracies": [round(a, 4) for a in accuracies],
            "precision": pooled["precision"],
            "recall": pooled["recall"],
            "f1": pooled["f1"],
            "thresholds": thresholds,
        },
    }


def unit(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-9)


# --- quality ----------------------------------------------------------------------------------------------------


@dataclass
class Labelled:
    prompts: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    names: dict[str, str]  # prompt id -> registry name

    @property
    def by_id(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.prompts}


def load_prompts(api: httpx.Client, prompts: list[dict[str, Any]]) -> tuple[dict[str, str], int, float]:
    """Create every prompt; returns id -> name, how many saves reported near-duplicates, seconds."""
    names: dict[str, str] = {}
    used: set[str] = set()
    flagged = 0
    started = time.perf_counter()
    for p in prompts:
        name, n = p["name"], 2
        while name in used:
            name, n = f"{p['name']}-{n}", n + 1
        used.add(name)
        body = ok(
            api.post(
                "/api/v1/prompts",
                json={
                    "name": name,
                    "description": p.get("description", ""),
                    "tags": p.get("tags", []),
                    "template": p["template"],
                    "commitMessage": "bench: labelled similarity set",
                },
            )
        )
        names[p["id"]] = name
        flagged += bool(body.get("nearDuplicates"))
    return names, flagged, time.perf_counter() - started


@dataclass(frozen=True)
class Neighbour:
    pid: str
    similarity: float  # cosine of the text vectors
    score: float  # the product's duplicate score (the cosine where the product reports none)
    duplicate: bool  # the product's verdict


def similar_lists(api: httpx.Client, ids: Sequence[str], names: dict[str, str]) -> dict[str, list[Neighbour]]:
    """Prompt id -> its neighbours as GET /prompts/{name}/similar reports them, in the product's order."""
    by_name = {v: k for k, v in names.items()}
    out: dict[str, list[Neighbour]] = {}
    for pid in ids:
        body = ok(api.get(f"/api/v1/prompts/{names[pid]}/similar", params={"minSimilarity": 0, "limit": 50}))
        out[pid] = [
            Neighbour(
                by_name[item["name"]],
                float(item["similarity"]),
                float(item.get("duplicateScore", item["similarity"])),
                bool(item.get("duplicate", item["similarity"] >= duplicate_threshold())),
            )
            for item in body["items"]
        ]
    return out


def hybrid_floor() -> float:
    """The cosine below which the product leaves a vector neighbour out of a hybrid ranking (model's)."""
    return search_service.profile().hybrid_min_similarity


def duplicate_threshold() -> float:
    """The product's near-duplicate threshold on its duplicate score (the embedding model's)."""
    return search_service.profile().duplicate_score


def search_rankings(
    api: httpx.Client, queries: list[dict[str, Any]], names: dict[str, str]
) -> dict[str, list[list[tuple[str, float | None]]]]:
    """Mode -> per query the ranked prompt ids (and the reported similarity, for semantic and hybrid)."""
    by_name = {v: k for k, v in names.items()}
    out: dict[str, list[list[tuple[str, float | None]]]] = {m: [] for m in MODES}
    for mode in MODES:
        for q in queries:
            body = ok(api.get("/api/v1/search", params={"q": q["q"], "mode": mode, "limit": 100}))
            out[mode].append([(by_name[h["name"]], h.get("similarity")) for h in body["items"]])
    return out


def fuse(
    text: Sequence[str],
    semantic: Sequence[tuple[str, float]],
    names: dict[str, str],
    *,
    k: float,
    semantic_weight: float,
    min_similarity: float,
) -> list[str]:
    """The product's reciprocal-rank fusion (service.search), with its constants as parameters."""
    score: dict[str, float] = collections.defaultdict(float)
    for rank, pid in enumerate(text[: search_service.CANDIDATES], start=1):
        score[pid] += 1.0 / (k + rank)
    kept = [pid for pid, sim in semantic if sim >= min_similarity]
    for rank, pid in enumerate(kept, start=1):
        score[pid] += semantic_weight / (k + rank)
    return sorted(score, key=lambda pid: (-score[pid], names[pid]))


def cv_choice(
    n: int, options: dict[str, list[list[str]]], relevant: list[set[str]], key: str = "recall_at_5"
) -> dict[str, Any]:
    """5-fold CV over queries: pick the option with the best recall@5 (then MRR) on four folds, measure it on
    the fifth; the held-out rankings are pooled."""
    rng = random.Random(SEED)
    order = list(range(n))
    rng.shuffle(order)
    fold_of = {q: i % FOLDS for i, q in enumerate(order)}
    held: list[list[str]] = [[] for _ in range(n)]
    chosen = []
    for fold in range(FOLDS):
        train = [q for q in range(n) if fold_of[q] != fold]
        best_name, best_value = "", (-1.0, -1.0)
        for name, ranked in options.items():
            m = rank_metrics([ranked[q] for q in train], [relevant[q] for q in train])
            value = (m[key], m["mrr"])
            if value > best_value:
                best_name, best_value = name, value
        chosen.append(best_name)
        for q in range(n):
            if fold_of[q] == fold:
                held[q] = options[best_name][q]
    return {**rank_metrics(held, relevant), "chosen": chosen}


EMBEDDINGS = ["minilm"]  # the model the bench's servers run (--embeddings)


def quality(args: argparse.Namespace) -> dict[str, Any]:
    prompts = read_jsonl(DATA / "prompts.jsonl")
    pairs = read_jsonl(DATA / "pairs.jsonl")
    queries = read_jsonl(DATA / "queries.jsonl")
    by_id = {p["id"]: p for p in prompts}
    tmp = Path(tempfile.mkdtemp(prefix="promptops-bench-search-quality-"))
    server = Server(f"sqlite+aiosqlite:///{tmp / 'quality.db'}", tmp / "data", tmp / "server.log")
    print(
        f"quality: {len(prompts)} prompts, {len(pairs)} pairs, {len(queries)} queries (server log {server.log})"
    )
    server.start()
    try:
        with server.client() as api:
            names, flagged, load_s = load_prompts(api, prompts)
            print(f"  created {len(names)} prompts through the API in {load_s:.1f} s")
            ids_in_pairs = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
            similar = similar_lists(api, ids_in_pairs, names)
            rankings = search_rankings(api, queries, names)
    finally:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)

    truth = np.array([p["label"] == "duplicate" for p in pairs])
    labels = collections.Counter(p["label"] for p in pairs)

    # --- duplicate detection -----------------------------------------------------------------------------
    def neighbour(a: str, b: str) -> Neighbour:
        for x, y in ((a, b), (b, a)):
            for n in similar[x]:
                if n.pid == y:
                    return n
        # not among the 50 nearest: below any sensible threshold
        return Neighbour(b, 0.0, 0.0, False)

    found = [neighbour(p["a"], p["b"]) for p in pairs]
    product = np.array([n.score for n in found])
    product_cosine = np.array([n.similarity for n in found])
    verdict = np.array([n.duplicate for n in found])
    ids = [p["id"] for p in prompts]
    index = {pid: i for i, pid in enumerate(ids)}
    texts = [content_text(by_id[i].get("description", ""), by_id[i]["template"]) for i in ids]
    word_lists = [words(t) for t in texts]
    word_sets = [set(w) for w in word_lists]
    stem_sets = [{stem(w) for w in ws} for ws in word_lists]
    vectors_tfidf = tfidf([[stem(w) for w in ws] for ws in word_lists])

    def pair_scores(f: Callable[[int, int], float]) -> NDArray[np.float64]:
        return np.array([f(index[p["a"]], index[p["b"]]) for p in pairs], dtype=np.float64)

    model = embedder()
    as_product = model.embed(texts)
    no_placeholders = model.embed([_PLACEHOLDER.sub(" ", t) for t in texts])
    with_name, _ = make_vectors(
        [(by_id[i]["name"], by_id[i].get("description", ""), by_id[i]["template"]) for i in ids]
    )
    name_vectors = model.embed([name_text(by_id[i]["name"]) for i in ids])
    cos_product = pair_scores(lambda a, b: float(as_product[a] @ as_product[b]))
    cos_no_placeholders = pair_scores(lambda a, b: float(no_placeholders[a] @ no_placeholders[b]))
    jac = pair_scores(lambda a, b: jaccard(word_sets[a], word_sets[b]))
    jac_stem = pair_scores(lambda a, b: jaccard(stem_sets[a], stem_sets[b]))
    tf = pair_scores(lambda a, b: sparse_cos(vectors_tfidf[a], vectors_tfidf[b]))
    mixes = {
        f"{w:.1f}*cos+{1 - w:.1f}*jaccard": w * cos_no_placeholders + (1 - w) * jac_stem
        for w in np.linspace(0, 1, 11)
    }

    threshold = duplicate_threshold()
    methods: dict[str, dict[str, Any]] = {}

    def method(
        name: str, scores: NDArray[np.float64], fixed: NDArray[np.bool_] | None, **cands: NDArray[np.float64]
    ) -> None:
        entry: dict[str, Any] = {"auc": auc(scores, truth)}
        if fixed is not None:
            entry["at_product_threshold"] = binary(fixed, truth)
        entry["cv"] = cross_validated(truth, cands or {name: scores})
        methods[name] = entry

    method(PRODUCT, product, verdict)
    # descriptive (measured on all pairs, not cross-validated): what each threshold would do
    grid = np.round(np.linspace(0.5, 1.5, 11) * threshold, 3)
    methods[PRODUCT]["sweep"] = {f"{t:.3f}": binary(product >= t, truth) for t in grid}
    method("product: cosine alone (similarity field)", product_cosine, None)
    method("text: word-set Jaccard", jac, None)
    method("text: TF-IDF cosine (stemmed words)", tf, None)
    method("alt: cosine, same vectors, brute force (check)", cos_product, None)
    method("alt: cosine of vectors without template placeholders", cos_no_placeholders, None)
    method("alt: stemmed word-set Jaccard", jac_stem, None)
    method(
        "alt: w*cos(no placeholders) + (1-w)*stemmed Jaccard, w by CV",
        mixes["0.5*cos+0.5*jaccard"],
        None,
        **mixes,
    )

    # more lexical features, alone and in a logistic regression with the cosine (fitted on four folds, its
    # threshold too, measured on the fifth: nested, so the figure is held-out)
    df = collections.Counter(s for ss in stem_sets for s in ss)
    idf = {s: math.log((len(ids) + 1) / (df[s] + 1)) + 1 for s in df}

    def idf_jaccard(a: int, b: int) -> float:
        union = stem_sets[a] | stem_sets[b]
        return sum(idf[s] for s in stem_sets[a] & stem_sets[b]) / sum(idf[s] for s in union) if union else 0.0

    grams = [char_grams(t, 4) for t in texts]
    jac_idf = pair_scores(idf_jaccard)
    char4 = pair_scores(lambda a, b: sparse_cos(grams[a], grams[b]))
    method("alt: IDF-weighted stemmed Jaccard (IDF over the 413 prompts)", jac_idf, None)
    method("alt: character 4-gram cosine", char4, None)
    features = np.column_stack([cos_product, jac_stem, jac_idf, char4])
    logistic = logistic_cv(features, truth)
    methods["alt: logistic(cos, stemmed Jaccard, IDF Jaccard, char 4-gram), nested CV"] = logistic

    # --- find similar ------------------------------------------------------------------------------------
    dup_pairs = [p for p in pairs if p["label"] == "duplicate"]
    ranked_similar: list[list[str]] = []
    relevant_similar: list[set[str]] = []
    similar_misses: list[dict[str, Any]] = []
    for p in dup_pairs:
        for x, y in ((p["a"], p["b"]), (p["b"], p["a"])):
            ranked = [n.pid for n in similar[x]]
            ranked_similar.append(ranked)
            relevant_similar.append({y})
            rank = ranked.index(y) + 1 if y in ranked else None
            if rank is None or rank > 5:
                top = similar[x][:3]
                similar_misses.append(
                    {
                        "prompt": names[x],
                        "duplicate": names[y],
                        "rank": rank,
                        "similarity": neighbour(x, y).similarity,
                        "score": neighbour(x, y).score,
                        "top3": [(names[n.pid], n.similarity, n.score) for n in top],
                    }
                )
    find_similar = rank_metrics(ranked_similar, relevant_similar)
    similar_misses.sort(key=lambda m: (-(m["rank"] or 99), m["score"]))

    def offline_similar(score: Callable[[int, int], float]) -> dict[str, float]:
        ranked_all, rel_all = [], []
        for p in dup_pairs:
            for x, y in ((p["a"], p["b"]), (p["b"], p["a"])):
                xi = index[x]
                others = [o for o in ids if o != x]
                values = np.array([score(xi, index[o]) for o in others])
                ranked_all.append([others[j] for j in np.argsort(-values, kind="stable")[:50]])
                rel_all.append({y})
        return rank_metrics(ranked_all, rel_all)

    mix_choice = collections.Counter(
        methods["alt: w*cos(no placeholders) + (1-w)*stemmed Jaccard, w by CV"]["cv"]["chosen"]
    ).most_common(1)[0][0]
    best_w = float(mix_choice.split("*", 1)[0])
    find_similar_alternatives = {
        "alt: vectors without template placeholders": offline_similar(
            lambda a, b: float(no_placeholders[a] @ no_placeholders[b])
        ),
        f"alt: {best_w:.1f}*cos(no placeholders) + {1 - best_w:.1f}*stemmed Jaccard": offline_similar(
            lambda a, b: (
                best_w * float(no_placeholders[a] @ no_placeholders[b])
                + (1 - best_w) * jaccard(stem_sets[a], stem_sets[b])
            )
        ),
    }

    # --- search ------------------------------------------------------------------------------------------
    relevant = [set(q["relevant"]) for q in queries]
    search: dict[str, dict[str, float]] = {}
    for mode in MODES:
        search[mode] = rank_metrics([[pid for pid, _ in r] for r in rankings[mode]], relevant)
    text_ranked = [[pid for pid, _ in r] for r in rankings["text"]]
    sem_ranked = [[(pid, float(s or 0.0)) for pid, s in r] for r in rankings["semantic"]]
    reproduced = [
        fuse(
            t,
            s,
            names,
            k=search_service.profile().rrf_k,
            semantic_weight=search_service.profile().semantic_weight,
            min_similarity=hybrid_floor(),
        )
        for t, s in zip(text_ranked, sem_ranked, strict=True)
    ]
    agreement = float(
        np.mean(
            [
                rep[:5] == [pid for pid, _ in hyb][:5]
                for rep, hyb in zip(reproduced, rankings["hybrid"], strict=True)
            ]
        )
    )
    floors = sorted({0.0, 0.25, 0.3, 0.35, 0.45, hybrid_floor()})
    fusion_options: dict[str, list[list[str]]] = {}
    for k, weight, floor in itertools.product((1, 5, 10, 20, 60), (0.5, 1.0, 1.5, 2.0, 3.0), floors):
        fusion_options[f"k={k} w_sem={weight} min_sim={floor}"] = [
            fuse(t, s, names, k=k, semantic_weight=weight, min_similarity=floor)
            for t, s in zip(text_ranked, sem_ranked, strict=True)
        ]
    # semantic ranking from other vector text (brute force over the 413 prompts) and its fusion with the
    # server's text ranking
    query_vectors = model.embed([q["q"] for q in queries])
    sem_with_name = []
    for qv in query_vectors:
        sims = with_name @ qv
        order = np.argsort(-sims, kind="stable")[:100]
        sem_with_name.append([(ids[j], float(sims[j])) for j in order])
    fusion_name_options: dict[str, list[list[str]]] = {}
    for k, weight, floor in itertools.product((1, 5, 10, 20, 60), (0.5, 1.0, 1.5, 2.0, 3.0), floors):
        fusion_name_options[f"k={k} w_sem={weight} min_sim={floor}"] = [
            fuse(t, s, names, k=k, semantic_weight=weight, min_similarity=floor)
            for t, s in zip(text_ranked, sem_with_name, strict=True)
        ]
    name_weight_options: dict[str, list[list[str]]] = {}
    for weight in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
        mixed = unit(as_product + weight * name_vectors)
        name_weight_options[f"name_weight={weight}"] = [
            [ids[j] for j in np.argsort(-(mixed @ qv), kind="stable")[:100]] for qv in query_vectors
        ]
    search_alternatives = {
        "hybrid, product constants, recomputed here (check)": rank_metrics(reproduced, relevant),
        "semantic, name weight of the search vectors chosen by CV": cv_choice(
            len(queries), name_weight_options, relevant
        ),
        "hybrid, fusion constants chosen by CV": cv_choice(len(queries), fusion_options, relevant),
        "semantic, product vectors recomputed here (content + name_weight * name)": rank_metrics(
            [[pid for pid, _ in r] for r in sem_with_name], relevant
        ),
        "hybrid with those vectors, product constants": rank_metrics(
            fusion_name_options[
                f"k={search_service.profile().rrf_k} w_sem={search_service.profile().semantic_weight}"
                f" min_sim={hybrid_floor()}"
            ],
            relevant,
        ),
        "hybrid with those vectors, fusion constants chosen by CV": cv_choice(
            len(queries), fusion_name_options, relevant
        ),
    }

    # --- worst misses ------------------------------------------------------------------------------------
    query_misses = []
    for q, rel, hyb, txt, sem in zip(
        queries, relevant, rankings["hybrid"], rankings["text"], rankings["semantic"], strict=True
    ):
        ranked = [pid for pid, _ in hyb]
        r5 = len(rel & set(ranked[:5])) / len(rel)
        if r5 < 1.0:
            query_misses.append(
                {
                    "query": q["q"],
                    "recall_at_5": round(r5, 3),
                    "relevant": {
                        names[r]: {
                            "hybrid": _rank(ranked, r),
                            "text": _rank([p for p, _ in txt], r),
                            "semantic": _rank([p for p, _ in sem], r),
                        }
                        for r in sorted(rel)
                    },
                    "top5": [names[p] for p in ranked[:5]],
                }
            )
    query_misses.sort(key=lambda m: (m["recall_at_5"], m["query"]))
    cv_threshold = float(np.median(methods[PRODUCT]["cv"]["thresholds"]))
    pair_rows = [
        {
            "a": names[p["a"]],
            "b": names[p["b"]],
            "label": p["label"],
            "similarity": round(n.similarity, 4),
            "score": round(n.score, 4),
            "duplicate": n.duplicate,
        }
        for p, n in zip(pairs, found, strict=True)
    ]
    false_negatives = sorted(
        (r for r in pair_rows if r["label"] == "duplicate" and not r["duplicate"]), key=lambda r: r["score"]
    )
    false_positives = sorted(
        (r for r in pair_rows if r["label"] != "duplicate" and r["duplicate"]), key=lambda r: -r["score"]
    )
    distribution = {
        f"{field} {label}": [
            round(float(x), 3)
            for x in np.percentile([r[field] for r in pair_rows if r["label"] == label], [5, 25, 50, 75, 95])
        ]
        for field in ("score", "similarity")
        for label in ("duplicate", "related", "unrelated")
    }
    return {
        "code": code_state(),
        "prompts": len(prompts),
        "pairs": dict(labels),
        "queries": len(queries),
        "create_prompts_s": round(load_s, 2),
        "saves_reporting_near_duplicates": flagged,
        "duplicates": {
            "product_threshold": threshold,
            "score_percentiles_5_25_50_75_95": distribution,
            "methods": methods,
        },
        "find_similar": {
            **find_similar,
            "lookups": len(ranked_similar),
            "alternatives": find_similar_alternatives,
        },
        "search": search,
        "search_alternatives": search_alternatives,
        "hybrid_reproduced_top5_agreement": round(agreement, 4),
        "worst": {
            "queries": query_misses[:10],
            "queries_below_full_recall": len(query_misses),
            "duplicate_threshold_used": threshold,
            "cross_validated_threshold_median": round(cv_threshold, 4),
            "duplicates_missed": false_negatives[:10],
            "duplicates_missed_count": len(false_negatives),
            "false_duplicates": false_positives[:10],
            "false_duplicates_count": len(false_positives),
            "find_similar": similar_misses[:10],
            "find_similar_misses": len(similar_misses),
        },
    }


def _rank(ranked: list[str], pid: str) -> int | None:
    return ranked.index(pid) + 1 if pid in ranked else None


def print_quality(q: dict[str, Any]) -> None:
    d = q["duplicates"]
    print()
    print(f"Duplicate detection ({q['pairs']}; duplicate vs related+unrelated)")
    print(
        f"  the product's threshold: {d['product_threshold']} (its duplicate verdict is the 'fixed' column)"
    )
    print("  percentiles (5/25/50/75/95) of the product's duplicate score and cosine by label:")
    for key, values in d["score_percentiles_5_25_50_75_95"].items():
        print(f"    {key:22s} {values}")
    head = f"  {'method':66s} {'AUC':>6s} | {'acc@fixed':>9s} {'P':>6s} {'R':>6s} {'F1':>6s} | {'CV acc':>13s} {'P':>6s} {'R':>6s} {'F1':>6s}  thresholds"
    print(head)
    for name, m in d["methods"].items():
        fixed = m.get("at_product_threshold")
        fx = (
            f"{fixed['accuracy']:9.3f} {fixed['precision']:6.3f} {fixed['recall']:6.3f} {fixed['f1']:6.3f}"
            if fixed
            else f"{'-':>9s} {'-':>6s} {'-':>6s} {'-':>6s}"
        )
        cv = m["cv"]
        chosen = f" {collections.Counter(cv['chosen']).most_common(1)[0][0]}" if "chosen" in cv else ""
        print(
            f"  {name:66s} {m['auc']:6.3f} | {fx} | {cv['accuracy_mean']:6.3f}±{cv['accuracy_std']:.3f} "
            f"{cv['precision']:6.3f} {cv['recall']:6.3f} {cv['f1']:6.3f}  {cv['thresholds']}{chosen}"
        )
    sweep = d["methods"][PRODUCT].get("sweep", {})
    if sweep:
        print("  product similarity at other thresholds (all pairs, descriptive): threshold acc/P/R")
        print(
            "   "
            + "  ".join(
                f"{t}: {m['accuracy']:.3f}/{m['precision']:.2f}/{m['recall']:.2f}" for t, m in sweep.items()
            )
        )
    fs = q["find_similar"]
    print()
    print(f"Find similar on duplicate pairs ({fs['lookups']} lookups, both directions)")
    print(f"  {'product: /similar (server)':66s} recall@5 {fs['recall_at_5']:.3f}  MRR {fs['mrr']:.3f}")
    for name, m in fs["alternatives"].items():
        print(f"  {name:66s} recall@5 {m['recall_at_5']:.3f}  MRR {m['mrr']:.3f}")
    print()
    print(f"Search ({q['queries']} queries)")
    for mode, m in q["search"].items():
        print(f"  {'product: mode=' + mode:66s} recall@5 {m['recall_at_5']:.3f}  MRR {m['mrr']:.3f}")
    for name, m in q["search_alternatives"].items():
        chosen = f"  chosen: {collections.Counter(m['chosen']).most_common(2)}" if "chosen" in m else ""
        print(f"  {name:66s} recall@5 {m['recall_at_5']:.3f}  MRR {m['mrr']:.3f}{chosen}")
    print(
        f"  (hybrid recomputed from text+semantic rankings matches the server's top 5 for "
        f"{q['hybrid_reproduced_top5_agreement']:.0%} of queries)"
    )
    w = q["worst"]
    print()
    print(
        f"Worst hybrid queries ({w['queries_below_full_recall']} below full recall@5); rank of each relevant "
        f"prompt as hybrid/text/semantic:"
    )
    for m in w["queries"]:
        rel = ", ".join(f"{n} {r['hybrid']}/{r['text']}/{r['semantic']}" for n, r in m["relevant"].items())
        print(f"  {m['recall_at_5']:.2f}  {m['query']!r}: {rel}")
        print(f"        top5: {', '.join(m['top5'])}")
    print()
    print(
        f"Duplicates the product misses at its threshold {w['duplicate_threshold_used']} (cross-validated "
        f"median {w['cross_validated_threshold_median']}): {w['duplicates_missed_count']}, lowest score first:"
    )
    for r in w["duplicates_missed"]:
        print(f"  score {r['score']:.3f} cos {r['similarity']:.3f}  {r['a']}  ~  {r['b']}")
    print(f"False duplicates at that threshold ({w['false_duplicates_count']}), highest first:")
    for r in w["false_duplicates"]:
        print(f"  score {r['score']:.3f} cos {r['similarity']:.3f}  {r['a']}  ~  {r['b']}  ({r['label']})")
    print(f"Find-similar misses (duplicate not in the top 5: {w['find_similar_misses']}):")
    for m in w["find_similar"]:
        print(
            f"  rank {m['rank']} score {m['score']:.3f} cos {m['similarity']:.3f}  {m['prompt']} -> {m['duplicate']}; "
            f"top3 (name, cos, score) {m['top3']}"
        )


# --- scale: the corpus ------------------------------------------------------------------------------------------

DOMAINS = [
    "insurance",
    "retail",
    "banking",
    "healthcare",
    "logistics",
    "education",
    "travel",
    "gaming",
    "energy",
    "telecom",
    "legal",
    "real-estate",
    "automotive",
    "media",
    "pharma",
    "hospitality",
    "agriculture",
    "public-sector",
    "manufacturing",
    "fintech",
    "e-commerce",
    "aviation",
    "shipping",
    "nonprofit",
    "construction",
    "cybersecurity",
    "biotech",
    "fashion",
    "food-delivery",
    "recruiting",
    "saas",
    "utilities",
    "sports",
    "music",
    "publishing",
    "childcare",
    "veterinary",
    "mining",
    "chemicals",
    "semiconductors",
]
AUDIENCES = [
    "customers",
    "new hires",
    "executives",
    "engineers",
    "patients",
    "students",
    "partners",
    "suppliers",
    "analysts",
    "support agents",
    "regulators",
    "investors",
    "volunteers",
    "field technicians",
    "clinicians",
]
TONES = ["formal", "friendly", "concise", "detailed", "neutral", "warm", "direct", "playful", "careful"]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_SIMPLE_VAR = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def sentence_pool(prompts: list[dict[str, Any]]) -> list[str]:
    pool: list[str] = []
    for p in prompts:
        for line in p["template"].splitlines():
            for s in _SENTENCE.split(line.strip()):
                rest = _SIMPLE_VAR.sub("", s)
                if 4 <= len(s.split()) <= 40 and "{" not in rest and "}" not in rest:
                    pool.append(s)
    return sorted(set(pool))


@dataclass
class Spec:
    name: str
    description: str
    tags: list[str]
    versions: list[str]  # templates, v1 first


def corpus(n_versions: int, per_prompt: int = 4) -> list[Spec]:
    prompts = read_jsonl(DATA / "prompts.jsonl")
    pool = sentence_pool(prompts)
    rng = random.Random(SEED)
    seen: set[str] = set()
    specs = []
    for i in range(math.ceil(n_versions / per_prompt)):
        src = prompts[i % len(prompts)]
        domain, audience = rng.choice(DOMAINS), rng.choice(AUDIENCES)
        body = rng.sample(pool, 4)
        versions = []
        for v in range(min(per_prompt, n_versions - i * per_prompt)):
            if v:
                body[rng.randrange(len(body))] = rng.choice(pool)
            tone = rng.choice(TONES)
            text = (
                f"You work for a {domain.replace('-', ' ')} company and write for {audience}; keep a {tone} tone. "
                + " ".join(body)
                + "\n\n{{ input }}"
            )
            if text in seen:
                text += f"\n(reference {i}.{v})"
            seen.add(text)
            versions.append(text)
        tail = src["name"].rsplit("/", 1)[-1][:40]
        specs.append(
            Spec(
                name=f"{domain}/{tail}-{i:06d}",
                description=f"{src.get('description', '')} For {audience} in {domain.replace('-', ' ')}.",
                tags=list(dict.fromkeys([domain, *src.get("tags", [])[:1]])),
                versions=versions,
            )
        )
    return specs


def variables_of(template: str) -> list[str]:
    return sorted(set(_SIMPLE_VAR.findall(template)))


# --- scale: writing ---------------------------------------------------------------------------------------------


async def wait_for_vectors(database_url: str, timeout_s: float = 7200) -> float:
    """Seconds until every search document has vectors of the server's model (the background refresh)."""
    from promptops.config import normalize_database_url
    from promptops.db import Database
    from promptops.search.index import stale_embeddings

    db = Database(normalize_database_url(database_url))
    started = time.perf_counter()
    try:
        while (waiting := await stale_embeddings(db)) > 0:
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(
                    f"{waiting} documents still wait for their vectors after {timeout_s:.0f} s"
                )
            await asyncio.sleep(1.0)
    finally:
        await db.dispose()
    return round(time.perf_counter() - started, 1)


async def write_corpus(database_url: str, specs: list[Spec], budget_s: float, sample: int) -> dict[str, Any]:
    """Write ``specs`` through the registry's service layer in transactions of 100 prompts; past ``sample``
    versions, when the projected total exceeds ``budget_s``, the rest are bulk-inserted and indexed by the
    product's start-up backfill."""
    from sqlalchemy import func, insert, select

    from promptops.auth.principal import system_principal
    from promptops.config import normalize_database_url
    from promptops.db import Database, utcnow
    from promptops.ids import new_id
    from promptops.registry import service as registry
    from promptops.registry.hashing import content_hash
    from promptops.registry.models import Prompt, PromptTag, PromptVersion
    from promptops.registry.schemas import CreatePromptIn, CreateVersionIn, VariableIn
    from promptops.search.models import SearchDocument
    from promptops.templates import engine
    from promptops.tenancy.models import Project

    db = Database(normalize_database_url(database_url))
    total = sum(len(s.versions) for s in specs)
    out: dict[str, Any] = {"prompts": len(specs), "versions": total}
    try:
        async with db.transaction() as session:
            project = (await session.execute(select(Project).where(Project.name == "default"))).scalar_one()
            before = int(
                (await session.execute(select(func.count()).select_from(PromptVersion))).scalar_one()
            )
        system = system_principal(project.id, project.org_id)

        def declared(template: str) -> list[VariableIn]:
            return [VariableIn(name=v) for v in variables_of(template)]

        started = time.perf_counter()
        written, done_prompts, batch = 0, 0, 100
        while done_prompts < len(specs):
            elapsed = time.perf_counter() - started
            if written >= sample and written and elapsed + (total - written) * elapsed / written > budget_s:
                break
            chunk = specs[done_prompts : done_prompts + batch]
            async with db.transaction(write=True) as session:
                for spec in chunk:
                    first = spec.versions[0]
                    await registry.create_prompt(
                        session,
                        system,
                        CreatePromptIn(
                            name=spec.name,
                            description=spec.description,
                            tags=spec.tags,
                            template=first,
                            variables=declared(first),
                            commit_message="first draft",
                        ),
                    )
                    for number, template in enumerate(spec.versions[1:], start=2):
                        await registry.create_version(
                            session,
                            system,
                            spec.name,
                            CreateVersionIn(
                                template=template,
                                variables=declared(template),
                                commit_message=f"revision {number}",
                            ),
                        )
            written += sum(len(s.versions) for s in chunk)
            done_prompts += len(chunk)
            if done_prompts % 2000 == 0 or done_prompts == len(specs):
                rate = written / (time.perf_counter() - started)
                print(f"    registry path: {written:,} versions, {rate:,.0f}/s", flush=True)
        registry_s = time.perf_counter() - started
        out["registry_path"] = {
            "versions": written,
            "seconds": round(registry_s, 1),
            "ms_per_version": round(1000 * registry_s / written, 3) if written else None,
            "versions_per_s": round(written / registry_s, 1) if registry_s else None,
        }
        rest = specs[done_prompts:]
        if rest:
            projected = registry_s / written * total
            print(
                f"    registry path projected {projected / 60:.1f} min for {total:,} versions (budget "
                f"{budget_s / 60:.0f} min): bulk-inserting the other {total - written:,} versions",
                flush=True,
            )
            out["registry_path"]["projected_s_for_all"] = round(projected, 1)
            model_config = CreateVersionIn(template="x").model_config_.model_dump(exclude_none=True)
            started = time.perf_counter()
            for start in range(0, len(rest), 1000):
                prompts, tags, versions = [], [], []
                for spec in rest[start : start + 1000]:
                    pid, now = new_id("prompt"), utcnow()
                    prompts.append(
                        {
                            "id": pid,
                            "project_id": project.id,
                            "name": spec.name,
                            "description": spec.description,
                            "archived": False,
                            "latest_version": len(spec.versions),
                            "created_by": system.id,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                    tags += [{"prompt_id": pid, "tag": t, "project_id": project.id} for t in spec.tags]
                    parent = None
                    for number, template in enumerate(spec.versions, start=1):
                        specs_ = [
                            engine.VariableSpec.from_dict(v.model_dump()).to_dict()
                            for v in declared(template)
                        ]
                        vid = new_id("version")
                        versions.append(
                            {
                                "id": vid,
                                "project_id": project.id,
                                "prompt_id": pid,
                                "version": number,
                                "kind": "text",
                                "template": template,
                                "messages": None,
                                "variables": specs_,
                                "model_config_": model_config,
                                "response_schema": None,
                                "metadata_": {},
                                "commit_message": "first draft" if number == 1 else f"revision {number}",
                                "parent_version_id": parent,
                                "source": "manual",
                                "content_hash": content_hash(
                                    "text", template, None, specs_, model_config, None
                                ),
                                "warnings": [],
                                "created_by": system.id,
                                "created_at": now,
                            }
                        )
                        parent = vid
                async with db.transaction(write=True) as session:
                    await session.execute(insert(Prompt), prompts)
                    await session.execute(insert(PromptTag), tags)
                    await session.execute(insert(PromptVersion), versions)
            rows_s = time.perf_counter() - started
            started = time.perf_counter()
            indexed = await registry.index_missing_versions(db)
            backfill_s = time.perf_counter() - started
            out["bulk"] = {
                "versions": total - written,
                "rows_s": round(rows_s, 1),
                "backfill_indexed": indexed,
                "backfill_s": round(backfill_s, 1),
                "backfill_ms_per_version": round(1000 * backfill_s / max(1, indexed), 3),
            }
            print(
                f"    bulk rows {rows_s:.1f} s; search backfill (index_missing_versions) {indexed:,} versions "
                f"in {backfill_s:.1f} s ({1000 * backfill_s / max(1, indexed):.2f} ms/version)",
                flush=True,
            )
        async with db.transaction() as session:
            docs = int((await session.execute(select(func.count()).select_from(SearchDocument))).scalar_one())
            n_versions = int(
                (await session.execute(select(func.count()).select_from(PromptVersion))).scalar_one()
            )
        if docs != before + total or n_versions != before + total:
            raise SystemExit(
                f"expected {before + total} versions and search documents, found {n_versions} and {docs}"
            )
        out["search_documents"] = docs
    finally:
        await db.dispose()
    return out


# --- scale: load ------------------------------------------------------------------------------------------------


async def load(base: str, mode: str, queries: list[str], total: int, concurrency: int) -> dict[str, Any]:
    """``total`` searches of ``mode`` from ``concurrency`` clients; mode ``floor`` asks ``GET /api/v1/projects``
    instead (an authenticated read with no search: what every API request costs this server)."""
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal errors
            while (i := next(counter)) < total:
                t0 = time.perf_counter()
                if mode == "floor":
                    r = await client.get("/api/v1/projects")
                else:
                    r = await client.get(
                        "/api/v1/search", params={"q": queries[i % len(queries)], "mode": mode}
                    )
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": total,
        "errors": errors,
        "rps": round(total / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def timed_get(api: httpx.Client, params: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    ok(api.get("/api/v1/search", params=params))
    return round(time.perf_counter() - t0, 3)


def latencies(args: argparse.Namespace, server: Server, name: str, queries: list[str]) -> dict[str, Any]:
    """Search latency of each mode (and of the floor: an authenticated request with no search) with
    ``args.concurrency`` clients and with one, and the server's CPU per request."""

    def measured(mode: str, total: int, concurrency: int) -> dict[str, Any]:
        load_avg = os.getloadavg()[0]
        cpu0 = server.cpu_s()
        result = asyncio.run(load(server.base, mode, queries, total, concurrency))
        cpu1 = server.cpu_s()
        if cpu0 is not None and cpu1 is not None:
            # server CPU per request: unlike latency it hardly depends on other work on the machine
            result["server_cpu_ms_per_request"] = round(1000 * (cpu1 - cpu0) / total, 2)
        result["load_average_before"] = round(load_avg, 2)
        return result

    out: dict[str, Any] = {}
    for mode in (*MODES, "floor"):
        asyncio.run(load(server.base, mode, queries, 40, args.concurrency))  # warm-up
        out[mode] = {
            f"c{args.concurrency}": measured(mode, args.requests, args.concurrency),
            "c1": measured(mode, max(100, args.requests // 4), 1),
        }
        c = out[mode][f"c{args.concurrency}"]
        print(
            f"  [{name}] {mode:8s} c{args.concurrency}: p50 {c['p50_ms']:.1f} p95 {c['p95_ms']:.1f} "
            f"p99 {c['p99_ms']:.1f} ms, {c['rps']:.0f} req/s; c1 p50 {out[mode]['c1']['p50_ms']:.1f} "
            f"p95 {out[mode]['c1']['p95_ms']:.1f} ms",
            flush=True,
        )
    return out


def scale_backend(args: argparse.Namespace, backend: str, specs: list[Spec]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"promptops-bench-search-{backend}-"))
    data_dir = tmp / "data"
    pg_url = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'scale.db'}"
    else:
        pg_url = postgres_database()
        if pg_url is None:
            return {"skipped": "PostgreSQL not reachable"}
        url = pg_url
    server = Server(url, data_dir, tmp / "server.log")
    out: dict[str, Any] = {"database": backend}
    queries = [q["q"] for q in read_jsonl(DATA / "queries.jsonl")]
    random.Random(SEED).shuffle(queries)
    try:
        print(f"  [{backend}] bootstrap (migrate) ... log {server.log}", flush=True)
        server.start()
        server.stop()
        out["write"] = asyncio.run(write_corpus(url, specs, args.write_budget, args.registry_sample))
        if backend == "sqlite":
            out["database_mb"] = round((tmp / "scale.db").stat().st_size / 2**20, 1)
        shutil.rmtree(data_dir / "search-index", ignore_errors=True)

        # cold: versions bulk-inserted above were indexed for words at start-up and are embedded by the
        # server's background refresh: timed until no document waits for its vectors
        out["start_s"] = round(server.start(), 2)
        out["background_embedding_s"] = asyncio.run(wait_for_vectors(url))
        with server.client() as api:
            out["rss_mb_at_start"] = server.rss_mb()
            cpu0 = server.cpu_s()
            out["first_semantic_query_s"] = timed_get(
                api, {"q": "summarise a support ticket", "mode": "semantic"}
            )
            cpu1 = server.cpu_s()
            if cpu0 is not None and cpu1 is not None:
                out["index_build_cpu_s"] = round(cpu1 - cpu0, 2)
            out["rss_mb_after_index"] = server.rss_mb()
            out["first_text_query_s"] = timed_get(api, {"q": "refund email policy", "mode": "text"})
            files = sorted((data_dir / "search-index").glob("*.usearch"))
            out["index_file_mb"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
            meta = sorted((data_dir / "search-index").glob("*.json"))
            out["index_size"] = json.loads(meta[0].read_text()).get("size") if meta else None
        out["latency"] = latencies(args, server, backend, queries)
        out["rss_mb_after_load"] = server.rss_mb()
        server.stop()
        if backend == "postgresql" and args.workers > 1:  # the same load on several server processes
            several = Server(url, data_dir, tmp / "server.log", workers=args.workers)
            try:
                several.start()
                out["workers"] = args.workers
                out["latency_workers"] = latencies(args, several, f"{backend} x{args.workers}", queries)
                out["rss_mb_workers"] = several.rss_mb()
            finally:
                several.stop()

        # warm restart: the persisted index is loaded and caught up
        try:
            out["restart_s"] = round(server.start(), 2)
            with server.client() as api:
                out["restart_rss_mb_at_start"] = server.rss_mb()
                out["restart_first_semantic_query_s"] = timed_get(
                    api, {"q": "summarise a support ticket", "mode": "semantic"}
                )
                out["restart_rss_mb_after_index"] = server.rss_mb()
        except SystemExit as exc:
            out["restart_error"] = str(exc)
        server.stop()
    finally:
        server.stop()
        if pg_url is not None:
            drop_postgres(pg_url)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def print_scale(s: dict[str, Any]) -> None:
    print()
    print(f"Scale: {s['versions']:,} versions ({s['prompts']:,} prompts x 4) in one project")
    for backend, r in s["backends"].items():
        if "skipped" in r:
            print(f"  {backend}: skipped ({r['skipped']})")
            continue
        w = r["write"]
        rp = w["registry_path"]
        line = f"  {backend}: registry write path {rp['versions']:,} versions at {rp['ms_per_version']} ms/version"
        if "bulk" in w:
            b = w["bulk"]
            line += (
                f" (all {w['versions']:,} projected {rp['projected_s_for_all'] / 60:.1f} min); {b['versions']:,} "
                f"bulk rows + backfill {b['backfill_s']} s ({b['backfill_ms_per_version']} ms/version)"
            )
        print(line)
        print(
            f"    start {r['start_s']} s, RSS {r['rss_mb_at_start']} MB; first semantic query (builds the index of "
            f"{r['index_size']:,} vectors) {r['first_semantic_query_s']} s, RSS {r['rss_mb_after_index']} MB; "
            f"index file {r['index_file_mb']} MB; first text query {r['first_text_query_s']} s"
        )
        if "restart_s" not in r:
            print(f"    restart failed: {r.get('restart_error')}")
        else:
            print(
                f"    restart {r['restart_s']} s, RSS {r['restart_rss_mb_at_start']} MB; first semantic query (loads "
                f"the saved index) {r['restart_first_semantic_query_s']} s, RSS {r['restart_rss_mb_after_index']} MB; "
                f"RSS after the load test {r['rss_mb_after_load']} MB"
            )
        runs = [("1 process", r["latency"])]
        if "latency_workers" in r:
            runs.append((f"{r['workers']} workers", r["latency_workers"]))
        for title, latency in runs:
            print(f"    {title} (floor: GET /api/v1/projects, an authenticated request with no search):")
            for mode, lat in latency.items():
                for c, m in lat.items():
                    print(
                        f"    {mode:8s} {c:>3s}: p50 {m['p50_ms']:6.1f}  p95 {m['p95_ms']:6.1f}  p99 {m['p99_ms']:6.1f}"
                        f" ms  {m['rps']:6.0f} req/s  server CPU"
                        f" {m.get('server_cpu_ms_per_request', float('nan')):5.1f} ms/req"
                        f"  errors {m['errors']}  (load avg {m['load_average_before']})"
                    )


def scale(
    args: argparse.Namespace, save: Callable[[dict[str, Any]], None], previous: dict[str, Any] | None
) -> dict[str, Any]:
    n = 5000 if args.quick else args.scale
    started = time.perf_counter()
    specs = corpus(n)
    print(
        f"scale: {sum(len(s.versions) for s in specs):,} versions of {len(specs):,} prompts generated in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    backends = ([] if args.skip_sqlite else ["sqlite"]) + ([] if args.skip_pg else ["postgresql"])
    out: dict[str, Any] = {
        "code": code_state(),
        "versions": sum(len(s.versions) for s in specs),
        "prompts": len(specs),
        "concurrency": args.concurrency,
        "requests_per_mode": args.requests,
        "backends": {},
    }
    # a skipped database keeps its earlier figures
    if previous and previous.get("versions") == out["versions"]:
        for backend, figures in previous.get("backends", {}).items():
            if backend not in backends:
                out["backends"][backend] = {"code": previous.get("code"), **figures}
    for backend in backends:
        try:
            out["backends"][backend] = {"code": out["code"], **scale_backend(args, backend, specs)}
        except (SystemExit, Exception) as exc:  # keep the other backend's figures
            print(f"  [{backend}] failed: {exc!r}", flush=True)
            out["backends"][backend] = {"skipped": f"failed: {exc!r}"}
        save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=100_000, help="prompt versions for the scale part")
    parser.add_argument("--quick", action="store_true", help="5,000 versions instead")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="PostgreSQL: the load is measured again with `promptops serve --workers N` (1: not)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=800, help="requests per mode in the concurrent run")
    parser.add_argument(
        "--write-budget",
        type=float,
        default=480,
        help="seconds the registry write path may take for all versions",
    )
    parser.add_argument(
        "--registry-sample", type=int, default=4000, help="versions always written through the registry"
    )
    parser.add_argument(
        "--embeddings",
        choices=search_embed.MODELS,
        default="minilm",
        help="search embedding model of the servers (PROMPTOPS_SEARCH_EMBEDDINGS) and of this process",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the figures are written")
    args = parser.parse_args()
    EMBEDDINGS[0] = args.embeddings
    search_embed.configure(args.embeddings)
    output: Path = args.output
    previous = json.loads(output.read_text()) if output.exists() else {}
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "quality": previous.get("quality"),
        "scale": previous.get("scale"),
    }
    if not args.skip_quality:
        results["quality"] = quality(args)
        print_quality(results["quality"])

    def save(part: dict[str, Any] | None = None) -> None:
        if part is not None:
            results["scale"] = part
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1) + "\n")

    save()
    if not args.skip_scale:
        results["scale"] = scale(args, save, previous.get("scale"))
        print_scale(results["scale"])
    save()
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
