"""job queue: procrastinate's schema on PostgreSQL (nothing on SQLite, where jobs run in-process)

The SQL is procrastinate's own ``schema.sql`` for the pinned version (procrastinate==3.10.0), read from the
installed package. When procrastinate is upgraded, add a revision that applies the files from
``procrastinate/sql/migrations`` between the two versions (procrastinate never changes a shipped file).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy.util import await_only

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Everything procrastinate creates is named procrastinate_*: tables (their triggers and indexes go with them),
# functions, trigger functions, enum and composite types.
_DROP_ALL = """
DO $$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', obj.relname);
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', obj.signature);
    END LOOP;
    FOR obj IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
               WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                 AND (t.typtype = 'e' OR (t.typtype = 'c' AND t.typrelid IN (
                      SELECT oid FROM pg_class WHERE relkind = 'c')))
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', obj.typname);
    END LOOP;
END
$$;
"""


def _execute_script(sql: str) -> None:
    """Run a multi-statement script on the migration's connection (and transaction), as the driver sends it."""
    raw = op.get_bind().connection.driver_connection  # the asyncpg connection under SQLAlchemy
    assert raw is not None
    await_only(raw.execute(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    _execute_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _execute_script(_DROP_ALL)
