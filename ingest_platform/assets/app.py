"""The Ingest Service intake (seed 003): app events, Stripe donations, crawl items, rules and the audit trail.

The webhook app lands one document per accepted request in the `app_events`, `stripe_events`, `crawl_items` and
`app_rules` streams, each with the request's audit record inside; a rejected request's record lands alone in
`app_audit`. Each stream has a landing sensor and a raw asset partitioned by the day the files landed. The loaders
are the last line of every dedup the app does: a repeated idempotency key, a VIEW within the window of a stored one,
a Stripe event delivered twice, an older crawl of an item or an older version of a rule never overwrite what is
stored.

The rollups (`app/metrics/*`) are partitioned by the UTC *event* day (`event_daily`) and computed by
app/rollups.py; `app_rollup_job` runs the three for a day or a range (one run, days in order: each day's trending,
windows and cumulative totals read the days before it).
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg

from ingest_platform.app.documents import AUDIT_STREAM, CRAWL_STREAM, EVENTS_STREAM, RULES_STREAM, STRIPE_STREAM
from ingest_platform.assets.landing import LANDING_LOAD_EXECUTOR, build_landing_check
from ingest_platform.assets.warehouse import table_metadata, table_name_metadata
from ingest_platform.loading import LandingBatchConfig
from ingest_platform.partitions import event_daily, landed_daily
from ingest_platform.resources.app import AppRollupResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource

if TYPE_CHECKING:
    import sqlalchemy as sa

# The loaders' warehouse work (app/loading.py, and SQLAlchemy with it) is imported on first use: loading the code
# location must stay cheap.


def _landing_asset(*, name: str, stream: str, table: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["app", "raw", name],
        group_name="app",
        partitions_def=landed_daily,
        kinds={"sql"},
        metadata=table_name_metadata(table),
        description=f"{description} Partitioned by the UTC day the files landed in the {stream!r} stream.",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: LandingBatchConfig,
        landing: LandingZoneResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        loaded = _load_stream(context, stream=stream, config=config, landing=landing, warehouse=warehouse)
        return dg.MaterializeResult(metadata={**(loaded.metadata or {}), **table_metadata(warehouse, table)})

    return _asset


app_raw_events = _landing_asset(
    name="events",
    stream=EVENTS_STREAM,
    table="app_events",
    description="App events from POST /ingest/events into `app_events` (with their audit records), the first of "
    "each idempotency key kept and VIEWs within 10 minutes of a stored one from the same client dropped.",
)
app_raw_donations = _landing_asset(
    name="donations",
    stream=STRIPE_STREAM,
    table="donations",
    description="Stripe events from POST /ingest/stripe/webhook into `stripe_events` (first delivery wins), and "
    "`donations` folded from every stored event of each donation, so its status never moves backwards.",
)
app_raw_crawl_items = _landing_asset(
    name="crawl_items",
    stream=CRAWL_STREAM,
    table="crawl_items",
    description="Crawled items from POST /ingest/crawl, upserted into `crawl_items` by (source_id, external_id); "
    "an older landed version never overwrites a newer one.",
)
app_raw_rules = _landing_asset(
    name="rules",
    stream=RULES_STREAM,
    table="rules",
    description="The rules dimension from POST /ingest/rules into `rules` by rule_id (the newest `updated_at` "
    "wins; an older version never overwrites) and `rule_tags`, replaced whole with each stored version's tags.",
)
app_raw_audit_log = _landing_asset(
    name="audit_log",
    stream=AUDIT_STREAM,
    table="audit_log",
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
        executor_def=LANDING_LOAD_EXECUTOR,
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


# --- rollups: metrics and leaderboards by event day --------------------------------------------------------------

# Every app_rollup_job run carries this tag; dagster.yaml runs one at a time, so a later day never reads an earlier
# day another run is rewriting.
ROLLUP_TAG_KEY = "ingest_platform/rollup"
ROLLUP_TAGS = {ROLLUP_TAG_KEY: "app"}
# Set by app_rollup_sensor: the dirty rows (id up to, day from) the run covers, claimed when it starts and deleted
# when its leaderboards are written.
DIRTY_THROUGH_TAG = "ingest_platform/rollup_dirty_through"
DIRTY_FROM_TAG = "ingest_platform/rollup_dirty_from"
# Dagster's own run tags of a partition and of a partition range (single-run backfills, the sensor's range runs).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Raw assets are cut by landed day, the rollups by event day: any landed day can feed any event day. Which event days
# a load touched is what app_rollup_sensor acts on; these edges are the lineage.
_RAW_INPUTS = [
    dg.AssetDep(app_raw_events, partition_mapping=dg.AllPartitionMapping()),
    dg.AssetDep(app_raw_donations, partition_mapping=dg.AllPartitionMapping()),
    dg.AssetDep(app_raw_rules, partition_mapping=dg.AllPartitionMapping()),
]


def _event_days(context: dg.AssetExecutionContext) -> list[date]:
    return sorted(date.fromisoformat(key) for key in context.partition_keys)


def _each_day(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    name: str,
    compute: Callable[["sa.Connection", date], dict[str, int]],
) -> dict[date, dict[str, int]]:
    """`compute(connection, day)` for every day of the run in order, each day in its own transaction."""
    from ingest_platform.app.loading import serialize_writers

    figures = {}
    for day in _event_days(context):
        with warehouse.begin() as connection:
            # A UI run and a scheduled one may overlap: each day's DELETE + INSERT takes its turn.
            serialize_writers(connection, f"rollup:{name}")
            figures[day] = compute(connection, day)
        context.log.info(f"{name} {day}: {figures[day]}")
    return figures


def _rollup_metadata(figures: dict[date, dict[str, int]]) -> dict[str, Any]:
    """`rows` and `events` (the day's, summed over a range), and each day's figures for a range run."""
    metadata: dict[str, Any] = {
        "rows": sum(day["rows"] for day in figures.values()),
        "events": sum(day.get("events", 0) for day in figures.values()),
        "days": len(figures),
    }
    if len(figures) > 1:
        metadata["per_day"] = dg.MetadataValue.json({day.isoformat(): value for day, value in figures.items()})
    return metadata


@dg.asset(
    key=["app", "metrics", "rule_metric_daily"],
    group_name="app",
    partitions_def=event_daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=_RAW_INPUTS,
    kinds={"sql"},
    metadata=table_name_metadata("rule_metric_daily"),
    description="Per (UTC event day, rule): views capped at 5 per keyed IP (raw views, unique viewers), copies, "
    "saves, forks, votes, the weighted score, donations made that day, the decayed trending score, and the rule's "
    "cumulative totals. Table `rule_metric_daily` (+ `rule_donation_daily`, `rule_metric_cumulative`).",
)
def app_rule_metric_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_rollup: AppRollupResource
) -> dg.MaterializeResult:
    from ingest_platform.app import rollups

    _claim_dirty_days(context, warehouse)
    settings = app_rollup.settings()
    figures = _each_day(
        context,
        warehouse,
        "rule_metric_daily",
        lambda connection, day: rollups.compute_rule_metrics(connection, day, settings),
    )
    return dg.MaterializeResult(metadata=_rollup_metadata(figures) | table_metadata(warehouse, "rule_metric_daily"))


@dg.asset(
    key=["app", "metrics", "author_metric_daily"],
    group_name="app",
    partitions_def=event_daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[app_rule_metric_daily, dg.AssetDep(app_raw_donations, partition_mapping=dg.AllPartitionMapping())],
    kinds={"sql"},
    metadata=table_name_metadata("author_metric_daily"),
    description="Per (UTC event day, author): the author's rules summed (author from the rules dimension), and the "
    "donations made that day to the author per currency, net of refunds. Tables `author_metric_daily`, "
    "`author_donation_daily`.",
)
def app_author_metric_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from ingest_platform.app import rollups

    figures = _each_day(context, warehouse, "author_metric_daily", rollups.compute_author_metrics)
    return dg.MaterializeResult(metadata=_rollup_metadata(figures) | table_metadata(warehouse, "author_metric_daily"))


@dg.asset(
    key=["app", "metrics", "leaderboards"],
    group_name="app",
    partitions_def=event_daily,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[app_rule_metric_daily, app_author_metric_daily],
    kinds={"sql"},
    metadata=table_name_metadata("leaderboard_entries"),
    description="Daily, weekly (7 days), monthly (30 days) and all-time boards of rules and authors on each UTC "
    "day, scopes global, per tag and per model; top N by score, ties share a rank. Table `leaderboard_entries`.",
)
def app_leaderboards(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, app_rollup: AppRollupResource
) -> dg.MaterializeResult:
    from ingest_platform.app import rollups

    settings = app_rollup.settings()

    def boards(connection, day: date) -> dict[str, int]:
        written = rollups.compute_leaderboards(connection, day, settings)
        return {**written, **rollups.record_day(connection, day)}

    figures = _each_day(context, warehouse, "leaderboards", boards)
    last_day = max(figures)
    with warehouse.begin() as connection:
        top = rollups.top_entries(connection, last_day)
        cleared = rollups.clear_claimed(connection, run_id=context.run.run_id)
    metadata = _rollup_metadata(figures) | {
        "boards": figures[last_day]["boards"],
        "dirty_days_cleared": cleared,
        "top_10": dg.MetadataValue.md(f"Global boards of {last_day}\n\n" + rollups.boards_markdown(top)),
        **table_metadata(warehouse, "leaderboard_entries"),
    }
    return dg.MaterializeResult(metadata=metadata)


def _claim_dirty_days(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> None:
    tags = context.run.tags
    if DIRTY_THROUGH_TAG not in tags:
        return
    from ingest_platform.app import rollups

    with warehouse.begin() as connection:
        claimed = rollups.claim_dirty(
            connection,
            run_id=context.run.run_id,
            first_day=date.fromisoformat(tags[DIRTY_FROM_TAG]),
            through_id=int(tags[DIRTY_THROUGH_TAG]),
        )
    context.log.info(f"claimed {claimed} dirty day notes")


APP_ROLLUP_ASSETS = [app_rule_metric_daily, app_author_metric_daily, app_leaderboards]

app_rollup_job = dg.define_asset_job(
    "app_rollup_job",
    selection=APP_ROLLUP_ASSETS,
    tags=ROLLUP_TAGS,
    description="Recomputes the Ingest Service metrics and leaderboards of a UTC event day or a range of days (one "
    "run, days in order); requested by app_rollup_sensor, app_rollup_schedule and POST /cron/rollup.",
)


def _check_days(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> list[date]:
    """The days the check's run rolled up (its partition or range), else the latest day rolled up."""
    tags = context.run.tags
    if PARTITION_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_TAG])]
    if RANGE_START_TAG in tags:
        start = date.fromisoformat(tags[RANGE_START_TAG])
        end = date.fromisoformat(tags[RANGE_END_TAG])
        return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rollup_days

    with warehouse.engine.connect() as connection:
        latest = connection.scalar(sa.select(sa.func.max(rollup_days.c.day)))
    return [latest] if latest else []


