"""Search over prompts: full text (SQLite FTS5 / PostgreSQL tsvector, BM25-style ranking), semantic (vectors in
an HNSW index per project) and hybrid (reciprocal rank fusion of both); "find similar" and duplicate reports.

Every query is scoped to projects the caller may read (``prompt:read``): the caller's project by default, or
each named project / every project of the user (``projects=["*"]``) that their membership allows. A project
the caller cannot read is reported as not found, never searched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import Select, bindparam, func, literal_column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from promptops.auth.principal import Principal
from promptops.errors import NotFound, ValidationProblem
from promptops.governance.rbac import Permission, has_permission
from promptops.search.embed import clean, embedder, from_bytes
from promptops.search.models import SearchDocument, SearchTerm
from promptops.search.vectors import indexes
from promptops.tenancy import service as tenancy

Mode = Literal["hybrid", "text", "semantic"]
MODES: tuple[Mode, ...] = ("hybrid", "text", "semantic")
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
RRF_K = 60
CANDIDATES = 100  # per ranking, before fusion and paging
# Below this cosine similarity a vector neighbour is not offered on its own (hybrid), nor reported as similar.
MIN_SIMILARITY = 0.35
# Duplicate score = COSINE_WEIGHT * vector cosine + (1 - COSINE_WEIGHT) * shared stemmed words (Jaccard). On the
# hand-labelled pairs of bench/data/similarity, 5-fold cross-validation chose the threshold 0.256-0.261 in every
# fold (held-out accuracy 0.92 against 0.89 for the cosine alone); bench/search.py measures it again.
COSINE_WEIGHT = 0.4
DUPLICATE_SCORE = 0.26
SIMILAR_CANDIDATES = 50  # nearest by meaning that are scored as duplicates
SAVE_CANDIDATES = 10  # on every save, fewer: a copy is among the nearest by meaning
CLUSTER_NEIGHBOURS = 10
_TERM = re.compile(r"\w+", re.UNICODE)
QUERY_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "those",
        "to",
        "up",
        "us",
        "we",
        "what",
        "when",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    ]
)
SNIPPET_WORDS = 5000
FTS_WINDOW = 1000  # best full-text matches considered before filters (SQLite)
_FTS = table("search_fts")


@dataclass(frozen=True)
class Filters:
    tags: Sequence[str] = ()
    labels: Sequence[str] = ()
    model: str | None = None
    author: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    projects: Sequence[str] = ()  # names or ids; "*" = every project the caller can read
    all_versions: bool = False  # search every version's text, not only each prompt's latest


@dataclass(frozen=True)
class Segment:
    text: str
    match: bool


@dataclass
class Hit:
    doc: SearchDocument
    project_name: str
    score: float = 0.0
    text_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    snippet: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    total: int  # candidates found (capped at CANDIDATES per ranking)
    mode: Mode
    corrections: dict[str, str] = field(default_factory=dict)  # misspelled query word -> the word searched


# --- scope ----------------------------------------------------------------------------------------------------


async def _readable(session: AsyncSession, principal: Principal) -> dict[str, str]:
    """Project id -> name of every project whose prompts the principal may read (its own always)."""
    principal.require(Permission.PROMPT_READ)
    mine = {
        project.id: project.name
        for project, role in await tenancy.list_projects(session, principal)
        if has_permission(role, Permission.PROMPT_READ)
    }
    mine.setdefault(principal.project_id, principal.project_id)  # the system principal has no membership
    return mine


def _choose(mine: dict[str, str], principal: Principal, wanted: Sequence[str]) -> dict[str, str]:
    if not wanted:
        return {principal.project_id: mine[principal.project_id]}
    if "*" in wanted:
        return mine
    chosen: dict[str, str] = {}
    by_name = {name: pid for pid, name in mine.items()}
    for item in wanted:
        pid = item if item in mine else by_name.get(item)
        if pid is None:
            raise NotFound(f"No project {item!r} that you can read", code="project_not_found")
        chosen[pid] = mine[pid]
    return chosen


async def readable_projects(
    session: AsyncSession, principal: Principal, wanted: Sequence[str] = ()
) -> dict[str, str]:
    """Project id -> name of the projects to search: the principal's own by default, the named ones, or every
    readable one for ``*``; a project the principal cannot read is NotFound."""
    return _choose(await _readable(session, principal), principal, wanted)


def _filtered(stmt: Select[Any], projects: Sequence[str], filters: Filters) -> Select[Any]:
    d = SearchDocument
    # coalesce(): the project is checked row by row, never used to pick an index, so a lookup by vector keys
    # or FTS rowids stays on the unique key index (SQLite without statistics would scan the whole project)
    stmt = stmt.where(func.coalesce(d.project_id, "").in_(list(projects)), d.archived.is_(False))
    # a label names its own version (production may be v3 while v4 is the latest)
    if not filters.all_versions and not any(label != "latest" for label in filters.labels):
        stmt = stmt.where(d.latest.is_(True))
    for tag in filters.tags:
        stmt = stmt.where((" " + d.tags + " ").contains(f" {tag} ", autoescape=True))
    for label in filters.labels:
        if label == "latest":
            stmt = stmt.where(d.latest.is_(True))
        else:
            stmt = stmt.where((" " + d.labels + " ").contains(f" {label} ", autoescape=True))
    if filters.model:
        stmt = stmt.where(d.model == filters.model)
    if filters.author:
        stmt = stmt.where(d.author == filters.author)
    if filters.updated_after:
        stmt = stmt.where(d.updated_at >= filters.updated_after)
    if filters.updated_before:
        stmt = stmt.where(d.updated_at < filters.updated_before)
    return stmt


# --- text -----------------------------------------------------------------------------------------------------


def terms_of(query: str) -> list[str]:
    terms: list[str] = []
    for term in _TERM.findall(query.lower()):
        if term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


async def _text_ranking(
    session: AsyncSession, terms: list[str], projects: Sequence[str], filters: Filters, limit: int
) -> list[tuple[SearchDocument, float]]:
    """Documents matching any term, best first (more matched terms, rarer terms, name > description > text)."""
    # Function words match nearly every prompt: ranking them costs much and adds nothing (PostgreSQL's english
    # configuration drops them too). A query made only of them keeps them.
    terms = [t for t in terms if t not in QUERY_STOPWORDS] or terms
    if not terms:
        return []
    d = SearchDocument
    light = load_only(d.version_id, d.prompt_id, d.project_id, d.vector_key, d.prompt_name)
    if session.get_bind().dialect.name == "sqlite":
        # quoted terms are literal (no FTS5 syntax from users); the last one also matches as a prefix
        quoted = [f'"{t}"' for t in terms[:-1]] + [
            f'"{terms[-1]}"*' if len(terms[-1]) >= 3 else f'"{terms[-1]}"'
        ]
        # FTS5 ranks inside its own query (bm25: name 10, description 4, tags 4, labels 2, text 1, variables 2,
        # commit message 1); the documents' filters apply to that ranked list.
        matched = (
            select(
                literal_column("rowid").label("key"),
                literal_column("bm25(search_fts, 0.0, 10.0, 4.0, 4.0, 2.0, 1.0, 2.0, 1.0)").label("rank"),
            )
            .select_from(_FTS)
            .where(text("search_fts MATCH :match").bindparams(match=" OR ".join(quoted)))
            .where(literal_column("search_fts.project_id").in_(list(projects)))  # before the window's limit
            .order_by(literal_column("rank"))
            .limit(FTS_WINDOW)
            .subquery()
        )
        stmt = select(d, matched.c.rank).options(light).join(matched, matched.c.key == d.vector_key)
        stmt = _filtered(stmt, projects, filters).order_by(matched.c.rank, d.prompt_name).limit(limit)
        return [(row[0], -float(row[1])) for row in await session.execute(stmt)]
    tsquery = " | ".join([t for t in terms[:-1]] + [f"{terms[-1]}:*" if len(terms[-1]) >= 3 else terms[-1]])
    query = func.to_tsquery(literal_column("'english'::regconfig"), bindparam("tsq", tsquery))
    tsv: Any = literal_column("search_documents.tsv")
    rank = func.ts_rank_cd(tsv, query, 1)  # normalised by document length
    stmt = select(d, rank.label("rank")).options(light).where(tsv.op("@@")(query))
    stmt = _filtered(stmt, projects, filters).order_by(rank.desc(), d.prompt_name).limit(limit)
    return [(row[0], float(row[1])) for row in await session.execute(stmt)]


# --- misspelled words -----------------------------------------------------------------------------------------


def _max_edits(term: str) -> int:
    return 1 if len(term) <= 6 else 2


async def corrections(session: AsyncSession, terms: list[str], projects: Sequence[str]) -> dict[str, str]:
    """Query words no prompt of these projects uses, mapped to the closest word that one does (same first
    letter, at most 1 edit for words up to 6 letters, 2 for longer ones; transpositions count as one)."""
    candidates = [t for t in terms if len(t) >= 4 and t.isalpha()]
    if not candidates:
        return {}
    t = SearchTerm
    known = set(
        (
            await session.execute(
                select(t.term).where(t.project_id.in_(list(projects)), t.term.in_(candidates)).distinct()
            )
        ).scalars()
    )
    fixed: dict[str, str] = {}
    for term in candidates:
        if term in known:
            continue
        edits = _max_edits(term)
        lo, hi = term[0], chr(ord(term[0]) + 1)
        rows = (
            await session.execute(
                select(t.term)
                .where(
                    t.project_id.in_(list(projects)),
                    t.term >= lo,
                    t.term < hi,
                    func.length(t.term).between(len(term) - edits, len(term) + edits),
                )
                .distinct()
                .limit(20000)
            )
        ).scalars()
        best: tuple[int, str] | None = None
        for word in rows:
            distance = DamerauLevenshtein.distance(term, word, score_cutoff=edits)
            if distance <= edits and (best is None or (distance, word) < best):
                best = (distance, word)
        if best is not None:
            fixed[term] = best[1]
    return fixed


# --- vectors --------------------------------------------------------------------------------------------------


async def _vector_ranking(
    session: AsyncSession,
    vector: NDArray[np.float32],
    projects: Sequence[str],
    filters: Filters,
    limit: int,
    *,
    full: bool = False,
) -> list[tuple[SearchDocument, float]]:
    """The nearest latest versions by meaning, best first; ``full`` loads whole documents (else only what a
    ranking needs: the search loads its page's documents afterwards)."""
    found: list[tuple[int, float]] = []
    for project_id in projects:
        index = await indexes.current(session, project_id)
        found.extend(index.search(vector, limit * 2))
    if not found:
        return []
    scores = dict(found)
    d = SearchDocument
    stmt = (
        select(d)
        if full
        else select(d).options(
            load_only(d.version_id, d.prompt_id, d.project_id, d.vector_key, d.prompt_name)
        )
    )
    rows = (
        await session.execute(_filtered(stmt, projects, filters).where(d.vector_key.in_(list(scores))))
    ).scalars()
    # the vector index holds latest versions only; with all_versions the latest stands for its prompt
    ranked = sorted(((doc, scores[doc.vector_key]) for doc in rows), key=lambda p: (-p[1], p[0].prompt_name))
    return ranked[:limit]


# --- snippets -------------------------------------------------------------------------------------------------


def _stem(term: str) -> str:
    return term[: max(4, len(term) - 2)] if len(term) > 4 else term


def snippet(text_: str, terms: Sequence[str], width: int = 28) -> list[Segment]:
    """The window of ``width`` words of ``text_`` holding most query terms, the matching words marked (looked
    for in the first SNIPPET_WORDS words: a long template costs no more than that)."""
    words = text_.split(maxsplit=SNIPPET_WORDS)[:SNIPPET_WORDS]
    tokens = list(enumerate(words))
    if not tokens:
        return []
    stems = tuple(_stem(t) for t in terms)

    def hit(word: str) -> bool:
        return any(w.startswith(stems) for w in _TERM.findall(word.lower()))

    marks = [hit(w) for _, w in tokens]
    # the best window by a running sum (one pass, whatever the width)
    count = sum(marks[:width])
    best, best_count = 0, count
    for start in range(1, max(1, len(tokens) - width + 1)):
        count += marks[start + width - 1] - marks[start - 1]
        if count > best_count:
            best, best_count = start, count
    window = tokens[best : best + width]
    pieces: list[tuple[str, bool]] = [("… ", False)] if best > 0 else []
    for position, (_, word) in enumerate(window):
        pieces.append((word, marks[best + position]))
        if position < len(window) - 1:
            pieces.append((" ", False))
    if best + width < len(tokens):
        pieces.append((" …", False))
    segments: list[Segment] = []
    for piece, matched in pieces:
        if segments and segments[-1].match == matched:
            segments[-1] = Segment(segments[-1].text + piece, matched)
        else:
            segments.append(Segment(piece, matched))
    return segments


# --- search ---------------------------------------------------------------------------------------------------


def _best_per_prompt(ranking: list[tuple[SearchDocument, float]]) -> list[tuple[SearchDocument, float]]:
    seen: set[str] = set()
    out = []
    for doc, score in ranking:
        if doc.prompt_id not in seen:
            seen.add(doc.prompt_id)
            out.append((doc, score))
    return out


async def search(
    session: AsyncSession,
    principal: Principal,
    query: str,
    *,
    mode: Mode = "hybrid",
    filters: Filters = Filters(),
    limit: int = 20,
    offset: int = 0,
) -> SearchPage:
    if mode not in MODES:
        raise ValidationProblem(
            f"Unknown mode {mode!r}: use one of {', '.join(MODES)}", code="bad_search_mode"
        )
    if len(query) > MAX_QUERY_CHARS:
        raise ValidationProblem(
            f"The query has {len(query)} characters; at most {MAX_QUERY_CHARS}", code="query_too_long"
        )
    terms = terms_of(query)
    if not terms:
        raise ValidationProblem("Search for at least one word ('q')", code="empty_query")
    projects = await readable_projects(session, principal, filters.projects)
    fixed = await corrections(session, terms, list(projects)) if mode != "semantic" else {}
    if fixed:  # the corrected word is searched as well as the one typed (which may be a real word too)
        terms = terms + [w for w in fixed.values() if w not in terms]
    text_hits: list[tuple[SearchDocument, float]] = []
    vector_hits: list[tuple[SearchDocument, float]] = []
    if mode in ("hybrid", "text"):
        text_hits = _best_per_prompt(
            await _text_ranking(session, terms, list(projects), filters, CANDIDATES * 3)
        )
    if mode in ("hybrid", "semantic"):
        corrected = " ".join(fixed.get(t, t) for t in terms_of(query)) if fixed else query
        vector = embedder().embed([corrected])[0]
        vector_hits = await _vector_ranking(session, vector, list(projects), filters, CANDIDATES)
        if mode == "hybrid":
            vector_hits = [(d, s) for d, s in vector_hits if s >= MIN_SIMILARITY]
    hits: dict[str, Hit] = {}
    for rank, (doc, _score) in enumerate(text_hits[:CANDIDATES], start=1):
        hit = hits.setdefault(doc.prompt_id, Hit(doc, projects[doc.project_id]))
        hit.text_rank = rank
        hit.score += 1.0 / (RRF_K + rank)
    for rank, (doc, similarity) in enumerate(vector_hits, start=1):
        hit = hits.setdefault(doc.prompt_id, Hit(doc, projects[doc.project_id]))
        hit.semantic_rank = rank
        hit.similarity = round(similarity, 4)
        hit.score += 1.0 / (RRF_K + rank)
    ordered = sorted(hits.values(), key=lambda h: (-h.score, h.doc.prompt_name, h.doc.project_id))
    page = ordered[offset : offset + limit]
    if page:  # the rankings loaded only ids and names: the page's documents in full
        full = {
            doc.version_id: doc
            for doc in (
                await session.execute(
                    select(SearchDocument)
                    .where(SearchDocument.version_id.in_([h.doc.version_id for h in page]))
                    .execution_options(populate_existing=True)
                )
            ).scalars()
        }
        for hit in page:
            hit.doc = full.get(hit.doc.version_id, hit.doc)
    for hit in page:
        hit.score = round(hit.score * RRF_K, 6)  # 1.0 = ranked first by one method
        source = hit.doc.body if any(_matches(hit.doc.body, terms)) else hit.doc.description or hit.doc.body
        hit.snippet = snippet(source, terms)
    return SearchPage(page, len(ordered), mode, fixed)


def _matches(text_: str, terms: Sequence[str]) -> list[bool]:
    lowered = text_.lower()
    return [_stem(t) in lowered for t in terms]


# --- similar and duplicates -----------------------------------------------------------------------------------


_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "each",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
        "you",
        "your",
    ]
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def word_stems(text_: str) -> frozenset[str]:
    """The distinct words of a prompt (template syntax and common function words left out), cut to their first
    five letters: a crude stem that makes "summarise", "summary" and "summarize" one word."""
    return frozenset(w[:5] for w in _WORD.findall(clean(text_).lower()) if w not in _STOP)


