"""Every warehouse table, one module per source; all share one MetaData. Alembic migrations create them."""

from ingest_platform.warehouse.tables.core import events, landing_ledger, metadata
from ingest_platform.warehouse.tables.rtarf import rtarf_events, rtarf_rejected_events

__all__ = ["events", "landing_ledger", "metadata", "rtarf_events", "rtarf_rejected_events"]
