"""Sealing personal data written before encryption existed (rows from before migration 0019).

The migration cannot do it: encryption needs the master key, which only the running server has. So every
start seals what is still plaintext (users without an email hash, feedback without a subject), in batches of
short write transactions; once done it costs two indexed queries that find nothing. Both databases alike.

Updating a row in place leaves its old bytes behind (SQLite free pages and WAL frames, PostgreSQL dead
tuples), so when anything was sealed the affected storage is rewritten: ``VACUUM`` and a truncating WAL
checkpoint on SQLite, ``VACUUM FULL`` of the two tables on PostgreSQL (once, at start, before serving).
"""

from __future__ import annotations

from promptops.auth import service as auth_service
from promptops.db import Database
from promptops.feedback import service as feedback_service


async def seal_plaintext(db: Database) -> tuple[int, int]:
    """(users, feedback records) sealed now."""
    async with db.transaction(write=True) as session:
        users = await auth_service.seal_plaintext_users(session)
    records = 0
    while True:
        async with db.transaction(write=True) as session:
            done = await feedback_service.seal_plaintext_feedback(session)
        records += done
        if done == 0:
            break
    if users or records:
        await _rewrite_storage(db)
    return users, records


async def _rewrite_storage(db: Database) -> None:
    """Drop the plaintext the sealed rows' old versions left in the database files."""
    async with db.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if db.is_sqlite:
            await auto.exec_driver_sql("VACUUM")
            await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            await auto.exec_driver_sql("VACUUM FULL users, feedback")
