"""Vivenu tables: pulled tickets, the charity-webhook delivery ledger and per-event delivery runs.

Keep in step with migration 0004.
"""

import sqlalchemy as sa

from ingest_platform.warehouse.tables.core import metadata
from ingest_platform.warehouse.types import Json, UtcDateTime

# Every ticket pulled from Vivenu, by region: the columns the filters and the delivery need, the ticket as JSON.
vivenu_tickets = sa.Table(
    "vivenu_tickets",
    metadata,
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
    sa.Index("ix_vivenu_tickets_region_event", "region", "event_id"),
)

# One row per (ticket, endpoint): whether the receiver acknowledged it. An acknowledged row is never sent again.
vivenu_deliveries = sa.Table(
    "vivenu_deliveries",
    metadata,
    sa.Column("region", sa.Text, primary_key=True),
    sa.Column("ticket_id", sa.Text, primary_key=True),
    sa.Column("endpoint", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("envelope_id", sa.Text, nullable=False),
    # pending → sending → acknowledged | failed; a row left in `sending` by a killed run is sent again.
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("last_attempt_at", UtcDateTime),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("run_id", sa.Text),
    sa.Index("ix_vivenu_deliveries_region_event", "region", "event_id", "endpoint"),
)

# One row per (event, endpoint): the last delivery run, its counts, and the lease that keeps two runs of the same
# event from sending at once.
vivenu_delivery_runs = sa.Table(
    "vivenu_delivery_runs",
    metadata,
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
