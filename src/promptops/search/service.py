"""Search over prompts: full text (SQLite FTS5 / PostgreSQL tsvector, BM25-style ranking), semantic (vectors in
an HNSW index per project) and hybrid (reciprocal rank fusion of both); "find similar" and duplicate reports.

Every query is scoped to projects the caller may read (``prompt:read``): the caller's project by default, or
each named project / every project of the user (``projects=["*"]``) that their membership allows. A project
the caller cannot read is reported as not found, never searched.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import Select, bindparam, func, literal_column, or_, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from promptops.auth.principal import Principal, system_principal
from promptops.cache import TTLCache
from promptops.db import Database
from promptops.errors import NotFound, ValidationProblem
from promptops.governance.rbac import Permission, has_permission
from promptops.search.embed import Profile, clean, embedder, from_bytes
from promptops.search.index import content_text, make_vectors, refresh_embeddings
from promptops.search.models import SearchDocument, SearchTerm
from promptops.search.spaces import (
    Space,
    cached_space,
    local_space,
    log_failure,
    provider,
    space_of,
    spaces_of,
)
from promptops.search.vectors import indexes
from promptops.tenancy import service as tenancy

Mode = Literal["hybrid", "text", "semantic"]
MODES: tuple[Mode, ...] = ("hybrid", "text", "semantic")
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
# Reciprocal rank fusion: score = TEXT_WEIGHT / (k + text rank) + semantic_weight / (k + semantic rank), with the
# model's k and semantic_weight (Profile).
TEXT_WEIGHT = 1.0
CANDIDATES = 100  # per ranking, before fusion and paging
# The cosine thresholds and the duplicate score's blend depend on the embedding model: each model's Profile
# (promptops.search.embed) holds its constants, chosen by 5-fold cross-validation on the hand-labelled pairs and
# queries of bench/data/similarity and measured again by bench/search.py.


def profile() -> Profile:
    """The deployment's model's constants (a project with its own model has its own: spaces.Space.profile)."""
    return embedder().profile


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
_FTS = {False: table("search_fts"), True: table("search_fts_latest")}  # True: latest, non-archived only


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


class Ref(NamedTuple):
    """What a ranking needs of a document (the page's documents are loaded in full afterwards)."""

    version_id: str
    prompt_id: str
    project_id: str
    prompt_name: str


@dataclass
class Hit:
    ref: Ref
    project_name: str
    score: float = 0.0
    text_rank: int | None = None
    semantic_rank: int | None = None
    similarity: float | None = None
    snippet: list[Segment] = field(default_factory=list)
    loaded: SearchDocument | None = None  # the whole document, loaded for the page's hits

    @property
    def doc(self) -> SearchDocument:
        if self.loaded is None:
            raise LookupError(f"The document of {self.ref.prompt_name} was not loaded")
        return self.loaded


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    total: int  # candidates found (capped at CANDIDATES per ranking)
    mode: Mode
    corrections: dict[str, str] = field(default_factory=dict)  # misspelled query word -> the word searched
    warnings: list[str] = field(default_factory=list)  # projects searched by words only, and why


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


# project id -> name, for the answers of searches of the caller's own project (a rename shows within seconds)
_project_names: TTLCache[str] = TTLCache(ttl=10.0)


async def readable_projects(
    session: AsyncSession, principal: Principal, wanted: Sequence[str] = ()
) -> dict[str, str]:
    """Project id -> name of the projects to search: the principal's own by default, the named ones, or every
    readable one for ``*``; a project the principal cannot read is NotFound."""
    if not wanted:  # the principal's own project (it was authenticated for it): only its name is needed
        principal.require(Permission.PROMPT_READ)
        pid = principal.project_id
        name = _project_names.get(pid)
        if name is None:
            name = await tenancy.project_name(session, pid) or pid  # the system principal: its id
            _project_names.put(pid, name)
        return {pid: name}
    return _choose(await _readable(session, principal), principal, wanted)


def latest_only(filters: Filters) -> bool:
    """Whether only each prompt's latest version is searched: unless every version is asked for or a label
    (a label names its own version: production may be v3 while v4 is the latest)."""
    return not filters.all_versions and all(label == "latest" for label in filters.labels)


def _narrowed(filters: Filters) -> bool:
    """Whether filters beyond the project and the latest versions apply (they may drop full-text matches, so
    more are read before them)."""
    return bool(
        filters.tags
        or [label for label in filters.labels if label != "latest"]
        or filters.model
        or filters.author
        or filters.updated_after
        or filters.updated_before
    )


def _filtered(stmt: Select[Any], projects: Sequence[str], filters: Filters) -> Select[Any]:
    d = SearchDocument
    # coalesce(): the project is checked row by row, never used to pick an index, so a lookup by vector keys
    # or FTS rowids stays on the unique key index (SQLite without statistics would scan the whole project).
    # Plain boolean predicates (not "IS true"): PostgreSQL matches them to the partial index of migration 0021.
    stmt = stmt.where(func.coalesce(d.project_id, "").in_(list(projects)), ~d.archived)
    if latest_only(filters):
        stmt = stmt.where(d.latest)
    for tag in filters.tags:
        stmt = stmt.where((" " + d.tags + " ").contains(f" {tag} ", autoescape=True))
    for label in filters.labels:
        if label == "latest":
            stmt = stmt.where(d.latest)
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


def _ref_columns() -> tuple[Any, ...]:
    d = SearchDocument
    return (d.version_id, d.prompt_id, d.project_id, d.prompt_name)


async def _text_ranking(
    session: AsyncSession, terms: list[str], projects: Sequence[str], filters: Filters, limit: int
) -> list[tuple[Ref, float]]:
    """Documents matching any term, best first (more matched terms, rarer terms, name > description > text)."""
    # Function words match nearly every prompt: ranking them costs much and adds nothing (PostgreSQL's english
    # configuration drops them too). A query made only of them keeps them.
    terms = [t for t in terms if t not in QUERY_STOPWORDS] or terms
    if not terms:
        return []
    d = SearchDocument
    if session.get_bind().dialect.name == "sqlite":
        # quoted terms are literal (no FTS5 syntax from users); the last one also matches as a prefix
        quoted = [f'"{t}"' for t in terms[:-1]] + [
            f'"{terms[-1]}"*' if len(terms[-1]) >= 3 else f'"{terms[-1]}"'
        ]
        # FTS5 ranks inside its own query (bm25: name 10, description 4, tags 4, labels 2, text 1, variables 2,
        # commit message 1); the documents' filters apply to that ranked list. A search of latest versions reads
        # the FTS table of only those (migration 0021): ranking cost follows the prompts, not every version.
        fts = _FTS[latest_only(filters)]
        matched = (
            select(
                literal_column("rowid").label("key"),
                literal_column(f"bm25({fts.name}, 0.0, 10.0, 4.0, 4.0, 2.0, 1.0, 2.0, 1.0)").label("rank"),
            )
            .select_from(fts)
            .where(text(f"{fts.name} MATCH :match").bindparams(match=" OR ".join(quoted)))
            .where(literal_column(f"{fts.name}.project_id").in_(list(projects)))  # before the window's limit
            .order_by(literal_column("rank"))
            # the latest-only table holds nothing the filters below drop, unless narrowed: then read further
            .limit(limit if latest_only(filters) and not _narrowed(filters) else FTS_WINDOW)
            .subquery()
        )
        stmt = select(*_ref_columns(), matched.c.rank).join(matched, matched.c.key == d.vector_key)
        stmt = _filtered(stmt, projects, filters).order_by(matched.c.rank, d.prompt_name).limit(limit)
        return [(Ref(*row[:4]), -float(row[4])) for row in await session.execute(stmt)]
    tsquery = " | ".join([t for t in terms[:-1]] + [f"{terms[-1]}:*" if len(terms[-1]) >= 3 else terms[-1]])
    query = func.to_tsquery(literal_column("'english'::regconfig"), bindparam("tsq", tsquery))
    tsv: Any = literal_column("search_documents.tsv")
    rank = func.ts_rank_cd(tsv, query, 1)  # normalised by document length
    stmt = select(*_ref_columns(), rank.label("rank")).where(tsv.op("@@")(query))
    stmt = _filtered(stmt, projects, filters).order_by(rank.desc(), d.prompt_name).limit(limit)
    return [(Ref(*row[:4]), float(row[4])) for row in await session.execute(stmt)]


# --- misspelled words -----------------------------------------------------------------------------------------


# (project id, word) known to be in the project's vocabulary, oldest first
_known_terms: dict[tuple[str, str], None] = {}
KNOWN_TERMS = 100_000
_unknown_terms: TTLCache[str] = TTLCache(ttl=30.0)  # (projects, word) -> its correction ("": none), for 30 s


def _max_edits(term: str) -> int:
    return 1 if len(term) <= 6 else 2


async def corrections(session: AsyncSession, terms: list[str], projects: Sequence[str]) -> dict[str, str]:
    """Query words no prompt of these projects uses, mapped to the closest word that one does (same first
    letter, at most 1 edit for words up to 6 letters, 2 for longer ones; transpositions count as one)."""
    candidates = [t for t in terms if len(t) >= 4 and t.isalpha()]
    # a word a project has used stays in its vocabulary (never removed): remembered, not looked up again
    candidates = [c for c in candidates if not any((p, c) in _known_terms for p in projects)]
    # an unknown word's correction is remembered for a while (a word a prompt starts to use then is searched as
    # typed all the same: the correction is searched besides it)
    scope = tuple(sorted(projects))
    fixed: dict[str, str] = {}
    for term in list(candidates):
        remembered = _unknown_terms.get((scope, term))
        if remembered is not None:
            candidates.remove(term)
            if remembered:
                fixed[term] = remembered
    if not candidates:
        return fixed
    t = SearchTerm
    known: set[str] = set()
    for project_id, term in await session.execute(
        select(t.project_id, t.term).where(t.project_id.in_(list(projects)), t.term.in_(candidates))
    ):
        known.add(term)
        if len(_known_terms) >= KNOWN_TERMS:
            _known_terms.pop(next(iter(_known_terms)))
        _known_terms[(project_id, term)] = None
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
        _unknown_terms.put((scope, term), best[1] if best is not None else "")
    return fixed


# --- vectors --------------------------------------------------------------------------------------------------


async def _nearest(
    session: AsyncSession, vectors: Mapping[str, NDArray[np.float32]], spaces: Mapping[str, Space], count: int
) -> dict[int, float]:
    """Vector key -> cosine of the ``count`` nearest latest versions of each project (approximate), by the
    vector of the project's space (``vectors``: space label -> vector; a project without one is skipped)."""
    found: dict[int, float] = {}
    for project_id, space in spaces.items():
        vector = vectors.get(space.label)
        if vector is None:
            continue
        index = await indexes.current(session, project_id, space)
        found.update(index.search(vector, count))
    return found


async def _vector_ranking(
    session: AsyncSession,
    vectors: Mapping[str, NDArray[np.float32]],
    spaces: Mapping[str, Space],
    filters: Filters,
    limit: int,
) -> list[tuple[Ref, float]]:
    """The nearest latest versions by meaning that pass the filters, best first."""
    projects = list(spaces)
    scores = await _nearest(session, vectors, spaces, limit * 2)
    if not scores:
        return []
    d = SearchDocument
    stmt = _filtered(select(*_ref_columns(), d.vector_key), projects, filters).where(
        d.vector_key.in_(list(scores))
    )
    rows = await session.execute(stmt)
    # the vector index holds latest versions only; with all_versions the latest stands for its prompt
    ranked = sorted(((Ref(*r[:4]), scores[r[4]]) for r in rows), key=lambda p: (-p[1], p[0].prompt_name))
    return ranked[:limit]


_query_vectors: dict[str, NDArray[np.float32]] = {}
QUERY_CACHE = 2048  # query texts whose vector is kept (the same searches come back: paging, typing, retries)


def _remember(key: str, vector: NDArray[np.float32]) -> None:
    if len(_query_vectors) >= QUERY_CACHE:
        _query_vectors.pop(next(iter(_query_vectors)))
    _query_vectors[key] = vector


async def query_vector(text_: str) -> NDArray[np.float32]:
    """The vector of a search text by the deployment's model, from a small in-process cache (oldest entries
    dropped first); embedded in a worker thread (a few milliseconds of CPU) so the event loop keeps serving."""
    model = embedder()
    key = f"{model.name}\n{text_}"
    found = _query_vectors.get(key)
    if found is None:
        found = (await asyncio.to_thread(model.embed, [text_]))[0]
        _remember(key, found)
    return found


@dataclass(frozen=True)
class QueryVectors:
    """A search text embedded by the provider models of the projects searched, before the search opens its
    transaction (a model call never runs inside one): space label -> vector; ``failed``: label -> why not."""

    vectors: Mapping[str, NDArray[np.float32]] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)


