"""Every warehouse table, one module per source; all share one MetaData. Alembic migrations create them."""

from ingest_platform.warehouse.tables.app import (
    app_events,
    audit_log,
    crawl_items,
    donations,
    rule_tags,
    rules,
    stripe_events,
)
from ingest_platform.warehouse.tables.app_metrics import (
    author_donation_daily,
    author_metric_daily,
    leaderboard_entries,
    rollup_days,
    rollup_dirty_days,
    rule_donation_daily,
    rule_metric_cumulative,
    rule_metric_daily,
)
from ingest_platform.warehouse.tables.core import events, landing_ledger, metadata
from ingest_platform.warehouse.tables.rtarf import rtarf_events, rtarf_rejected_events
from ingest_platform.warehouse.tables.vivenu import vivenu_deliveries, vivenu_delivery_runs, vivenu_tickets

__all__ = [
    "app_events",
    "audit_log",
    "author_donation_daily",
    "author_metric_daily",
    "crawl_items",
    "donations",
    "events",
    "landing_ledger",
    "leaderboard_entries",
    "metadata",
    "rollup_days",
    "rollup_dirty_days",
    "rtarf_events",
    "rtarf_rejected_events",
    "rule_donation_daily",
    "rule_metric_cumulative",
    "rule_metric_daily",
    "rule_tags",
    "rules",
    "stripe_events",
    "vivenu_deliveries",
    "vivenu_delivery_runs",
    "vivenu_tickets",
]
