"""The campaign spec is stored once, on the arm studies: `bs_campaigns.spec` may be NULL.

A registry row holds the spec only while its campaign is `creating` (the plan a creator
that died is finished from); once the campaign is `active` the row's copy is cleared and
every reader loads the spec from the arm studies (`studies.storage.spec_of`). Rows written
before this revision keep their copy: nothing reads it, and it is left as the user's data.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.alter_column("spec", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    # Fill the cleared copies with an empty object, which the older code reads as "no arms".
    op.execute(sa.text("UPDATE bs_campaigns SET spec = '{}' WHERE spec IS NULL"))
    with op.batch_alter_table("bs_campaigns") as batch:
        batch.alter_column("spec", existing_type=sa.JSON(), nullable=False)
