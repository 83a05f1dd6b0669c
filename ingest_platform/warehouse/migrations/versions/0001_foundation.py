"""Foundation: the events table shared by Big Top's push and collector, and the landing ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import Json, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("source_id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("start_utc", UtcDateTime, nullable=False),
        sa.Column("end_utc", UtcDateTime),
        sa.Column("description", sa.Text),
        sa.Column("location", sa.Text),
        sa.Column("external_url", sa.Text),
        sa.Column("categories", Json),
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_index("ix_events_start_utc", "events", ["start_utc"])
    op.create_table(
        "landing_ledger",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("file_name", sa.Text, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("loaded_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )


def downgrade() -> None:
    op.drop_table("landing_ledger")
    op.drop_index("ix_events_start_utc", "events")
    op.drop_table("events")
