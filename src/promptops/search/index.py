"""Writes to the search index, called by the registry inside the transaction of each of its writes.

The registry passes plain values (this package sits below it and never reads its tables): the prompt's current
state and, for a new version, that version's text. One call brings every document of the prompt up to date, so
a rolled-back transaction leaves the index exactly as the registry it mirrors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.db import utcnow
from promptops.search.embed import embedder, to_bytes
from promptops.search.models import SearchDocument, SearchTerm

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


def embedding_text(description: str, body: str) -> str:
    """What a version's vector is made from: its instruction text, after the prompt's description."""
    return f"{description}\n{body}" if description else body


async def index_prompt(
    session: AsyncSession, prompt: PromptState, new: Sequence[VersionText] = (), *, scope: Scope = "all"
) -> None:
    """Add documents for ``new`` versions and bring the others up to date: ``all`` their prompt-level fields
    (name, description, tags, archived) and labels; ``version`` only which one is the latest (a new version);
    ``labels`` only the labels (a label move). Unchanged documents are not rewritten."""
    now = utcnow()
    model = embedder()
    if new:
        bodies = [body_text(v.template, v.messages) for v in new]
        vectors = model.embed([embedding_text(prompt.description, b) for b in bodies])
        for version, body, vector in zip(new, bodies, vectors, strict=True):
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
                    embedding_model=model.name,
                    embedding=to_bytes(vector),
                    changed_at=now,
                )
            )
        await session.flush()
    doc = SearchDocument
    dialect = session.get_bind().dialect.name
    if scope == "all":
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
    "INSERT INTO search_fts(rowid, project_id, name, description, tags, labels, body, variables, commit_message) "
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
    False: text(_FTS_INSERT_SELECT),
    True: text(_FTS_INSERT_SELECT + " AND version_id IN :ids").bindparams(bindparam("ids", expanding=True)),
}


async def _refresh_fts(session: AsyncSession, prompt_id: str, version_ids: Sequence[str] | None) -> None:
    """SQLite: rows of the FTS5 table (rowid = vector key) written again from their documents: the prompt's
    ``version_ids`` (``None``: all of the prompt's)."""
    some = version_ids is not None
    if some and not version_ids:
        return
    params: dict[str, object] = {"prompt_id": prompt_id}
    if some:
        params["ids"] = list(version_ids or ())
    await session.execute(_FTS_DELETE[some], params)
    await session.execute(_FTS_INSERT[some], params)