async def provider_query_vectors(
    db: Database, principal: Principal, query: str, wanted: Sequence[str] = ()
) -> QueryVectors:
    """The query's vectors by the provider models of the projects a search of ``wanted`` reads (none when they
    all use the deployment's model: then nothing is called). Cached like query_vector."""
    if not wanted:  # the caller's own project, known to use the deployment's model: no transaction needed
        own = cached_space(principal.project_id)
        if own is not None and own.local:
            return QueryVectors()
    async with db.transaction() as session:
        projects = await readable_projects(session, principal, wanted)
        found = await spaces_of(session, projects)
        orgs = await tenancy.project_org_ids(session, [p for p, sp in found.items() if not sp.local])
    vectors: dict[str, NDArray[np.float32]] = {}
    failed: dict[str, str] = {}
    embedding = provider()
    for project_id, space in found.items():
        if space.local or space.label in vectors or space.label in failed:
            continue
        key = f"{space.label}\n{query}"
        cached = _query_vectors.get(key)
        if cached is not None:
            vectors[space.label] = cached
            continue
        if embedding is None:
            failed[space.label] = "this process cannot call provider models"
            continue
        try:
            made = (await embedding(_acting(principal, project_id, orgs), space, [query]))[0]
        except Exception as exc:  # the provider: searched by words meanwhile
            log_failure(project_id, space, exc)
            failed[space.label] = getattr(exc, "detail", None) or type(exc).__name__
            continue
        _remember(key, made)
        vectors[space.label] = made
    return QueryVectors(vectors, failed)


