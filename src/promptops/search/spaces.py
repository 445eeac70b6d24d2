"""Which embedding model a project's search uses: its *space*.

By default every project uses the deployment's offline model (``PROMPTOPS_SEARCH_EMBEDDINGS``, promptops.search.
embed). A project can choose a provider model instead (``PUT /api/v1/search/settings``): one of its provider
connections that can embed (OpenAI, Azure OpenAI or any OpenAI-compatible endpoint) and a model name, such as
``text-embedding-3-small``. Vectors of two models are never compared: a document's ``embedding_model`` holds the
label of the space that made its vectors, and only documents whose label is their project's current one are
searched by meaning.

A provider model is a network call, so it never runs inside a write: documents of such a project are saved
waiting for their vectors (``PENDING``) and the background embedding (index.refresh_embeddings) makes them in
batches through the model caller, each call recorded as a Run of source ``search`` (its tokens and cost show with
the project's other runs). Search embeds the query before it opens its transaction. A provider that fails leaves
the project searchable by words; its documents are embedded when the provider answers again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.cache import TTLCache
from promptops.db import utcnow
from promptops.errors import ValidationProblem
from promptops.governance import audit
from promptops.logging import log
from promptops.providers import service as providers
from promptops.providers.base import ProviderError
from promptops.providers.calls import CallContext, ModelCaller, Target
from promptops.search.embed import Profile, clean, embedder, unit_rows
from promptops.search.models import SearchDocument, SearchSettings

# Stored with each vector: the model and the recipe of its vectors (index.make_vectors). Documents with another value
# are embedded again in the background after start-up (index.refresh_embeddings), so a new model or recipe reaches
# existing prompts.
RECIPE = "content+name"
PENDING = "pending"  # the embedding_model of a document whose vectors the background refresh has not made yet
EMBEDDABLE_TYPES = (
    "openai",
    "azure_openai",
)  # adapters that speak an embeddings API (and the built-in local)
MAX_TEXT_CHARS = 8000  # a text sent to a provider model is cut here (OpenAI's models take 8,191 tokens)
PROVIDER_BATCH = 64  # texts per provider call
# A provider model's cosines are read with these unless the project sets its own thresholds. They are starting
# points, not measurements: cosines of unrelated texts are higher for some models than others, so a project that
# uses a provider model should check its duplicates report and set duplicateScore / minSimilarity to suit.
PROVIDER_PROFILE = Profile(
    name_weight=0.3,
    cosine_weight=0.5,
    duplicate_score=0.55,
    min_similarity=0.4,
    hybrid_min_similarity=0.3,
    rrf_k=60,
    semantic_weight=1.0,
)


def embedding_label(model_name: str) -> str:
    return f"{model_name}:{RECIPE}"


def provider_label(project_id: str, connection: str, model: str) -> str:
    """A project's provider model's label: the project's own (a connection name means another endpoint and key in
    another project, so their vectors, and the query vectors cached for them, are never shared)."""
    digest = hashlib.blake2b(f"{project_id}\n{connection}\n{model}".encode(), digest_size=8).hexdigest()
    return f"provider-{digest}:{RECIPE}"


@dataclass(frozen=True)
class Space:
    """The model a project's vectors come from and the constants its cosines are read with."""

    label: str  # what the documents' embedding_model holds when their vectors are current
    profile: Profile
    connection: str | None = None  # None: the deployment's offline model
    model: str | None = None

    @property
    def local(self) -> bool:
        return self.connection is None

    @property
    def description(self) -> str:
        return embedder().name if self.connection is None else f"{self.connection}/{self.model}"


def local_space() -> Space:
    model = embedder()
    return Space(embedding_label(model.name), model.profile)


def _space(row: SearchSettings | None) -> Space:
    if row is None:
        return local_space()
    profile = PROVIDER_PROFILE
    changes: dict[str, float] = {}
    if row.duplicate_score is not None:
        changes["duplicate_score"] = row.duplicate_score
    if row.min_similarity is not None:
        changes["min_similarity"] = row.min_similarity
    if changes:
        profile = Profile(**{**profile.__dict__, **changes})
    return Space(row.label, profile, row.connection, row.model)


# project id -> its space, for a few seconds: search reads it on every request; a change made in this process is
# seen at once (forget), one made by another process within SETTINGS_TTL seconds.
SETTINGS_TTL = 5.0
_spaces: TTLCache[Space] = TTLCache(ttl=SETTINGS_TTL)


