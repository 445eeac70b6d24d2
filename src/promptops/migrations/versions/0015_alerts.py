"""alerts: scheduled regression evaluations and alerting

``eval_schedules`` (a cron expression per prompt label re-running a pinned dataset; ``next_run_at`` is what the
periodic task claims) and ``eval_schedule_runs`` (their history: baseline, pass, regressed, failed).
``alert_rules``, ``alerts`` (``open_key`` = ``rule_id|subject`` while open, NULL once resolved; its unique index
keeps one open alert per rule and subject), ``alert_events`` (each alert's history), ``alert_channels`` (webhook,
Slack, email; secrets encrypted) and ``alert_deliveries`` (the delivery log and retry queue).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "eval_schedules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=63), nullable=False),
        sa.Column("cron", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("dataset_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_name", sa.String(length=200), nullable=False),
        sa.Column("dataset_version_id", sa.String(length=40), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("scorers", JSON, nullable=False),
        sa.Column("models", JSON, nullable=False),
        sa.Column("pass_threshold", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=True),
        sa.Column("last_run_at", UTCDateTime(), nullable=True),
        sa.Column("baseline_eval_run_id", sa.String(length=40), nullable=True),
        sa.Column("principal", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _project_fk("eval_schedules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_schedules")),
    )
    op.create_index("ix_eval_schedules_project_created", "eval_schedules", ["project_id", "created_at"])
    op.create_index("ix_eval_schedules_next_run", "eval_schedules", ["next_run_at"])
    op.create_index("ix_eval_schedules_project_name", "eval_schedules", ["project_id", "name"], unique=True)

    op.create_table(
        "eval_schedule_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("schedule_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=False),
        sa.Column("eval_run_id", sa.String(length=40), nullable=True),
        sa.Column("version_id", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("baseline_eval_run_id", sa.String(length=40), nullable=True),
        sa.Column("pass_rate", sa.Float(), nullable=True),
        sa.Column("mean_score", sa.Float(), nullable=True),
        sa.Column("comparison", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        _project_fk("eval_schedule_runs"),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["eval_schedules.id"],
            name=op.f("fk_eval_schedule_runs_schedule_id_eval_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_schedule_runs")),
    )
    op.create_index("ix_eval_schedule_runs_schedule", "eval_schedule_runs", ["schedule_id", "id"])
    op.create_index("ix_eval_schedule_runs_status", "eval_schedule_runs", ["status"])

    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=True),
        sa.Column("label", sa.String(length=63), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("channel_ids", JSON, nullable=False),
        sa.Column("last_evaluated_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _project_fk("alert_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index("ix_alert_rules_project_name", "alert_rules", ["project_id", "name"], unique=True)

    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("rule_id", sa.String(length=40), nullable=False),
        sa.Column("rule_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("open_key", sa.String(length=400), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(length=10), nullable=True),
        sa.Column("annotation_queue", sa.String(length=64), nullable=True),
        _project_fk("alerts"),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alerts_rule_id_alert_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_open_key", "alerts", ["open_key"], unique=True)
    op.create_index("ix_alerts_project_status", "alerts", ["project_id", "status", "id"])
    op.create_index("ix_alerts_rule", "alerts", ["rule_id", "id"])

    op.create_table(
        "alert_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _project_fk("alert_events"),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index("ix_alert_events_alert", "alert_events", ["alert_id", "id"])

    op.create_table(
        "alert_channels",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("secret_hint", sa.String(length=80), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _project_fk("alert_channels"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
    )
    op.create_index("ix_alert_channels_project_name", "alert_channels", ["project_id", "name"], unique=True)

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=True),
        sa.Column("event", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        _project_fk("alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["alert_channels.id"],
            name=op.f("fk_alert_deliveries_channel_id_alert_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_deliveries_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_alert_deliveries_channel", "alert_deliveries", ["channel_id", "id"])
    op.create_index("ix_alert_deliveries_alert", "alert_deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_alert", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_channel", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_channels_project_name", table_name="alert_channels")
    op.drop_table("alert_channels")
    op.drop_index("ix_alert_events_alert", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("ix_alerts_rule", table_name="alerts")
    op.drop_index("ix_alerts_project_status", table_name="alerts")
    op.drop_index("ix_alerts_open_key", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_alert_rules_project_name", table_name="alert_rules")
    op.drop_table("alert_rules")
    op.drop_index("ix_eval_schedule_runs_status", table_name="eval_schedule_runs")
    op.drop_index("ix_eval_schedule_runs_schedule", table_name="eval_schedule_runs")
    op.drop_table("eval_schedule_runs")
    op.drop_index("ix_eval_schedules_project_name", table_name="eval_schedules")
    op.drop_index("ix_eval_schedules_next_run", table_name="eval_schedules")
    op.drop_index("ix_eval_schedules_project_created", table_name="eval_schedules")
    op.drop_table("eval_schedules")