def _acting(principal: Principal, project_id: str, orgs: Mapping[str, str]) -> Principal:
    """Who a query embedding is made for: the caller in its own project; the server for another project the
    caller may read (the call uses and is recorded in that project, whose connection it is)."""
    if project_id == principal.project_id or project_id not in orgs:
        return principal
    return system_principal(project_id, orgs[project_id])


# --- snippets -------------------------------------------------------------------------------------------------


def _stem(term: str) -> str:
    return term[: max(4, len(term) - 2)] if len(term) > 4 else term


@functools.lru_cache(maxsize=256)
def _term_starts(terms: tuple[str, ...]) -> re.Pattern[str]:
    """A word matches when one of its runs of word characters starts with a term's stem (one compiled pattern)."""
    return re.compile(
        r"(?<!\w)(?:"
        + "|".join(re.escape(_stem(t)) for t in sorted(set(terms), key=len, reverse=True))
        + ")",
        re.IGNORECASE,
    )


def snippet(text_: str, terms: Sequence[str], width: int = 28) -> list[Segment]:
    """The window of ``width`` words of ``text_`` holding most query terms, the matching words marked (looked
    for in the first SNIPPET_WORDS words: a long template costs no more than that)."""
    words = text_.split(maxsplit=SNIPPET_WORDS)[:SNIPPET_WORDS]
    if not words:
        return []
    # the words joined by newlines (no word holds one) and searched in one pass; a match marks its word
    offsets = list(itertools.accumulate((len(w) + 1 for w in words), initial=0))
    marks = [False] * len(words)
    for found in _term_starts(tuple(terms)).finditer("\n".join(words)):
        marks[bisect.bisect_right(offsets, found.start()) - 1] = True
    # the first window with the most marked words
    span = min(width, len(words))
    sums = list(itertools.accumulate(marks, initial=0))
    counts = [sums[i + span] - sums[i] for i in range(len(words) - span + 1)]
    best = counts.index(max(counts))
    window = words[best : best + width]
    runs: list[tuple[bool, list[str]]] = []  # consecutive pieces that match or not, joined once at the end

    def add(piece: str, matched: bool) -> None:
        if runs and runs[-1][0] == matched:
            runs[-1][1].append(piece)
        else:
            runs.append((matched, [piece]))

    if best > 0:
        add("… ", False)
    for position, word in enumerate(window):
        add(word, marks[best + position])
        if position < len(window) - 1:
            add(" ", False)
    if best + width < len(words):
        add(" …", False)
    return [Segment("".join(parts), matched) for matched, parts in runs]