async def spaces_of(session: AsyncSession, project_ids: Iterable[str]) -> dict[str, Space]:
    """Project id -> the space its search uses."""
    ids = sorted(set(project_ids))
    found = {pid: space for pid in ids if (space := _spaces.get(pid)) is not None}
    found = {pid: local_space() if space.local else space for pid, space in found.items()}
    missing = [pid for pid in ids if pid not in found]
    if missing:
        rows = {
            row.project_id: row
            for row in (
                await session.execute(select(SearchSettings).where(SearchSettings.project_id.in_(missing)))
            ).scalars()
        }
        for pid in missing:
            found[pid] = _space(rows.get(pid))
            _spaces.put(pid, found[pid])
    return {pid: found[pid] for pid in ids}


def cached_space(project_id: str) -> Space | None:
    """The project's space if this process knows it (None: not looked up in the last few seconds)."""
    found = _spaces.get(project_id)
    return None if found is None else (local_space() if found.local else found)


async def space_of(session: AsyncSession, project_id: str) -> Space:
    return (await spaces_of(session, [project_id]))[project_id]


def forget(project_id: str | None = None) -> None:
    """Drop the cached space of a project (None: of every project; when the deployment's model changes)."""
    _spaces.invalidate(lambda key: project_id is None or key == project_id)


# --- the provider -----------------------------------------------------------------------------------------------


class ProviderEmbedding:
    """Texts embedded by a project's provider model through the model caller (its connections, keys, SSRF guard,
    concurrency limits and run recording), in batches; unit-length float32 rows."""

    def __init__(self, caller: ModelCaller) -> None:
        self.caller = caller

    async def __call__(self, principal: Principal, space: Space, texts: Sequence[str]) -> NDArray[np.float32]:
        if space.connection is None or space.model is None:
            raise ValueError("the deployment's model is not a provider model")
        target = Target(provider=space.connection, model=space.model)
        context = CallContext(principal=principal, source="search")
        rows: list[list[float]] = []
        prepared = [(clean(t) or "(empty)")[:MAX_TEXT_CHARS] for t in texts]
        for start in range(0, len(prepared), PROVIDER_BATCH):
            outcome = await self.caller.embed(context, target, prepared[start : start + PROVIDER_BATCH])
            if outcome.error is not None:
                raise outcome.error
            rows.extend(outcome.vectors)
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except ValueError as exc:
            raise ProviderError(f"{space.description} returned vectors of different lengths") from exc
        if matrix.ndim != 2 or matrix.shape[0] != len(texts) or matrix.shape[1] == 0:
            raise ProviderError(f"{space.description} returned no usable vectors")
        return unit_rows(matrix)


_provider: ProviderEmbedding | None = None


def configure(caller: ModelCaller | None) -> None:
    """The model caller provider vectors are made through (set by the runtime; None: provider models are not
    called by this process, its projects' documents wait for a process that can)."""
    global _provider
    _provider = None if caller is None else ProviderEmbedding(caller)


def provider() -> ProviderEmbedding | None:
    return _provider


# Set after a write that left documents waiting for their vectors, so the background embedding starts at once
# (it also looks every few seconds, for writes of other processes); made by the running embedding task.
_wakeup: asyncio.Event | None = None


def wake() -> None:
    if _wakeup is not None:
        _wakeup.set()


def wakeup_event() -> asyncio.Event:
    """A new event for this process's background embedding to wait on (one per running server)."""
    global _wakeup
    _wakeup = asyncio.Event()
    return _wakeup


# --- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    project_id: str
    space: Space
    row: SearchSettings | None

    @property
    def dimensions(self) -> int | None:
        """The length of the project's vectors (a provider model's, as its check call answered; None: unknown)."""
        return embedder().dimensions if self.row is None else self.row.dimensions


async def get_settings(session: AsyncSession, principal: Principal) -> Settings:
    row = await session.get(SearchSettings, principal.project_id)
    return Settings(principal.project_id, _space(row), row)


