"""Writes to the search index, called by the registry inside the transaction of each of its writes.

The registry passes plain values (this package sits below it and never reads its tables): the prompt's current
state and, for a new version, that version's text. One call brings every document of the prompt up to date, so
a rolled-back transaction leaves the index exactly as the registry it mirrors.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal, system_principal
from promptops.db import Database, utcnow
from promptops.search.embed import embedder, from_bytes, to_bytes, unit_rows
from promptops.search.models import SearchDocument, SearchSettings, SearchTerm
from promptops.search.spaces import (
    PENDING,
    RECIPE,
    ProviderEmbedding,
    Space,
    embedding_label,
    local_space,
    log_failure,
    provider,
    space_of,
    wake,
)
from promptops.tenancy.service import project_org_ids

__all__ = ["PENDING", "RECIPE", "embedding_label"]  # kept here for the modules that read them from the index

Scope = Literal["all", "version", "labels"]
_WORDS = re.compile(r"[/_.\-:]+")
_TERM = re.compile(r"[^\W\d_]{3,64}", re.UNICODE)  # words of letters, for the vocabulary


@dataclass(frozen=True)
class VersionText:
    version_id: str
    version: int
    template: str | None
    messages: Sequence[Mapping[str, Any]] | None
    variables: Sequence[str]
    commit_message: str
    model: str
    author: str | None
    content_hash: str
    created_at: datetime


@dataclass(frozen=True)
class PromptState:
    project_id: str
    prompt_id: str
    name: str
    description: str
    tags: Sequence[str]
    archived: bool
    latest_version: int
    updated_at: datetime
    labels: Mapping[str, Sequence[str]] = field(default_factory=dict)  # version id -> label names


def vector_key(version_id: str) -> int:
    """A 63-bit integer standing for the version in the vector index."""
    return int.from_bytes(hashlib.blake2b(version_id.encode(), digest_size=8).digest(), "big") >> 1


def name_words(name: str) -> str:
    """``support/triage-v2`` is searchable as ``support triage v2`` (and as itself)."""
    return f"{name} {_WORDS.sub(' ', name)}"


def body_text(template: str | None, messages: Sequence[Mapping[str, Any]] | None) -> str:
    if template is not None:
        return template
    lines = []
    for message in messages or []:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        lines.append(f"{message.get('role', '')}: {content or ''}")
    return "\n".join(lines)


def content_text(description: str, body: str) -> str:
    """What a prompt says: its description, then its instruction text (what duplicates are compared on: a copy
    is usually saved under another name)."""
    return f"{description}\n{body}" if description else body


def name_text(name: str) -> str:
    """``support/triage-ticket`` -> ``support triage ticket``: a name says what a prompt is for, and searches name
    it."""
    return _WORDS.sub(" ", name).strip()


def make_vectors(
    items: Sequence[tuple[str, str, str]], contents: Sequence[bytes | None] | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The search and content vectors of (name, description, body) items by the deployment's model. The content
    vector embeds the description and text; the search vector (what the vector index holds) adds the vector of
    the name's words with the model's ``name_weight``. ``contents`` gives content vectors already made by this
    model (None: make it), so a rename embeds only the name. CPU-bound: call it in a worker thread from async
    code."""
    model = embedder()
    known = list(contents) if contents is not None else [None] * len(items)
    content = np.zeros((len(items), model.dimensions), dtype=np.float32)
    missing = [i for i, blob in enumerate(known) if blob is None]
    for i, blob in enumerate(known):
        if blob is not None:
            content[i] = from_bytes(blob)
    if missing:
        content[missing] = model.embed([content_text(items[i][1], items[i][2]) for i in missing])
    names = sorted({name_text(item[0]) for item in items} - {""})
    return _with_names(
        items, content, dict(zip(names, model.embed(names), strict=True)), model.profile.name_weight
    )