# --- search ---------------------------------------------------------------------------------------------------


def _best_per_prompt(ranking: list[tuple[Ref, float]]) -> list[tuple[Ref, float]]:
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
    provided: QueryVectors = QueryVectors(),
) -> SearchPage:
    """``provided``: the query's vectors by projects' provider models (provider_query_vectors); a project whose
    model has none is searched by words only, with a warning."""
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
    text_hits: list[tuple[Ref, float]] = []
    vector_hits: list[tuple[Ref, float]] = []
    spaces = await spaces_of(session, projects)
    own = spaces.get(principal.project_id) or next(iter(spaces.values()))
    warnings: list[str] = []
    if mode in ("hybrid", "text"):
        text_hits = _best_per_prompt(
            # one document per prompt unless every version is searched (then the best of each prompt is kept)
            await _text_ranking(
                session,
                terms,
                list(projects),
                filters,
                CANDIDATES if latest_only(filters) else CANDIDATES * 3,
            )
        )
    if mode in ("hybrid", "semantic"):
        corrected = " ".join(fixed.get(t, t) for t in terms_of(query)) if fixed else query
        vectors = dict(provided.vectors)
        if any(space.local for space in spaces.values()):
            vectors[local_space().label] = await query_vector(corrected)
        for project_id, space in spaces.items():
            if space.label not in vectors:
                why = provided.failed.get(space.label, "the query was not embedded")
                warnings.append(
                    f"{projects[project_id]}: searched by words only; its embedding model {space.description} "
                    f"gave no vector ({why})"
                )
        vector_hits = await _vector_ranking(session, vectors, spaces, filters, CANDIDATES)
        if mode == "hybrid":
            vector_hits = [
                (d, s) for d, s in vector_hits if s >= spaces[d.project_id].profile.hybrid_min_similarity
            ]
    hits: dict[str, Hit] = {}
    fusion = own.profile
    for rank, (ref, _score) in enumerate(text_hits[:CANDIDATES], start=1):
        hit = hits.setdefault(ref.prompt_id, Hit(ref, projects[ref.project_id]))
        hit.text_rank = rank
        hit.score += TEXT_WEIGHT / (fusion.rrf_k + rank)
    for rank, (ref, similarity) in enumerate(vector_hits, start=1):
        hit = hits.setdefault(ref.prompt_id, Hit(ref, projects[ref.project_id]))
        hit.semantic_rank = rank
        hit.similarity = round(similarity, 4)
        hit.score += fusion.semantic_weight / (fusion.rrf_k + rank)
    ordered = sorted(hits.values(), key=lambda h: (-h.score, h.ref.prompt_name, h.ref.project_id))
    page = ordered[offset : offset + limit]
    if page:  # the rankings read only ids and names: the page's documents in full (not their vectors)
        d = SearchDocument
        full = {
            doc.version_id: doc
            for doc in (
                await session.execute(
                    select(d)
                    .options(defer(d.embedding), defer(d.content_embedding))
                    .where(d.version_id.in_([h.ref.version_id for h in page]))
                )
            ).scalars()
        }
        for hit in page:
            hit.loaded = full.get(hit.ref.version_id)
        page = [hit for hit in page if hit.loaded is not None]  # gone since the ranking (a concurrent delete)
    weights = {"text": TEXT_WEIGHT, "semantic": fusion.semantic_weight}
    top = weights.get(mode, max(weights.values())) / (fusion.rrf_k + 1)
    for hit in page:
        hit.score = round(hit.score / top, 6)  # 1.0 = ranked first by the method that weighs most
        body = hit.doc.body
        source = body if any(_matches(body, terms)) else hit.doc.description or body
        hit.snippet = snippet(source, terms)
    return SearchPage(page, len(ordered), mode, fixed, warnings)


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