def _check_threshold(name: str, value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:
        raise ValidationProblem(f"{name} must be above 0 and at most 1, got {value}", code="bad_threshold")


async def check_connection(session: AsyncSession, principal: Principal, connection: str, model: str) -> None:
    """The connection exists in the project and speaks an embeddings API; the model is allowed on it."""
    if not model.strip():
        raise ValidationProblem("Name the embedding model ('model')", code="invalid_embedding_model")
    if connection == providers.LOCAL_NAME:
        return
    row = await providers.get_connection(session, principal, connection)
    if row.type not in EMBEDDABLE_TYPES:
        raise ValidationProblem(
            f"Connection {connection!r} ({row.type}) cannot embed text; use an OpenAI, Azure OpenAI or "
            "OpenAI-compatible connection",
            code="embeddings_not_supported",
        )
    allowed = list(row.allowed_models or [])
    if allowed and model not in allowed:
        raise ValidationProblem(
            f"Model {model!r} is not allowed on connection {connection!r}; allowed: {', '.join(allowed)}",
            code="model_not_allowed",
        )


async def probe(principal: Principal, connection: str, model: str) -> int:
    """Embed one text with the model (outside any transaction): a wrong key, URL or model name fails here, with
    the provider's error, instead of in the background later. Returns the model's dimensions."""
    embedding = provider()
    if embedding is None:
        raise ProviderError("This process cannot call provider models", code="provider_unavailable")
    space = Space(
        provider_label(principal.project_id, connection, model), PROVIDER_PROFILE, connection, model
    )
    return int((await embedding(principal, space, ["Summarise a support ticket in one sentence."])).shape[1])


async def set_settings(
    session: AsyncSession,
    principal: Principal,
    *,
    connection: str,
    model: str,
    duplicate_score: float | None = None,
    min_similarity: float | None = None,
    dimensions: int | None = None,
) -> Settings:
    """Use a provider model for the project's search (audited as ``SearchEmbeddingsChanged``). When the model
    changes, every document of the project waits for new vectors (searched by words meanwhile), which the
    background embedding makes."""
    _check_threshold("duplicateScore", duplicate_score)
    _check_threshold("minSimilarity", min_similarity)
    await check_connection(session, principal, connection, model)
    row = await session.get(SearchSettings, principal.project_id)
    before = None if row is None else {"connection": row.connection, "model": row.model}
    label = provider_label(principal.project_id, connection, model)
    if row is None:
        row = SearchSettings(project_id=principal.project_id)
        session.add(row)
    changed = row.label != label
    row.connection, row.model, row.label = connection, model, label
    row.duplicate_score, row.min_similarity = duplicate_score, min_similarity
    row.dimensions = dimensions
    row.updated_by, row.updated_at = principal.id, utcnow()
    await session.flush()
    waiting = await _renew(session, principal.project_id) if changed else 0
    await audit.record(
        session,
        principal,
        "SearchEmbeddingsChanged",
        data={
            "connection": connection,
            "model": model,
            "duplicateScore": duplicate_score,
            "minSimilarity": min_similarity,
            "from": before,
            "documentsToEmbed": waiting,
        },
    )
    forget(principal.project_id)
    return Settings(principal.project_id, _space(row), row)


async def reset_settings(session: AsyncSession, principal: Principal) -> Settings:
    """Back to the deployment's offline model (audited as ``SearchEmbeddingsChanged`` with a null model)."""
    row = await session.get(SearchSettings, principal.project_id)
    if row is not None:
        before = {"connection": row.connection, "model": row.model}
        await session.delete(row)
        await session.flush()
        waiting = await _renew(session, principal.project_id)
        await audit.record(
            session,
            principal,
            "SearchEmbeddingsChanged",
            data={"connection": None, "model": None, "from": before, "documentsToEmbed": waiting},
        )
    forget(principal.project_id)
    return Settings(principal.project_id, local_space(), None)


async def _renew(session: AsyncSession, project_id: str) -> int:
    """Every document of the project waits for vectors of its new model."""
    result = await session.execute(
        update(SearchDocument)
        .where(SearchDocument.project_id == project_id)
        .values(embedding_model=PENDING, embedding=b"", content_embedding=None, changed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    wake()
    return int(getattr(result, "rowcount", 0) or 0)


async def waiting_documents(session: AsyncSession, project_id: str) -> int:
    """How many of the project's documents wait for their vectors."""
    count = await session.scalar(
        select(func.count())
        .select_from(SearchDocument)
        .where(SearchDocument.project_id == project_id, SearchDocument.embedding_model == PENDING)
    )
    return int(count or 0)


def log_failure(project_id: str, space: Space, error: Exception) -> None:
    log.warning(
        "search_provider_embedding_failed",
        project_id=project_id,
        model=space.description,
        error_type=type(error).__name__,
        code=getattr(error, "code", None),
    )
