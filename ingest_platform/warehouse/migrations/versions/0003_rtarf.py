"""RTARF events synced from Elasticsearch, and the documents that could not be mapped.

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import Json, UtcDateTime

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rtarf_events",
        sa.Column("es_id", sa.Text, primary_key=True),
        sa.Column("es_index", sa.Text, nullable=False),
        sa.Column("event_timestamp", UtcDateTime, nullable=False),
        sa.Column("event_action", sa.Text),
        sa.Column("event_category", sa.Text),
        sa.Column("event_severity", sa.BigInteger),
        sa.Column("message", sa.Text),
        sa.Column("host_name", sa.Text),
        sa.Column("source_ip", sa.Text),
        sa.Column("destination_ip", sa.Text),
        sa.Column("user_name", sa.Text),
        sa.Column("rule_name", sa.Text),
        sa.Column("source_document", Json, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_index("ix_rtarf_events_event_timestamp", "rtarf_events", ["event_timestamp"])
    op.create_table(
        "rtarf_rejected_events",
        sa.Column("es_id", sa.Text, primary_key=True),
        sa.Column("es_index", sa.Text, nullable=False),
        sa.Column("partition_day", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source_document", Json),
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )


def downgrade() -> None:
    op.drop_table("rtarf_rejected_events")
    op.drop_index("ix_rtarf_events_event_timestamp", "rtarf_events")
    op.drop_table("rtarf_events")
