"""search_documents: one row per prompt version for full-text and semantic search; search_terms: the words
each project's prompts use, for correcting misspelled query words

SQLite gets an FTS5 table (``search_fts``, rowid = the document's vector key, Porter stemming, its own copy of
the text for snippets); PostgreSQL a stored
generated ``tsvector`` (name A, description and tags B, text and variables C, labels and commit message D) with a
GIN index and a trigram index on the name words for typos (``pg_trgm`` when the server has it). Existing versions
are indexed by the server at start-up (their vectors need the embedding model).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from promptops.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSV = (
    "setweight(to_tsvector('english'::regconfig, name_words), 'A') || "
    "setweight(to_tsvector('english'::regconfig, description || ' ' || tags), 'B') || "
    "setweight(to_tsvector('english'::regconfig, body || ' ' || variables), 'C') || "
    "setweight(to_tsvector('english'::regconfig, labels || ' ' || commit_message), 'D')"
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column(
            "version_id",
            sa.String(length=40),
            sa.ForeignKey("prompt_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "project_id",
            sa.String(length=40),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "prompt_id", sa.String(length=40), sa.ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("vector_key", sa.BigInteger(), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("name_words", sa.String(length=400), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=40), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("embedding_model", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_search_documents_project_changed", "search_documents", ["project_id", "changed_at"])
    op.create_index("ix_search_documents_prompt", "search_documents", ["prompt_id"])
    op.create_index("ix_search_documents_vector_key", "search_documents", ["vector_key"], unique=True)
    op.create_table(
        "search_terms",
        sa.Column(
            "project_id",
            sa.String(length=40),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("term", sa.String(length=64), primary_key=True),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "project_id UNINDEXED, name, description, tags, labels, body, variables, commit_message, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(f"ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({TSV}) STORED")
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")
        op.execute(
            "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; "
            "EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm is not available: no typo matching'; END $$"
        )
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN "
            "CREATE INDEX ix_search_documents_name_trgm ON search_documents USING gin (name_words gin_trgm_ops); "
            "END IF; END $$"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_terms")
    op.drop_table("search_documents")
