"""The search index: one document per prompt version, kept in the transaction of every registry write.

Full text: on SQLite an FTS5 table (``search_fts``, created by the migration) holds the same words, and a second
one (``search_fts_latest``, migration 0021) only each prompt's latest, non-archived document, which default
searches read; on PostgreSQL the ``tsv`` column (a stored generated ``tsvector`` with a GIN index, and a partial
GIN index over the latest, non-archived rows) does. The
vector of each version's text is stored here too; the approximate-nearest-neighbour index in memory (and on disk)
is built from these rows and catches up with them, so the database stays the one source of truth.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, UTCDateTime, utcnow


class SearchDocument(Base):
    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_project_changed", "project_id", "changed_at"),
        Index("ix_search_documents_prompt", "prompt_id"),
        Index("ix_search_documents_vector_key", "vector_key", unique=True),
        # the background embedding finds documents waiting for their vectors (index.PENDING) by this
        Index("ix_search_documents_embedding_model", "embedding_model"),
    )

    version_id: Mapped[str] = mapped_column(
        ForeignKey("prompt_versions.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    # 63-bit key of the version in the vector index and the SQLite FTS5 rowid (from its id)
    vector_key: Mapped[int] = mapped_column(BigInteger)
    prompt_name: Mapped[str] = mapped_column(String(200))
    name_words: Mapped[str] = mapped_column(String(400))
    version: Mapped[int] = mapped_column(Integer)
    latest: Mapped[bool] = mapped_column(Boolean)
    archived: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")  # space-separated
    labels: Mapped[str] = mapped_column(Text, default="")  # space-separated labels on this version
    body: Mapped[str] = mapped_column(Text, default="")  # template, or the messages as "role: content" lines
    variables: Mapped[str] = mapped_column(Text, default="")
    commit_message: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    author: Mapped[str | None] = mapped_column(String(40), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the prompt's, for the "updated" filter
    embedding_model: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # search vector: content and name (index.make_vectors)
    # vector of the description and text alone, for duplicate scores (None: made by a release before 0023)
    content_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SearchTerm(Base):
    """Every word the project's prompts have used (names, descriptions, text): the vocabulary that misspelled
    query words are corrected against. Only added to (a word no prompt uses any more costs nothing)."""

    __tablename__ = "search_terms"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)


class SearchSettings(Base):
    """A project's own embedding model for search: a provider connection of the project and one of its embedding
    models (such as OpenAI's ``text-embedding-3-small``). No row: the deployment's offline model
    (PROMPTOPS_SEARCH_EMBEDDINGS). ``label`` is what the project's documents' ``embedding_model`` must hold for
    their vectors to be used; documents with another are embedded again in the background."""

    __tablename__ = "search_settings"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    connection: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(64))
    # the thresholds cosines of this model are read with (None: the provider defaults, spaces.PROVIDER_PROFILE)
    duplicate_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    min_similarity: Mapped[float | None] = mapped_column(Float, nullable=True)
    dimensions: Mapped[int | None] = mapped_column(
        Integer, nullable=True
    )  # of its vectors, from the check call
    updated_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
