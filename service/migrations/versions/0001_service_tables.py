"""Service tables: campaign registry, schedules, schedule runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bs_campaigns",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(16), nullable=False),
        sa.Column("schedule_name", sa.String(64), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_index("ix_bs_campaigns_created_at", "bs_campaigns", ["created_at"])
    op.create_index("ix_bs_campaigns_schedule_name", "bs_campaigns", ["schedule_name"])
    op.create_table(
        "bs_schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "bs_schedule_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "schedule_id",
            sa.Integer(),
            sa.ForeignKey("bs_schedules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("fire_time", sa.DateTime(), nullable=False),
        sa.Column("campaign_name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("schedule_id", "fire_time", name="uq_bs_run_firing"),
    )
    op.create_index("ix_bs_schedule_runs_schedule_id", "bs_schedule_runs", ["schedule_id"])


def downgrade() -> None:
    op.drop_table("bs_schedule_runs")
    op.drop_table("bs_schedules")
    op.drop_table("bs_campaigns")
