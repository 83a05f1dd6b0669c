"""Vivenu: pulled tickets, the charity-webhook delivery ledger and per-event delivery runs.

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import Json, UtcDateTime

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vivenu_tickets",
        sa.Column("region", sa.Text, primary_key=True),
        sa.Column("ticket_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("seller_id", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("ticket_name", sa.Text),
        sa.Column("ticket_type_id", sa.Text),
        sa.Column("ticket", Json, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_index("ix_vivenu_tickets_region_event", "vivenu_tickets", ["region", "event_id"])
    op.create_table(
        "vivenu_deliveries",
        sa.Column("region", sa.Text, primary_key=True),
        sa.Column("ticket_id", sa.Text, primary_key=True),
        sa.Column("endpoint", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("envelope_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("last_attempt_at", UtcDateTime),
        sa.Column("acknowledged_at", UtcDateTime),
        sa.Column("run_id", sa.Text),
    )
    op.create_index("ix_vivenu_deliveries_region_event", "vivenu_deliveries", ["region", "event_id", "endpoint"])
    op.create_table(
        "vivenu_delivery_runs",
        sa.Column("region", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("endpoint", sa.Text, primary_key=True),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("lease_run_id", sa.Text),
        sa.Column("lease_expires_at", UtcDateTime),
        sa.Column("last_run_id", sa.Text),
        sa.Column("last_run_at", UtcDateTime),
        sa.Column("completed_at", UtcDateTime),
        sa.Column("selected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("acknowledged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("vivenu_delivery_runs")
    op.drop_index("ix_vivenu_deliveries_region_event", "vivenu_deliveries")
    op.drop_table("vivenu_deliveries")
    op.drop_index("ix_vivenu_tickets_region_event", "vivenu_tickets")
    op.drop_table("vivenu_tickets")