def duplicate_score(a: SearchDocument, b: SearchDocument, cosine: float) -> float:
    """How likely two prompts are the same instruction reworded: the meaning of their text (vector cosine)
    blended with the words they share (Jaccard of stemmed words of description and text). Measured on
    bench/data/similarity (bench/search.py): a pair is a near-duplicate from DUPLICATE_SCORE."""
    words_a = word_stems(f"{a.description} {a.body}")
    words_b = word_stems(f"{b.description} {b.body}")
    jaccard = len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 0.0
    return COSINE_WEIGHT * max(cosine, 0.0) + (1 - COSINE_WEIGHT) * jaccard


@dataclass(frozen=True)
class Similar:
    doc: SearchDocument
    project_name: str
    similarity: float  # cosine of the text vectors
    duplicate_score: float

    @property
    def duplicate(self) -> bool:
        return self.duplicate_score >= DUPLICATE_SCORE


async def _latest_doc(session: AsyncSession, principal: Principal, name_or_id: str) -> SearchDocument:
    d = SearchDocument
    stmt = select(d).where(
        d.project_id == principal.project_id,
        d.latest.is_(True),
        or_(d.prompt_name == name_or_id, d.prompt_id == name_or_id),
    )
    found = (await session.execute(stmt)).scalars().first()
    if found is None:
        raise NotFound(f"No prompt {name_or_id!r} in this project", code="prompt_not_found")
    return found


