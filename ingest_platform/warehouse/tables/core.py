"""Tables shared by every source: the events table and the landing ledger.

Keep in step with the migrations (0006: the limits of `ingest_limits`).
"""

import sqlalchemy as sa

from ingest_platform.warehouse.limits import limit_checks
from ingest_platform.warehouse.types import Json, UtcDateTime

metadata = sa.MetaData()

# One row per event per source, whoever delivered it (the Big Top push endpoint or the collector).
events = sa.Table(
    "events",
    metadata,
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
    # When the Big Top collector noticed the venue no longer lists the event (migration 0007); NULL while it
    # is listed. A soft delete: the row stays, and a collection that lists it again clears this.
    sa.Column("cancelled_at", UtcDateTime),
    sa.Index("ix_events_start_utc", "start_utc"),
    *limit_checks("events"),
)

# Landing files whose rows are committed; written in the same transaction as the rows.
landing_ledger = sa.Table(
    "landing_ledger",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("file_name", sa.Text, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Text),
    sa.Column("loaded_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
)
