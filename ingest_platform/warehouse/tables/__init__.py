"""Every warehouse table, one module per source; all share one MetaData. Alembic migrations create them."""

from ingest_platform.warehouse.tables.core import events, landing_ledger, metadata
from ingest_platform.warehouse.tables.vivenu import vivenu_deliveries, vivenu_delivery_runs, vivenu_tickets

__all__ = ["events", "landing_ledger", "metadata", "vivenu_deliveries", "vivenu_delivery_runs", "vivenu_tickets"]