def content_vectors(docs: Sequence[SearchDocument], space: Space) -> NDArray[np.float32]:
    """The vectors of the documents' content (description and text; the index's vectors carry their names too:
    for search), as stored by the index; for a document the refresh has not reached, embedded here by the
    deployment's model, or zero with a provider model (never called here)."""
    stored = {
        i: from_bytes(doc.content_embedding)
        for i, doc in enumerate(docs)
        if doc.content_embedding is not None and doc.embedding_model == space.label
    }
    dimensions = len(next(iter(stored.values()))) if stored else embedder().dimensions
    out = np.zeros((len(docs), dimensions), dtype=np.float32)
    for i, vector in stored.items():
        out[i] = vector
    missing = [i for i in range(len(docs)) if i not in stored]
    if missing and space.local:
        out[missing] = embedder().embed([content_text(docs[i].description, docs[i].body) for i in missing])
    return out


def duplicate_score(
    a: SearchDocument,
    b: SearchDocument,
    cosine: float,
    stems: dict[str, frozenset[str]] | None = None,
    weight: float | None = None,
) -> float:
    """How likely two prompts are the same instruction reworded: the meaning of their content (cosine of
    content vectors) blended with the words they share (Jaccard of stemmed words of description and text).
    Measured on bench/data/similarity (bench/search.py): a pair is a near-duplicate from the model's
    ``duplicate_score`` (Profile).
    ``stems`` caches the words of documents by version id (when one document is compared with many); ``weight``
    is the cosine's share (default: the deployment's model's)."""
    cache = {} if stems is None else stems
    words = []
    for doc in (a, b):
        found = cache.get(doc.version_id)
        if found is None:
            found = cache[doc.version_id] = word_stems(content_text(doc.description, doc.body))
        words.append(found)
    union = words[0] | words[1]
    jaccard = len(words[0] & words[1]) / len(union) if union else 0.0
    weight = profile().cosine_weight if weight is None else weight
    return weight * max(cosine, 0.0) + (1 - weight) * jaccard


