"""A campaign is created in one transaction: the creator's lease columns go.

`bs_campaigns.creator` and `heartbeat_at` said who was creating a `creating` campaign and
when it last showed progress, so that a creation whose process died could be taken over.
The registry row and the campaign's studies now commit together, so no row is ever left
`creating` by this version and there is nothing to take over. Rows an older version left
`creating` keep their plan in `spec`; the next creation of the name finishes them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("creator")


def downgrade() -> None:
    # An older version reads a `creating` row without a creator as released: finished by the
    # next creator to find it, as this version does.
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.add_column(sa.Column("creator", sa.String(128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
