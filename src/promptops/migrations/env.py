"""Alembic environment: async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from promptops.config import normalize_database_url
from promptops.models import metadata

config = context.config


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Autogenerate compares our models only: procrastinate's tables come from migration 0004 (its own SQL); the
    search index's SQLite FTS5 tables, its PostgreSQL tsvector column and indexes from 0011 and 0021 (raw SQL
    too)."""
    name = name or ""
    if type_ == "table":
        return not name.startswith(("procrastinate_", "search_fts"))
    if type_ == "column":
        return name != "tsv"
    if type_ == "index":
        return name not in (
            "ix_search_documents_tsv",
            "ix_search_documents_name_trgm",
            "ix_search_documents_tsv_latest",
        )
    return True


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = normalize_database_url(config.get_main_option("sqlalchemy.url") or "")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