async def _neighbours(
    session: AsyncSession, doc: SearchDocument, projects: dict[str, str], candidates: int
) -> list[Similar]:
    """The nearest prompts by meaning (other than ``doc``'s own), scored as duplicates, best score first."""
    ranked = await _vector_ranking(
        session, from_bytes(doc.embedding), list(projects), Filters(), candidates + 1, full=True
    )
    found = [
        Similar(
            other, projects[other.project_id], round(score, 4), round(duplicate_score(doc, other, score), 4)
        )
        for other, score in ranked
        if other.prompt_id != doc.prompt_id
    ]
    found.sort(key=lambda s: (-s.duplicate_score, -s.similarity, s.doc.prompt_name))
    return found


async def similar(
    session: AsyncSession,
    principal: Principal,
    name_or_id: str,
    *,
    limit: int = 10,
    min_similarity: float = MIN_SIMILARITY,
    projects: Sequence[str] = (),
) -> tuple[SearchDocument, str, list[Similar]]:
    """Prompts whose latest text means about the same as this prompt's latest version: the nearest by meaning,
    ranked by duplicate score (meaning and shared words), those below ``min_similarity`` in meaning left out.
    Returns the prompt's document, its project's name and the similar prompts."""
    mine = await _readable(session, principal)
    scope = _choose(mine, principal, projects)
    doc = await _latest_doc(session, principal, name_or_id)
    found = await _neighbours(session, doc, scope, max(limit, SIMILAR_CANDIDATES))
    return doc, mine[doc.project_id], [s for s in found if s.similarity >= min_similarity][:limit]


