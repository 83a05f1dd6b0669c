"""Big Top events: the batches the local runner pushes to production (seed 000), loaded from the landing zone, and
the events the browser collector reads from the venue's site (seed 001); both land in `events` as source 5."""

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Annotated, Any

import dagster as dg
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation, StringConstraints

from ingest_platform.assets.landing import LANDING_LOAD_EXECUTOR, build_landing_check
from ingest_platform.assets.warehouse import table_metadata, table_name_metadata
from ingest_platform.bigtop.challenge import ChallengeError
from ingest_platform.bigtop.collector import (
    BIGTOP_SOURCE_ID,
    DEFAULT_BASE_URL,
    DEFAULT_HORIZON_DAYS,
    DEFAULT_PAGE_PATH,
    DEFAULT_RESTAURANT_ID,
    CollectOptions,
    CollectorError,
    SiteUnavailableError,
    collect_into_warehouse,
)
from ingest_platform.landing import LandedItems
from ingest_platform.loading import LandingBatchConfig, load_landing_files, validated_items
from ingest_platform.partitions import START_DATE, landed_daily
from ingest_platform.resources.browser import BrowserError, BrowserResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.tags import BROWSER_POOL

# The tables (and SQLAlchemy with them) are imported on first use: loading the code location must stay cheap.

PUSH_STREAM = "bigtop_events"
EVENTS_TABLE = "events"
EVENT_KEY = ["source_id", "external_id"]


class LandedEvent(BaseModel):
    """An event as the client sent it and the webhook app validated it, re-checked here because a landed file may be
    damaged; the app lands the body unchanged, so its normalisation (stripped id and title) happens here."""

    model_config = ConfigDict(extra="ignore")

    external_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    start_utc: AwareDatetime
    end_utc: AwareDatetime | None = None
    description: str | None = None
    location: str | None = None
    external_url: str | None = None
    categories: list[str] | None = None


