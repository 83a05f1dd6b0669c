"""Events the venue no longer lists: `events.cancelled_at`, set by the Big Top collector (a soft delete).

Revision ID: 0007
Revises: 0006 (the limits on `events`, which this table change must follow)
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("cancelled_at", UtcDateTime, nullable=True))


def downgrade() -> None:
    # SQLite drops a column only by rebuilding the table, which batch mode does.
    with op.batch_alter_table("events") as batch:
        batch.drop_column("cancelled_at")