def _offenders(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    find: Callable[["sa.Connection", list[date]], list[Any]],
) -> dg.AssetCheckResult:
    """`find`'s offending rows over the days the check covers; the check passes when there are none."""
    days = _check_days(context, warehouse)
    with warehouse.engine.connect() as connection:
        found = find(connection, days)
    return dg.AssetCheckResult(
        passed=not found,
        metadata={
            "days": dg.MetadataValue.json([day.isoformat() for day in days]),
            "offending": len(found),
            "examples": dg.MetadataValue.json(found[:20]),
        },
    )


@dg.asset_check(
    asset=app_rule_metric_daily,
    description="The VIEW cap holds: no rule-day counts more views than cap x its unique keyed IPs.",
)
def view_cap_holds(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, app_rollup: AppRollupResource
) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    return _offenders(
        context,
        warehouse,
        lambda connection, days: rollups.cap_violations(connection, days, view_cap=app_rollup.view_cap),
    )


@dg.asset_check(
    asset=app_rule_metric_daily,
    description="Each day's metrics add up to the day's events after the cap, counted row by row from app_events.",
)
def metrics_reconcile_with_events(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, app_rollup: AppRollupResource
) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    return _offenders(
        context,
        warehouse,
        lambda connection, days: rollups.unreconciled_days(connection, days, view_cap=app_rollup.view_cap),
    )