@dataclass(frozen=True)
class Similar:
    doc: SearchDocument
    project_name: str
    similarity: float  # cosine of the content vectors (description and text)
    duplicate_score: float
    threshold: float  # the duplicate score from which it is a near-duplicate (its model's)

    @property
    def duplicate(self) -> bool:
        return self.duplicate_score >= self.threshold


async def _latest_doc(session: AsyncSession, principal: Principal, name_or_id: str) -> SearchDocument:
    d = SearchDocument
    stmt = select(d).where(
        d.project_id == principal.project_id,
        d.latest,
        or_(d.prompt_name == name_or_id, d.prompt_id == name_or_id),
    )
    found = (await session.execute(stmt)).scalars().first()
    if found is None:
        raise NotFound(f"No prompt {name_or_id!r} in this project", code="prompt_not_found")
    return found


async def _search_vector(doc: SearchDocument, space: Space) -> NDArray[np.float32] | None:
    """The document's search vector as stored, or made now by the deployment's model when the background
    refresh has not reached it (None: a provider model's vector not made yet)."""
    if doc.embedding_model == space.label:
        return from_bytes(doc.embedding)
    if not space.local:
        return None
    made = await asyncio.to_thread(make_vectors, [(doc.prompt_name, doc.description, doc.body)])
    return made[0][0]