class LandedPush(BaseModel):
    """A batch without its events, which `push_rows` validates one at a time as they are read."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    source_id: int = BIGTOP_SOURCE_ID
    events: SkipValidation[Iterable[Any]]


# The events of a large push file stay on disk and are read an item at a time (loading.STREAM_FILE_BYTES).
PUSH_EVENTS = "payload.events"


def push_rows(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    push = LandedPush.model_validate(document["payload"])
    if push.source_id != BIGTOP_SOURCE_ID:
        # Production only ever upserts the Big Top source (seed 000).
        raise ValueError(f"source_id {push.source_id} is not Big Top's ({BIGTOP_SOURCE_ID})")
    if not isinstance(push.events, list | LandedItems):
        raise ValueError(f"events: expected a list, got {type(push.events).__name__}")
    for event in validated_items(LandedEvent, push.events, at="events"):
        # The fields as validated, without model_dump's per-event serialization pass (all are plain values).
        yield {"source_id": BIGTOP_SOURCE_ID, **vars(event)}


@dg.asset(
    key=["bigtop", "raw", "pushed_events"],
    group_name="bigtop",
    partitions_def=landed_daily,
    kinds={"sql"},
    metadata=table_name_metadata(EVENTS_TABLE),
    description="Events pushed to POST /api/ingest/bigtop/events, upserted into `events` by (source_id, "
    "external_id). Partitioned by the UTC day the batch landed.",
)
def bigtop_pushed_events(
    context: dg.AssetExecutionContext,
    config: LandingBatchConfig,
    landing: LandingZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from ingest_platform.warehouse.tables import events

    loaded = load_landing_files(
        context,
        config=config,
        stream=PUSH_STREAM,
        landing=landing,
        warehouse=warehouse,
        table=events,
        key=EVENT_KEY,
        rows_from_document=push_rows,
        streamed_items=PUSH_EVENTS,
    )
    return dg.MaterializeResult(metadata={**(loaded.metadata or {}), **table_metadata(warehouse, EVENTS_TABLE)})


bigtop_pushed_events_landing_check = build_landing_check(bigtop_pushed_events, stream=PUSH_STREAM)

bigtop_push_load_job = dg.define_asset_job(
    "bigtop_push_load_job",
    selection=[bigtop_pushed_events],
    description="Loads landed Big Top push batches; requested by bigtop_landing_sensor.",
    executor_def=LANDING_LOAD_EXECUTOR,
)


# Venue days that have a partition: from the platform's first day (PARTITIONS_START_DATE) to the collector's horizon
# ahead.
COLLECT_HORIZON_DAYS = DEFAULT_HORIZON_DAYS
bigtop_event_days = dg.DailyPartitionsDefinition(
    start_date=START_DATE, timezone="America/New_York", end_offset=COLLECT_HORIZON_DAYS
)

# Longer than the browser session's hard limit (900 s by default), so the session's own timeouts fire first and
# run monitoring only ends a run that is stuck outside the browser.
COLLECT_MAX_RUNTIME_S = 1800


class BigTopCollectConfig(dg.Config):
    base_url: str = Field(default=DEFAULT_BASE_URL, description="The venue's site.")
    page_path: str = Field(default=DEFAULT_PAGE_PATH, description="The venue page opened before any request.")
    restaurant_id: int = Field(default=DEFAULT_RESTAURANT_ID, description="calendarEvents(restaurantId:).")
    delay_s: float = Field(default=0.25, ge=0, description="Pause between .ics request starts (seed: 0.25 s).")
    max_in_flight: int = Field(default=2, ge=1, le=16, description="Most .ics requests open at once.")
    settle_s: float = Field(default=3.0, ge=0, description="Wait on the page after DOM ready (seed: 3 s).")
    future_only: bool = Field(default=False, description="Keep only events that start after now.")
    limit: int | None = Field(default=None, ge=1, description="Keep at most this many events, earliest first.")

    def options(self, *, window_start: datetime, window_end: datetime) -> CollectOptions:
        return CollectOptions(
            base_url=self.base_url,
            page_path=self.page_path,
            restaurant_id=self.restaurant_id,
            delay_s=self.delay_s,
            max_in_flight=self.max_in_flight,
            settle_s=self.settle_s,
            window_start=window_start,
            window_end=window_end,
            future_only=self.future_only,
            limit=self.limit,
        )


@dg.asset(
    key=["bigtop", "raw", "collected_events"],
    group_name="bigtop",
    partitions_def=bigtop_event_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=BROWSER_POOL,
    kinds={"playwright", "sql"},
    metadata=table_name_metadata(EVENTS_TABLE),
    description="Events read from the venue's site with Chromium (page → GraphQL → .ics), upserted into `events` "
    "by (source_id, external_id); after a complete collection, source-5 events in the window the venue no longer "
    "lists get `cancelled_at` (a soft delete; listed again, it is cleared). Partitioned by the event's start day "
    "in America/New_York; a backfill range is one run and one browser session. One browser at a time (the "
    "`browser` pool): materialize or backfill it from here or through bigtop_collect_job.",
)
def bigtop_collected_events(
    context: dg.AssetExecutionContext,
    config: BigTopCollectConfig,
    browser: BrowserResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    window = context.partition_time_window
    options = config.options(window_start=window.start, window_end=window.end)
    try:
        result = collect_into_warehouse(browser=browser, warehouse=warehouse, options=options, logger=context.log)
    except ChallengeError as error:
        raise dg.Failure(
            description=str(error),
            metadata={"challenge": True, "where": error.where, "status": error.status, "url": error.url},
        ) from error
    except SiteUnavailableError as error:
        raise dg.Failure(
            description=str(error),
            metadata={
                "challenge": False,
                "site_unavailable": True,
                "where": error.where,
                "status": error.status,
                "url": error.url,
            },
        ) from error
    except (CollectorError, BrowserError) as error:
        raise dg.Failure(description=str(error), metadata={"challenge": False}) from error
    collection = result.collection
    metadata = collection.metadata()
    metadata["skipped"] = dg.MetadataValue.json(metadata["skipped"])
    metadata["sanitised"] = dg.MetadataValue.json(metadata["sanitised"])
    metadata["skipped_events"] = dg.MetadataValue.json(metadata["skipped_events"])
    written = result.metadata()
    written["cancelled_ids"] = dg.MetadataValue.json(written["cancelled_ids"])
    written["restored_ids"] = dg.MetadataValue.json(written["restored_ids"])
    key_range = context.partition_key_range
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **written,
            "partitions": f"{key_range.start}..{key_range.end}",
            **table_metadata(warehouse, EVENTS_TABLE),
        }
    )


# Both Big Top assets write the one `events` table: this spec of the table, downstream of both, is how the lineage
# shows it. Nothing materializes it (each writer reports the table's figures on its own materializations).
bigtop_events_table = dg.AssetSpec(
    key=["bigtop", "warehouse", "events"],
    group_name="bigtop",
    deps=[bigtop_pushed_events, bigtop_collected_events],
    kinds={"sql"},
    metadata=table_name_metadata(EVENTS_TABLE),
    description="The warehouse table `events` (source 5 is Big Top), one row per (source_id, external_id), written "
    "by both the push loader (bigtop/raw/pushed_events) and the browser collector (bigtop/raw/collected_events). "
    "Their materializations carry its row count and column schema.",
)

bigtop_collect_job = dg.define_asset_job(
    "bigtop_collect_job",
    selection=[bigtop_collected_events],
    tags={"dagster/max_runtime": str(COLLECT_MAX_RUNTIME_S)},
    description="Collects Big Top's events with Chromium; one browser at a time (the `browser` pool).",
)
