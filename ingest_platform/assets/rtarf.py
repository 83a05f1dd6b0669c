"""RTARF events (seed 004): Elasticsearch documents upserted into `rtarf_events`, one partition per UTC day.

Replaces the seed's asyncio scheduler: the `rtarf_sync_schedule` requests today's partition (and yesterday's in the
first hour of a day); backfills re-sync whole days.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from ingest_platform.resources.elasticsearch import ElasticsearchResource, ScanStats
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.rtarf.documents import BadDocument, event_row, nul_character_path, sync_window
from ingest_platform.warehouse.result import UpsertResult

# SQLAlchemy and the tables are imported on first use: loading the code location must stay cheap.

ASSET_KEY = dg.AssetKey(["rtarf", "raw", "events"])
EVENT_KEY = ["es_id"]
# Listed in full up to this many per run; the count is always exact and every one is in rtarf_rejected_events.
MAX_LISTED_BAD_DOCUMENTS = 100

# The UTC day of the event's timestamp. end_offset=1: today's partition exists, which the schedule refreshes.
rtarf_daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


class RtarfSyncConfig(dg.Config):
    timestamp_field: str = Field(default="@timestamp", description="The event time field partitions are cut by.")
    page_size: int = Field(default=1000, ge=1, le=10_000, description="Documents per search_after page.")
    overlap_seconds: int = Field(
        default=600,
        ge=0,
        description="Today's incremental run re-reads this far before the newest event already loaded, for "
        "documents indexed late.",
    )
    full_day: bool = Field(default=False, description="Re-sync the whole day even for today's partition.")


@dataclass
class SyncTotals:
    upserted: UpsertResult = field(default_factory=UpsertResult)
    bad: list[dict[str, str]] = field(default_factory=list)
    last_event: datetime | None = None


@dg.asset(
    key=ASSET_KEY,
    group_name="rtarf",
    partitions_def=rtarf_daily,
    kinds={"elasticsearch", "sql"},
    description="RTARF events from Elasticsearch (point-in-time search_after scan), upserted into `rtarf_events` "
    "by the document `_id`. Partitioned by the UTC day of the event timestamp; today's partition syncs "
    "incrementally, other days whole.",
)
def rtarf_events_asset(
    context: dg.AssetExecutionContext,
    config: RtarfSyncConfig,
    elasticsearch: ElasticsearchResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    started = time.monotonic()
    day = date.fromisoformat(context.partition_key)
    start, end, mode = sync_window(
        day=day,
        now=datetime.now(UTC),
        last_loaded=_last_loaded(warehouse, day),
        overlap=timedelta(seconds=config.overlap_seconds),
        full_day=config.full_day,
    )
    context.log.info(f"rtarf {context.partition_key}: {mode} sync of {start.isoformat()} .. {end.isoformat()}")

    previously_rejected = _rejected_ids(warehouse, context.partition_key)
    stats = ScanStats()
    totals = SyncTotals()
    with elasticsearch.time_range_pages(
        timestamp_field=config.timestamp_field, start=start, end=end, page_size=config.page_size, stats=stats
    ) as pages:
        for hits in pages:
            _load_page(warehouse, hits, config, context.partition_key, previously_rejected, totals)
            context.log.debug(f"page {stats.pages}: {len(hits)} documents, totals {totals.upserted.as_metadata()}")

    seconds = time.monotonic() - started
    if totals.bad:
        context.log.warning(
            f"rtarf {context.partition_key}: {len(totals.bad)} documents could not be mapped (kept in "
            f"rtarf_rejected_events), e.g. {totals.bad[0]['id']}: {totals.bad[0]['reason']}"
        )
    return dg.MaterializeResult(
        metadata={
            "total_processed": stats.hits,
            **totals.upserted.as_metadata(),
            "bad_documents": len(totals.bad),
            "bad_document_ids": dg.MetadataValue.json(totals.bad[:MAX_LISTED_BAD_DOCUMENTS]),
            "pages": stats.pages,
            "time_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "docs_per_second": dg.MetadataValue.float(round(stats.hits / seconds, 1) if seconds else 0.0),
            "mode": mode,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "last_event_timestamp": totals.last_event.isoformat() if totals.last_event else None,
            "es_retries": stats.retries,
            "pit_reopened": stats.pit_reopened,
        }
    )


def _load_page(
    warehouse: WarehouseResource,
    hits: list[dict[str, Any]],
    config: RtarfSyncConfig,
    partition_day: str,
    previously_rejected: set[str],
    totals: SyncTotals,
) -> None:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_events, rtarf_rejected_events
    from ingest_platform.warehouse.upsert import upsert

    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for hit in hits:
        try:
            rows.append(event_row(hit, timestamp_field=config.timestamp_field))
        except BadDocument as problem:
            rejects.append(
                {
                    "es_id": hit["_id"],
                    "es_index": hit["_index"],
                    "partition_day": partition_day,
                    "reason": str(problem),
                    "source_document": None if nul_character_path(hit.get("_source")) else hit.get("_source"),
                }
            )
    healed = [row["es_id"] for row in rows if row["es_id"] in previously_rejected]
    # One transaction per page: a failure later in the scan keeps the pages already loaded, and a re-run
    # converges because every write is an upsert by `_id`.
    with warehouse.begin() as connection:
        if rows:
            totals.upserted += upsert(connection, rtarf_events, rows, key=EVENT_KEY)
        if rejects:
            upsert(connection, rtarf_rejected_events, rejects, key=EVENT_KEY)
        if healed:
            connection.execute(sa.delete(rtarf_rejected_events).where(rtarf_rejected_events.c.es_id.in_(healed)))
    totals.bad.extend({"id": r["es_id"], "index": r["es_index"], "reason": r["reason"]} for r in rejects)
    if rows:
        newest = max(row["event_timestamp"] for row in rows)
        totals.last_event = max(newest, totals.last_event) if totals.last_event else newest


def _last_loaded(warehouse: WarehouseResource, day: date) -> datetime | None:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_events

    start = datetime.combine(day, datetime.min.time(), UTC)
    column = rtarf_events.c.event_timestamp
    with warehouse.begin() as connection:
        return connection.execute(
            sa.select(sa.func.max(column)).where(column >= start, column < start + timedelta(days=1))
        ).scalar_one()


def _rejected_ids(warehouse: WarehouseResource, partition_day: str) -> set[str]:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_rejected_events

    with warehouse.begin() as connection:
        return set(
            connection.execute(
                sa.select(rtarf_rejected_events.c.es_id).where(rtarf_rejected_events.c.partition_day == partition_day)
            ).scalars()
        )


# The schedule skips a day whose sync is still in flight, so a hung run would stall that day: run monitoring
# (dagster.yaml) ends any run over this.
MAX_RUNTIME_SECONDS = 3600

rtarf_sync_job = dg.define_asset_job(
    "rtarf_sync_job",
    selection=[ASSET_KEY],
    tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
    description="Syncs one day of RTARF events from Elasticsearch; requested by rtarf_sync_schedule and by "
    "POST /scheduler/sync-now.",
)
