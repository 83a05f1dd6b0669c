"""RTARF events synced from Elasticsearch. Keep in step with migration 0003."""

import sqlalchemy as sa

from ingest_platform.warehouse.tables.core import metadata
from ingest_platform.warehouse.types import Json, UtcDateTime

# One row per Elasticsearch document, keyed by its `_id`. The ECS fields the platform queries are columns; the
# whole `_source` is kept so nothing the mapping does not know about is lost.
rtarf_events = sa.Table(
    "rtarf_events",
    metadata,
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
    sa.Index("ix_rtarf_events_event_timestamp", "event_timestamp"),
)

# Documents Elasticsearch returned that could not be mapped (missing timestamp, wrong types), with the reason and
# their `_source`, so a bad document is never silently dropped. A later successful sync of the id removes it.
rtarf_rejected_events = sa.Table(
    "rtarf_rejected_events",
    metadata,
    sa.Column("es_id", sa.Text, primary_key=True),
    sa.Column("es_index", sa.Text, nullable=False),
    sa.Column("partition_day", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_document", Json),
    sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
)