async def _neighbours(
    session: AsyncSession, doc: SearchDocument, projects: dict[str, str], candidates: int
) -> list[Similar]:
    """The nearest prompts by meaning (other than ``doc``'s own), scored as duplicates, best score first; among
    the projects whose model is the document's project's (vectors of two models are not comparable)."""
    spaces = await spaces_of(session, {doc.project_id, *projects})
    space = spaces[doc.project_id]
    vector = await _search_vector(doc, space)
    if vector is None:
        return []
    same = {pid: sp for pid, sp in spaces.items() if pid in projects and sp.label == space.label}
    scores = await _nearest(session, {space.label: vector}, same, 2 * (candidates + 1))
    if not scores:
        return []
    d = SearchDocument
    rows = (
        await session.execute(
            _filtered(select(d), list(same), Filters()).where(d.vector_key.in_(list(scores)))
        )
    ).scalars()
    others = sorted(
        (other for other in rows if other.prompt_id != doc.prompt_id),
        key=lambda o: (-scores[o.vector_key], o.prompt_name),
    )[:candidates]
    if not others:
        return []
    vectors = content_vectors([doc, *others], space)
    cosines = vectors[1:] @ vectors[0]
    stems: dict[str, frozenset[str]] = {}
    weight = space.profile.cosine_weight
    found = [
        Similar(
            other,
            projects[other.project_id],
            round(float(cosine), 4),
            round(duplicate_score(doc, other, float(cosine), stems, weight), 4),
            space.profile.duplicate_score,
        )
        for other, cosine in zip(others, cosines, strict=True)
    ]
    found.sort(key=lambda s: (-s.duplicate_score, -s.similarity, s.doc.prompt_name))
    return found


async def similar(
    session: AsyncSession,
    principal: Principal,
    name_or_id: str,
    *,
    limit: int = 10,
    min_similarity: float | None = None,
    projects: Sequence[str] = (),
) -> tuple[SearchDocument, str, list[Similar]]:
    """Prompts whose latest text means about the same as this prompt's latest version: the nearest by meaning,
    ranked by duplicate score (meaning and shared words), those below ``min_similarity`` in meaning left out.
    Returns the prompt's document, its project's name and the similar prompts."""
    mine = await _readable(session, principal)
    scope = _choose(mine, principal, projects)
    doc = await _latest_doc(session, principal, name_or_id)
    found = await _neighbours(session, doc, scope, max(limit, SIMILAR_CANDIDATES))
    own = await space_of(session, doc.project_id)
    floor = own.profile.min_similarity if min_similarity is None else min_similarity
    return doc, mine[doc.project_id], [s for s in found if s.similarity >= floor][:limit]


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
    (linked by a duplicate score of at least ``threshold``, default: the model's duplicate_score)."""
    principal.require(Permission.PROMPT_READ)
    space = await space_of(session, principal.project_id)
    threshold = space.profile.duplicate_score if threshold is None else threshold
    if not 0.05 <= threshold <= 1.0:
        raise ValidationProblem("threshold must be between 0.05 and 1", code="bad_threshold")
    index = await indexes.current(session, principal.project_id, space)
    d = SearchDocument
    docs = (
        (await session.execute(select(d).where(d.project_id == principal.project_id, d.latest, ~d.archived)))
        .scalars()
        .all()
    )
    label = space.label
    by_key = {doc.vector_key: doc for doc in docs}
    ready = [doc for doc in docs if doc.embedding_model == label]
    content = {
        doc.vector_key: vector for doc, vector in zip(ready, content_vectors(ready, space), strict=True)
    }
    stems: dict[str, frozenset[str]] = {}
    parent = {k: k for k in by_key}
    weakest: dict[int, float] = {}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for doc in docs:
        if doc.embedding_model != label:  # not embedded yet (the background refresh): not in the index either
            continue
        for key, _ in index.search(from_bytes(doc.embedding), CLUSTER_NEIGHBOURS + 1):
            other = by_key.get(key)
            if other is None or key == doc.vector_key or key not in content:
                continue
            cosine = float(content[key] @ content[doc.vector_key])
            score = duplicate_score(doc, other, cosine, stems, space.profile.cosine_weight)
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


async def embed_waiting(db: Database, version_ids: Sequence[str]) -> int:
    """Make the vectors of these versions now if they wait for them (a project's provider model; a failure is
    logged and left to the background embedding); cheap when none waits (one query)."""
    return await refresh_embeddings(db, pending_only=True, only=version_ids)


async def indexed_versions(session: AsyncSession, version_ids: Sequence[str]) -> set[str]:
    """Which of these versions have a search document (for the start-up backfill)."""
    if not version_ids:
        return set()
    d = SearchDocument
    rows = await session.execute(select(d.version_id).where(d.version_id.in_(list(version_ids))))
    return set(rows.scalars())


async def document_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(SearchDocument))).scalar_one())