async def near_duplicates(session: AsyncSession, principal: Principal, version_id: str) -> list[Similar]:
    """Other prompts of the version's project whose latest version is a near-duplicate of it (on save)."""
    doc = await session.get(SearchDocument, version_id)
    if doc is None or doc.project_id != principal.project_id:
        return []
    scope = {principal.project_id: principal.project_id}
    return [s for s in await _neighbours(session, doc, scope, SAVE_CANDIDATES) if s.duplicate][:5]


@dataclass(frozen=True)
class Cluster:
    members: list[SearchDocument]
    score: float  # the lowest duplicate score of the pairs that joined the cluster


async def duplicate_clusters(
    session: AsyncSession, principal: Principal, *, threshold: float | None = None, limit: int = 100
) -> list[Cluster]:
    """Groups of prompts in the principal's project whose latest versions are near-duplicates of each other
    (linked by a duplicate score of at least ``threshold``, default DUPLICATE_SCORE)."""
    principal.require(Permission.PROMPT_READ)
    threshold = DUPLICATE_SCORE if threshold is None else threshold
    if not 0.05 <= threshold <= 1.0:
        raise ValidationProblem("threshold must be between 0.05 and 1", code="bad_threshold")
    index = await indexes.current(session, principal.project_id)
    d = SearchDocument
    docs = (
        (
            await session.execute(
                select(d).where(
                    d.project_id == principal.project_id, d.latest.is_(True), d.archived.is_(False)
                )
            )
        )
        .scalars()
        .all()
    )
    by_key = {doc.vector_key: doc for doc in docs}
    parent = {k: k for k in by_key}
    weakest: dict[int, float] = {}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for doc in docs:
        for key, cosine in index.search(from_bytes(doc.embedding), CLUSTER_NEIGHBOURS + 1):
            other = by_key.get(key)
            if other is None or key == doc.vector_key:
                continue
            score = duplicate_score(doc, other, cosine)
            if score < threshold:
                continue
            a, b = root(doc.vector_key), root(key)
            if a != b:
                parent[b] = a
                weakest[a] = min(weakest.get(a, 1.0), weakest.get(b, 1.0), score)
    groups: dict[int, list[SearchDocument]] = {}
    for key, doc in by_key.items():
        groups.setdefault(root(key), []).append(doc)
    clusters = [
        Cluster(sorted(members, key=lambda m: m.prompt_name), round(weakest.get(key, 1.0), 4))
        for key, members in groups.items()
        if len(members) > 1
    ]
    clusters.sort(key=lambda c: (-len(c.members), -c.score, c.members[0].prompt_name))
    return clusters[:limit]


# --- upkeep ---------------------------------------------------------------------------------------------------


async def indexed_versions(session: AsyncSession, version_ids: Sequence[str]) -> set[str]:
    """Which of these versions have a search document (for the start-up backfill)."""
    if not version_ids:
        return set()
    d = SearchDocument
    rows = await session.execute(select(d.version_id).where(d.version_id.in_(list(version_ids))))
    return set(rows.scalars())


async def document_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(SearchDocument))).scalar_one())