@dg.asset_check(
    asset=app_author_metric_daily, description="Each author-day's totals equal the sum of the author's rule-days."
)
def author_totals_match_rules(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    return _offenders(context, warehouse, rollups.author_mismatches)


@dg.asset_check(
    asset=app_author_metric_daily,
    description="Donations to authors through the run's last day equal `donations` (paid, net of refunds), per "
    "currency.",
)
def donation_totals_match_donations(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    return _offenders(
        context,
        warehouse,
        lambda connection, days: rollups.donation_mismatches(connection, max(days)) if days else [],
    )


@dg.asset_check(
    asset=app_leaderboards,
    description="Every board's ranks are 1..N with gaps only after ties (rank = 1 + the better scores), at most N.",
)
def board_ranks_are_dense(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, app_rollup: AppRollupResource
) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    return _offenders(
        context, warehouse, lambda connection, days: rollups.rank_gaps(connection, days, top_n=app_rollup.top_n)
    )


@dg.asset_check(
    asset=app_leaderboards,
    description="Yesterday (UTC) is final once the grace period after it has passed: rolled up after it ended, "
    "with no late data waiting for it.",
)
def yesterday_is_final(warehouse: WarehouseResource, app_rollup: AppRollupResource) -> dg.AssetCheckResult:
    from ingest_platform.app import rollups

    with warehouse.engine.connect() as connection:
        status = rollups.yesterday_freshness(
            connection, now=datetime.now(UTC), grace=timedelta(hours=app_rollup.final_after_hours)
        )
    return dg.AssetCheckResult(
        passed=status["passed"], metadata={name: value for name, value in status.items() if value is not None}
    )


APP_ROLLUP_CHECKS = [
    view_cap_holds,
    metrics_reconcile_with_events,
    author_totals_match_rules,
    donation_totals_match_donations,
    board_ranks_are_dense,
    yesterday_is_final,
]
