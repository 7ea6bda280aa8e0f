"""A schedule's firing error; a creating campaign's creator and its heartbeat.

`bs_schedules.error`: why the scheduler could not compute the schedule's firings (a bad row,
a timezone that vanished); the other schedules keep firing. `bs_campaigns.creator` and
`heartbeat_at`: who is creating a `creating` campaign and when it last showed progress, so the
next creator to find it can tell a live creation from one whose process died, and finish it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bs_schedules") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.add_column(sa.Column("creator", sa.String(128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("creator")
    with op.batch_alter_table("bs_schedules") as batch:
        batch.drop_column("error")
