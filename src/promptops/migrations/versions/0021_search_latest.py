"""search_latest: a full-text index over only what a default search reads (each prompt's latest version, not
archived)

A search looks at each prompt's latest version unless it asks for every version (``allVersions``) or a label.
With several versions per prompt, most rows of the full-text index are older versions that such a search only
skips, after ranking them: the ranking cost grows with every version ever saved. So:

* SQLite: a second FTS5 table ``search_fts_latest`` (same columns and tokenizer as ``search_fts``, rowid = the
  document's vector key) holding the latest, non-archived documents; kept in the transaction of every registry
  write like ``search_fts`` (promptops.search.index), filled here from the existing documents.
* PostgreSQL: a partial GIN index on ``tsv`` for ``latest AND NOT archived`` rows, which the planner picks for
  queries carrying that predicate.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts_latest USING fts5("
            "project_id UNINDEXED, name, description, tags, labels, body, variables, commit_message, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "INSERT INTO search_fts_latest(rowid, project_id, name, description, tags, labels, body, variables, "
            "commit_message) SELECT vector_key, project_id, name_words, description, tags, labels, body, "
            "variables, commit_message FROM search_documents WHERE latest AND NOT archived"
        )
    else:
        op.execute(
            "CREATE INDEX ix_search_documents_tsv_latest ON search_documents USING gin (tsv) "
            "WHERE latest AND NOT archived"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts_latest")
    else:
        op.execute("DROP INDEX IF EXISTS ix_search_documents_tsv_latest")
