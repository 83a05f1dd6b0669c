"""The Ingest Service intake (seed 003): app events, Stripe donations, crawl items, rules and the audit trail.

The webhook app lands one document per accepted request in the `app_events`, `stripe_events`, `crawl_items` and
`app_rules` streams, each with the request's audit record inside; a rejected request's record lands alone in
`app_audit`. Each stream has a landing sensor and a raw asset partitioned by the day the files landed. The loaders
are the last line of every dedup the app does: a repeated idempotency key, a VIEW within the window of a stored one,
a Stripe event delivered twice, an older crawl of an item or an older version of a rule never overwrite what is
stored.
"""

from datetime import UTC, datetime

import dagster as dg

from ingest_platform.app.documents import AUDIT_STREAM, CRAWL_STREAM, EVENTS_STREAM, RULES_STREAM, STRIPE_STREAM
from ingest_platform.assets.landing import build_landing_check
from ingest_platform.loading import LandingBatchConfig
from ingest_platform.partitions import landed_daily
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource

# The loaders' warehouse work (app/loading.py, and SQLAlchemy with it) is imported on first use: loading the code
# location must stay cheap.


def _landing_asset(*, name: str, stream: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["app", "raw", name],
        group_name="app",
        partitions_def=landed_daily,
        kinds={"sql"},
        description=f"{description} Partitioned by the UTC day the files landed in the {stream!r} stream.",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: LandingBatchConfig,
        landing: LandingZoneResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        return _load_stream(context, stream=stream, config=config, landing=landing, warehouse=warehouse)

    return _asset


app_raw_events = _landing_asset(
    name="events",
    stream=EVENTS_STREAM,
    description="App events from POST /ingest/events into `app_events` (with their audit records), the first of "
    "each idempotency key kept and VIEWs within 10 minutes of a stored one from the same client dropped.",
)
app_raw_donations = _landing_asset(
    name="donations",
    stream=STRIPE_STREAM,
    description="Stripe events from POST /ingest/stripe/webhook into `stripe_events` (first delivery wins), and "
    "`donations` folded from every stored event of each donation, so its status never moves backwards.",
)
app_raw_crawl_items = _landing_asset(
    name="crawl_items",
    stream=CRAWL_STREAM,
    description="Crawled items from POST /ingest/crawl, upserted into `crawl_items` by (source_id, external_id); "
    "an older landed version never overwrites a newer one.",
)
app_raw_rules = _landing_asset(
    name="rules",
    stream=RULES_STREAM,
    description="The rules dimension from POST /ingest/rules into `rules` by rule_id (the newest `updated_at` "
    "wins; an older version never overwrites) and `rule_tags`, replaced whole with each stored version's tags.",
)
app_raw_audit_log = _landing_asset(
    name="audit_log",
    stream=AUDIT_STREAM,
    description="Audit records of rejected intake requests into `audit_log` (accepted requests' records load "
    "with their data; loads record themselves).",
)


def _load_stream(
    context: dg.AssetExecutionContext,
    *,
    stream: str,
    config: LandingBatchConfig,
    landing: LandingZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Load the run's files of `stream`, then the load's own audit record."""
    from ingest_platform.app.loading import LOADS
    from ingest_platform.loading import load_landing_files
    from ingest_platform.warehouse.tables import audit_log

    result = load_landing_files(
        context, config=config, stream=stream, landing=landing, warehouse=warehouse, **LOADS[stream]
    )
    counts = {name: value for name, value in (result.metadata or {}).items() if isinstance(value, int)}
    warehouse.upsert(
        table=audit_log,
        rows=[
            {
                "audit_id": f"load:{stream}:{context.run.run_id}:{context.partition_key}",
                "at": datetime.now(UTC),
                "actor": "dagster",
                "action": f"load.{stream}",
                "outcome": "loaded",
                "status": None,
                "error": None,
                "ip_hash": None,
                "request_id": context.run.run_id,
                "details": {"partition": context.partition_key, **counts},
            }
        ],
        key=["audit_id"],
    )
    return result


APP_LANDING_ASSETS = {
    EVENTS_STREAM: app_raw_events,
    STRIPE_STREAM: app_raw_donations,
    CRAWL_STREAM: app_raw_crawl_items,
    RULES_STREAM: app_raw_rules,
    AUDIT_STREAM: app_raw_audit_log,
}

app_load_jobs = {
    stream: dg.define_asset_job(
        f"app_{asset.key.path[-1]}_load_job",
        selection=[asset],
        description=f"Loads landed {stream!r} files; requested by its landing sensor.",
    )
    for stream, asset in APP_LANDING_ASSETS.items()
}


# --- search -----------------------------------------------------------------------------------------------------

# Rebuilt whenever a load of rules or crawl items (any landed day) has materialized since the last rebuild, one
# rebuild at a time. Not `eager()`: that waits while any upstream partition is missing or in progress, and an
# unpartitioned asset depends on every landed day, most of which never get a file.
SEARCH_REFRESH = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
    & ~dg.AutomationCondition.in_progress()
).with_label("after rule or crawl loads")


@dg.asset(
    key=["app", "search", "rules_index"],
    group_name="app",
    deps=[app_raw_rules, app_raw_crawl_items],
    kinds={"sql"},
    automation_condition=SEARCH_REFRESH,
    description="Full-text index over rules (title, tags, summary) and crawl items (title, summary): PostgreSQL "
    "tsvector + GIN weighted A/B/C, SQLite FTS5 with bm25 weights 10/4/1. Rebuilt aside and swapped in one "
    "transaction, so readers never see a half-built index; refreshed by its automation condition after loads.",
)
def app_search_rules_index(warehouse: WarehouseResource) -> dg.MaterializeResult:
    from ingest_platform.app.search import index_size, rebuild_index

    with warehouse.engine.connect() as connection:
        documents = rebuild_index(connection)
        sizes = index_size(connection)
    return dg.MaterializeResult(
        metadata={"documents": documents, "rules": sizes["rule"], "crawl_items": sizes["crawl"]}
    )


app_search_index_job = dg.define_asset_job(
    "app_search_index_job",
    selection=[app_search_rules_index],
    description="Rebuilds the search index; launched by POST /cron/rebuild-search (the automation condition "
    "refreshes it after loads without it).",
)


# --- checks -----------------------------------------------------------------------------------------------------


def _no_repeats(warehouse: WarehouseResource, table_name: str, column_name: str) -> dg.AssetCheckResult:
    from ingest_platform.app.loading import repeated_values
    from ingest_platform.warehouse.tables import metadata

    with warehouse.engine.connect() as connection:
        repeated = repeated_values(connection, metadata.tables[table_name].c[column_name])
    return dg.AssetCheckResult(
        passed=not repeated,
        metadata={
            "duplicated_values": len(repeated),
            "examples": dg.MetadataValue.json({str(value): count for value, count in repeated[:20]}),
        },
    )


@dg.asset_check(asset=app_raw_events, description="No idempotency key is stored twice in `app_events`.")
def no_duplicate_idempotency_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _no_repeats(warehouse, "app_events", "idempotency_key")


@dg.asset_check(asset=app_raw_donations, description="No Stripe event id is stored twice in `stripe_events`.")
def no_duplicate_stripe_event_ids(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _no_repeats(warehouse, "stripe_events", "event_id")


@dg.asset_check(asset=app_raw_donations, description="Every donation amount and refunded amount is >= 0.")
def donation_amounts_non_negative(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from ingest_platform.app.loading import negative_donation_keys

    with warehouse.engine.connect() as connection:
        negative = negative_donation_keys(connection)
    return dg.AssetCheckResult(
        passed=not negative,
        metadata={"negative_donations": len(negative), "examples": dg.MetadataValue.json(negative[:20])},
    )


APP_ASSET_CHECKS = [
    no_duplicate_idempotency_keys,
    no_duplicate_stripe_event_ids,
    donation_amounts_non_negative,
    *(build_landing_check(asset, stream=stream) for stream, asset in APP_LANDING_ASSETS.items()),
]
