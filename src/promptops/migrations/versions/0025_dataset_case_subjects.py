"""datasets: cases copied from sealed runs are sealed under the run's subject

``dataset_cases.subject_id``: the data subject (an end user ``eus_...`` or the project's run-payload subject
``rpl_...``) whose key seals the case's input and expected output (promptops.datasets.sealing), so erasing the
subject shreds the copies with the runs; indexed with the project, by which a subject's access export finds them.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 21:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_cases") as batch:
        batch.add_column(sa.Column("subject_id", sa.String(64), nullable=True))
    op.create_index("ix_dataset_cases_subject", "dataset_cases", ["project_id", "subject_id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_cases_subject", table_name="dataset_cases")
    with op.batch_alter_table("dataset_cases") as batch:
        batch.drop_column("subject_id")