def _with_names(
    items: Sequence[tuple[str, str, str]],
    content: NDArray[np.float32],
    by_name: Mapping[str, NDArray[np.float32]],
    weight: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    search = content.copy()
    for i, item in enumerate(items):
        vector = by_name.get(name_text(item[0]))
        if vector is not None:
            search[i] += weight * vector
    return unit_rows(search), content


async def provider_vectors(
    embedding: ProviderEmbedding, principal: Principal, space: Space, items: Sequence[tuple[str, str, str]]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """make_vectors with a project's provider model: one batch of calls for the contents and the names."""
    texts = [content_text(description, body) for _, description, body in items]
    names = sorted({name_text(item[0]) for item in items} - {""})
    made = await embedding(principal, space, texts + names)
    by_name = dict(zip(names, made[len(texts) :], strict=True))
    return _with_names(items, made[: len(texts)], by_name, space.profile.name_weight)


async def index_prompt(
    session: AsyncSession,
    prompt: PromptState,
    new: Sequence[VersionText] = (),
    *,
    scope: Scope = "all",
    embed: bool = True,
) -> None:
    """Add documents for ``new`` versions and bring the others up to date: ``all`` their prompt-level fields
    (name, description, tags, archived) and labels; ``version`` only which one is the latest (a new version);
    ``labels`` only the labels (a label move). Unchanged documents are not rewritten. ``embed`` False (a bulk
    backfill): the new documents get no vectors here; refresh_embeddings makes them (PENDING until then)."""
    now = utcnow()
    space = await space_of(session, prompt.project_id)
    if new:
        bodies = [body_text(v.template, v.messages) for v in new]
        if embed and space.local:
            label = space.label
            made = await asyncio.to_thread(
                make_vectors, [(prompt.name, prompt.description, b) for b in bodies]
            )
            vectors: list[bytes] = [to_bytes(v) for v in made[0]]
            contents: list[bytes | None] = [to_bytes(c) for c in made[1]]
        else:  # a bulk backfill, or a provider model: never called inside a write (the refresh calls it)
            label, vectors, contents = PENDING, [b""] * len(new), [None] * len(new)
            wake()
        for version, body, vector, content in zip(new, bodies, vectors, contents, strict=True):
            session.add(
                SearchDocument(
                    version_id=version.version_id,
                    project_id=prompt.project_id,
                    prompt_id=prompt.prompt_id,
                    vector_key=vector_key(version.version_id),
                    prompt_name=prompt.name,
                    name_words=name_words(prompt.name),
                    version=version.version,
                    latest=version.version == prompt.latest_version,
                    archived=prompt.archived,
                    description=prompt.description,
                    tags=" ".join(prompt.tags),
                    labels=" ".join(sorted(prompt.labels.get(version.version_id, ()))),
                    body=body,
                    variables=" ".join(version.variables),
                    commit_message=version.commit_message,
                    model=version.model,
                    author=version.author,
                    content_hash=version.content_hash,
                    created_at=version.created_at,
                    updated_at=prompt.updated_at,
                    embedding_model=label,
                    embedding=vector,
                    content_embedding=content,
                    changed_at=now,
                )
            )
        await session.flush()
    doc = SearchDocument
    dialect = session.get_bind().dialect.name
    if scope == "all":
        await _reembed_renamed(session, prompt, space, now)
        await session.execute(
            update(doc)
            .where(doc.prompt_id == prompt.prompt_id)
            .values(
                prompt_name=prompt.name,
                name_words=name_words(prompt.name),
                latest=doc.version == prompt.latest_version,
                archived=prompt.archived,
                description=prompt.description,
                tags=" ".join(prompt.tags),
                updated_at=prompt.updated_at,
                changed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    elif scope == "version":  # the version before the new one is not the latest any more
        await session.execute(
            update(doc)
            .where(
                doc.prompt_id == prompt.prompt_id, doc.latest.is_(True), doc.version != prompt.latest_version
            )
            .values(latest=False, changed_at=now)
            .execution_options(synchronize_session=False)
        )
    touched = {v.version_id for v in new}
    if scope in ("all", "labels"):
        had = set(
            (
                await session.execute(
                    select(doc.version_id).where(doc.prompt_id == prompt.prompt_id, doc.labels != "")
                )
            ).scalars()
        )
        wanted = {vid: " ".join(sorted(labels)) for vid, labels in prompt.labels.items() if labels}
        for version_id in had | set(wanted):
            await session.execute(
                update(doc)
                .where(doc.version_id == version_id, doc.prompt_id == prompt.prompt_id)
                .values(labels=wanted.get(version_id, ""))
                .execution_options(synchronize_session=False)
            )
        touched |= had | set(wanted)
    await _add_terms(
        session,
        dialect,
        prompt.project_id,
        [name_words(prompt.name), prompt.description, " ".join(prompt.tags)]
        + [body_text(v.template, v.messages) for v in new],
    )
    if dialect == "sqlite":
        await _refresh_fts(session, prompt.prompt_id, None if scope == "all" else sorted(touched))


_DOCS = cast(Table, SearchDocument.__table__)
_SET_VECTOR = (
    update(_DOCS)
    .where(_DOCS.c.version_id == bindparam("b_version_id"))
    .values(
        embedding=bindparam("b_embedding"),
        content_embedding=bindparam("b_content"),
        embedding_model=bindparam("b_label"),
        changed_at=bindparam("b_now"),
    )
)


async def _reembed_renamed(session: AsyncSession, prompt: PromptState, space: Space, now: datetime) -> None:
    """Vectors of the prompt's documents made from another name or description, made again (a new name alone
    keeps the content vectors and embeds only the name); with a provider model they wait for the background
    embedding."""
    doc = SearchDocument
    rows = (
        await session.execute(
            select(
                doc.version_id, doc.body, doc.description, doc.content_embedding, doc.embedding_model
            ).where(
                doc.prompt_id == prompt.prompt_id,
                or_(doc.prompt_name != prompt.name, doc.description != prompt.description),
            )
        )
    ).all()
    if not rows:
        return
    if not space.local:
        await session.execute(
            _SET_VECTOR,
            [
                {
                    "b_version_id": r.version_id,
                    "b_embedding": b"",
                    "b_content": None,
                    "b_label": PENDING,
                    "b_now": now,
                }
                for r in rows
            ],
        )
        wake()
        return
    label = space.label
    keep = [
        r.content_embedding if r.description == prompt.description and r.embedding_model == label else None
        for r in rows
    ]
    vectors, contents = await asyncio.to_thread(
        make_vectors, [(prompt.name, prompt.description, r.body) for r in rows], keep
    )
    await session.execute(
        _SET_VECTOR,
        [
            {
                "b_version_id": row.version_id,
                "b_embedding": to_bytes(v),
                "b_content": to_bytes(c),
                "b_label": label,
                "b_now": now,
            }
            for row, v, c in zip(rows, vectors, contents, strict=True)
        ],
    )


_SETTINGS = cast(Table, SearchSettings.__table__)


def _stale(pending_only: bool) -> Any:
    """Documents whose vectors are not their project's current model's (or that wait for theirs)."""
    if pending_only:
        return _DOCS.c.embedding_model == PENDING
    expected = func.coalesce(_SETTINGS.c.label, local_space().label)
    return or_(_DOCS.c.embedding_model != expected, _DOCS.c.content_embedding.is_(None))


async def stale_embeddings(db: Database) -> int:
    """How many documents have vectors of another model or recipe than their project's (or none yet)."""
    async with db.transaction() as session:
        stale = await session.scalar(
            select(func.count())
            .select_from(_DOCS.outerjoin(_SETTINGS, _SETTINGS.c.project_id == _DOCS.c.project_id))
            .where(_stale(False))
        )
    return int(stale or 0)


async def refresh_embeddings(
    db: Database,
    batch: int = 64,
    *,
    pending_only: bool = False,
    skip: Collection[str] = (),
    failed: set[str] | None = None,
    only: Sequence[str] | None = None,
) -> int:
    """Embed every document whose vectors were made by another model or recipe than its project's (see RECIPE),
    or that waits for them (``pending_only``: only those, found by an index), in short transactions of ``batch``
    documents; returns how many. The deployment's model runs in a worker thread; a project's provider model is
    called with no transaction open. A project whose provider fails is logged, added to ``failed`` and left for a
    later pass (as are the projects in ``skip``); the others go on. The vector indexes pick the new vectors up
    like any change (until then a stale document is left out of semantic results, never mixed in). Run in the
    background (lifecycle); cheap when none is stale (one query). ``only``: just these versions (a save that wants
    its near-duplicates at once)."""
    done = 0
    passed: set[str] = set(skip)
    while True:
        async with db.transaction() as session:
            stmt = (
                select(
                    _DOCS.c.version_id,
                    _DOCS.c.project_id,
                    _DOCS.c.prompt_name,
                    _DOCS.c.description,
                    _DOCS.c.body,
                )
                .select_from(_DOCS.outerjoin(_SETTINGS, _SETTINGS.c.project_id == _DOCS.c.project_id))
                .where(_stale(pending_only))
                .order_by(_DOCS.c.latest.desc(), _DOCS.c.version_id)
                .limit(batch)
            )
            if passed:
                stmt = stmt.where(_DOCS.c.project_id.not_in(sorted(passed)))
            if only is not None:
                stmt = stmt.where(_DOCS.c.version_id.in_(list(only)))
            rows = (await session.execute(stmt)).all()
            by_project: dict[str, list[Any]] = {}
            for row in rows:
                by_project.setdefault(row.project_id, []).append(row)
            spaces = {pid: await space_of(session, pid) for pid in by_project}
            orgs = await project_org_ids(session, [p for p, sp in spaces.items() if not sp.local])
        if not rows:
            return done
        for project_id, group in by_project.items():
            space = spaces[project_id]
            items = [(r.prompt_name, r.description, r.body) for r in group]
            if space.local:
                vectors, contents = await asyncio.to_thread(make_vectors, items)
            else:
                embedding = provider()
                if embedding is None or project_id not in orgs:
                    passed.add(project_id)
                    continue
                try:
                    vectors, contents = await provider_vectors(
                        embedding, system_principal(project_id, orgs[project_id]), space, items
                    )
                except Exception as exc:  # the provider or its answer; the project waits for a later pass
                    log_failure(project_id, space, exc)
                    passed.add(project_id)
                    if failed is not None:
                        failed.add(project_id)
                    continue
            async with db.transaction(write=True) as session:
                await session.execute(  # unless renamed meanwhile (the rename embedded it again)
                    _SET_VECTOR.where(
                        _DOCS.c.prompt_name == bindparam("b_name"),
                        _DOCS.c.description == bindparam("b_description"),
                    ),
                    [
                        {
                            "b_name": r.prompt_name,
                            "b_description": r.description,
                            "b_version_id": r.version_id,
                            "b_embedding": to_bytes(v),
                            "b_content": to_bytes(c),
                            "b_label": space.label,
                            "b_now": utcnow(),
                        }
                        for r, v, c in zip(group, vectors, contents, strict=True)
                    ],
                )
            done += len(group)


async def _add_terms(session: AsyncSession, dialect: str, project_id: str, texts: Sequence[str]) -> None:
    terms = sorted({t.lower() for text_ in texts for t in _TERM.findall(text_)})
    if not terms:
        return
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    # one compiled statement, executed for many rows
    await session.execute(
        insert(SearchTerm).on_conflict_do_nothing(), [{"project_id": project_id, "term": t} for t in terms]
    )


_FTS_INSERT_SELECT = (
    "INSERT INTO {table}(rowid, project_id, name, description, tags, labels, body, variables, commit_message) "
    "SELECT vector_key, project_id, name_words, description, tags, labels, body, variables, commit_message "
    "FROM search_documents WHERE prompt_id = :prompt_id"
)
_FTS_DELETE = {
    False: text(
        "DELETE FROM search_fts WHERE rowid IN "
        "(SELECT vector_key FROM search_documents WHERE prompt_id = :prompt_id)"
    ),
    True: text(
        "DELETE FROM search_fts WHERE rowid IN "
        "(SELECT vector_key FROM search_documents WHERE prompt_id = :prompt_id AND version_id IN :ids)"
    ).bindparams(bindparam("ids", expanding=True)),
}
_FTS_INSERT = {
    False: text(_FTS_INSERT_SELECT.format(table="search_fts")),
    True: text(_FTS_INSERT_SELECT.format(table="search_fts") + " AND version_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
}
# the latest, non-archived document of the prompt (what a default search reads; migration 0021)
_LATEST_DELETE = text(
    "DELETE FROM search_fts_latest WHERE rowid IN "
    "(SELECT vector_key FROM search_documents WHERE prompt_id = :prompt_id)"
)
_LATEST_INSERT = text(_FTS_INSERT_SELECT.format(table="search_fts_latest") + " AND latest AND NOT archived")


async def _refresh_fts(session: AsyncSession, prompt_id: str, version_ids: Sequence[str] | None) -> None:
    """SQLite: rows of the FTS5 tables (rowid = vector key) written again from their documents: in
    ``search_fts`` the prompt's ``version_ids`` (``None``: all of the prompt's), in ``search_fts_latest`` the
    prompt's one latest, non-archived document."""
    params: dict[str, object] = {"prompt_id": prompt_id}
    await session.execute(_LATEST_DELETE, params)
    await session.execute(_LATEST_INSERT, params)
    some = version_ids is not None
    if some and not version_ids:
        return
    if some:
        params["ids"] = list(version_ids or ())
    await session.execute(_FTS_DELETE[some], params)
    await session.execute(_FTS_INSERT[some], params)
