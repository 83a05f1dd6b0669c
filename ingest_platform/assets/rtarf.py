"""RTARF events (seed 004): Elasticsearch documents upserted into `rtarf_events`, one partition per UTC day.

Replaces the seed's asyncio scheduler: the `rtarf_sync_schedule` requests today's partition, once an hour the last
few days again (`only_if_changed`: a cheap count and ingest-time check first, so a document indexed days late is
still loaded), and yesterday's whole in the first hour of a day; backfills re-sync whole days. Today's run also
sweeps the documents no time-range scan can return (timestamp missing or rejected by the mapping) into
`rtarf_rejected_events`, which a WARN asset check flags.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from ingest_platform.assets.warehouse import table_metadata, table_name_metadata
from ingest_platform.partitions import START_DATE
from ingest_platform.resources.elasticsearch import ElasticsearchResource, RangeFingerprint, ScanStats
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.rtarf.documents import (
    UNDATED_PARTITION,
    BadDocument,
    event_row,
    lookup,
    nul_character_path,
    sync_window,
    undated_reason,
)
from ingest_platform.warehouse.result import UpsertResult

# SQLAlchemy and the tables are imported on first use: loading the code location must stay cheap.

ASSET_KEY = dg.AssetKey(["rtarf", "raw", "events"])
EVENT_KEY = ["es_id"]
# Listed in full up to this many per run; the count is always exact and every one is in rtarf_rejected_events.
MAX_LISTED_BAD_DOCUMENTS = 100

REJECTED_CHECK = "rejected_documents"
OP_NAME = "rtarf__raw__events"
# Metadata keys of the look-back's fingerprint, read back from the partition's last materialization.
LOADED_COUNT_KEY = "source_documents"
MAX_INGESTED_KEY = "source_max_ingested_ms"

# The UTC day of the event's timestamp. end_offset=1: today's partition exists, which the schedule refreshes.
rtarf_daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)


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
    only_if_changed: bool = Field(
        default=False,
        description="For a past day: re-sync only when the index's count of the day's documents differs from what "
        "the warehouse holds for it, or their newest ingest time moved since the last sync (the look-back runs).",
    )
    ingest_time_field: str | None = Field(
        default="event.ingested",
        description="The documents' ingest-time field (ECS event.ingested) that shows an update in place; an index "
        "without it leaves only the count. None: count only.",
    )
    sweep_undated: bool = Field(
        default=True,
        description="Today's run also reads the documents whose timestamp is missing or was rejected by the "
        "mapping into rtarf_rejected_events.",
    )


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
    metadata=table_name_metadata("rtarf_events"),
    check_specs=[
        dg.AssetCheckSpec(
            REJECTED_CHECK,
            asset=ASSET_KEY,
            description="WARN while rtarf_rejected_events holds documents: mapped badly, or undated (timestamp "
            "missing or rejected by the mapping), so they are in no partition.",
        )
    ],
    description="RTARF events from Elasticsearch (point-in-time search_after scan), upserted into `rtarf_events` "
    "by the document `_id`. Partitioned by the UTC day of the event timestamp; today's partition syncs "
    "incrementally, other days whole. Needs ELASTICSEARCH_URL (and ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/"
    "PASSWORD for a secured cluster); without it rtarf_sync_schedule skips, saying so, and a run fails at once.",
)
def rtarf_events_asset(
    context: dg.AssetExecutionContext,
    config: RtarfSyncConfig,
    elasticsearch: ElasticsearchResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    started = time.monotonic()
    # Before anything else: a run without the cluster's URL fails here, in one line, saying what to set.
    elasticsearch.cluster_url()
    day = date.fromisoformat(context.partition_key)
    now = datetime.now(UTC)
    start, end, mode = sync_window(
        day=day,
        now=now,
        last_loaded=_last_loaded(warehouse, day),
        overlap=timedelta(seconds=config.overlap_seconds),
        full_day=config.full_day,
    )
    fingerprint: RangeFingerprint | None = None
    loaded_before: int | None = None
    if config.only_if_changed and mode == "full_day" and day < now.date():
        fingerprint = elasticsearch.range_fingerprint(
            timestamp_field=config.timestamp_field, start=start, end=end, ingest_time_field=config.ingest_time_field
        )
        loaded_before = _loaded_count(warehouse, day, context.partition_key)
        same_ingest_time = config.ingest_time_field is None or fingerprint.max_ingested_ms == _previous_metadata(
            context, MAX_INGESTED_KEY
        )
        if fingerprint.count == loaded_before and same_ingest_time:
            mode = "unchanged"
    context.log.info(f"rtarf {context.partition_key}: {mode} sync of {start.isoformat()} .. {end.isoformat()}")

    stats = ScanStats()
    totals = SyncTotals()
    if mode != "unchanged":
        previously_rejected = _rejected_ids(warehouse, [context.partition_key, UNDATED_PARTITION])
        with elasticsearch.time_range_pages(
            timestamp_field=config.timestamp_field, start=start, end=end, page_size=config.page_size, stats=stats
        ) as pages:
            for hits in pages:
                _load_page(warehouse, hits, config, context.partition_key, previously_rejected, totals)
                context.log.debug(f"page {stats.pages}: {len(hits)} documents, totals {totals.upserted.as_metadata()}")

    undated: list[dict[str, str]] | None = None
    if config.sweep_undated and day == now.date():
        undated = _sweep_undated(elasticsearch, warehouse, config)

    seconds = time.monotonic() - started
    if totals.bad:
        context.log.warning(
            f"rtarf {context.partition_key}: {len(totals.bad)} documents could not be mapped (kept in "
            f"rtarf_rejected_events), e.g. {totals.bad[0]['id']}: {totals.bad[0]['reason']}"
        )
    if undated:
        context.log.warning(
            f"rtarf: {len(undated)} documents have no usable {config.timestamp_field} and are in no partition "
            f"(kept in rtarf_rejected_events as {UNDATED_PARTITION!r}), e.g. {undated[0]['id']}"
        )
    metadata: dict[str, Any] = {
        "total_processed": stats.hits,
        **totals.upserted.as_metadata(),
        "bad_documents": len(totals.bad),
        "bad_document_ids": dg.MetadataValue.json(totals.bad[:MAX_LISTED_BAD_DOCUMENTS]),
        "undated_swept": undated is not None,
        "undated_documents": len(undated or []),
        "undated_document_ids": dg.MetadataValue.json((undated or [])[:MAX_LISTED_BAD_DOCUMENTS]),
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
    if fingerprint is not None:
        metadata[LOADED_COUNT_KEY] = fingerprint.count
        metadata["warehouse_documents_before"] = loaded_before
        metadata[MAX_INGESTED_KEY] = fingerprint.max_ingested_ms
    metadata.update(table_metadata(warehouse, "rtarf_events"))
    return dg.MaterializeResult(metadata=metadata, check_results=[_rejected_check(warehouse)])


def _sweep_undated(
    elasticsearch: ElasticsearchResource, warehouse: WarehouseResource, config: RtarfSyncConfig
) -> list[dict[str, str]]:
    """Upsert every undated document into rtarf_rejected_events and drop the undated rows the index no longer
    has undated (fixed or deleted); returns them as {id, index, reason}."""
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_rejected_events
    from ingest_platform.warehouse.upsert import upsert

    found: dict[str, dict[str, Any]] = {}
    with elasticsearch.undated_pages(
        timestamp_field=config.timestamp_field, page_size=config.page_size, stats=ScanStats()
    ) as pages:
        for hits in pages:
            rejects = [_undated_reject(hit, config.timestamp_field) for hit in hits]
            found.update((reject["es_id"], reject) for reject in rejects)
            with warehouse.begin() as connection:
                upsert(connection, rtarf_rejected_events, rejects, key=EVENT_KEY)
    # The sweep saw every undated document, so an undated row it did not see is dated now or gone.
    column = rtarf_rejected_events.c
    with warehouse.begin() as connection:
        stale = set(
            connection.execute(sa.select(column.es_id).where(column.partition_day == UNDATED_PARTITION)).scalars()
        ) - set(found)
        for chunk in _chunks(sorted(stale)):
            connection.execute(
                sa.delete(rtarf_rejected_events).where(
                    column.partition_day == UNDATED_PARTITION, column.es_id.in_(chunk)
                )
            )
    return [{"id": r["es_id"], "index": r["es_index"], "reason": r["reason"]} for r in found.values()]


def _undated_reject(hit: dict[str, Any], timestamp_field: str) -> dict[str, Any]:
    source = hit.get("_source")
    value = lookup(source, timestamp_field) if isinstance(source, dict) else None
    return {
        "es_id": hit["_id"],
        "es_index": hit["_index"],
        "partition_day": UNDATED_PARTITION,
        "reason": undated_reason(value, timestamp_field),
        "source_document": source if isinstance(source, dict) and not nul_character_path(source) else None,
    }


def _rejected_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_rejected_events

    column = rtarf_rejected_events.c
    with warehouse.begin() as connection:
        total, undated = connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(column.partition_day == UNDATED_PARTITION),
            ).select_from(rtarf_rejected_events)
        ).one()
    return dg.AssetCheckResult(
        check_name=REJECTED_CHECK,
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_documents": int(total), "undated_documents": int(undated)},
        description=None
        if total == 0
        else f"{total} documents in rtarf_rejected_events ({undated} undated): see their reasons there",
    )


def _previous_metadata(context: dg.AssetExecutionContext, name: str) -> Any:
    """A value from this partition's last materialization, or None."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=ASSET_KEY, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get(name)
    return value.value if value is not None else None


def _loaded_count(warehouse: WarehouseResource, day: date, partition_day: str) -> int:
    """What the warehouse holds of a day: its events plus the documents of that day it rejected."""
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_events, rtarf_rejected_events

    start = datetime.combine(day, datetime.min.time(), UTC)
    column = rtarf_events.c.event_timestamp
    with warehouse.begin() as connection:
        events = connection.execute(
            sa.select(sa.func.count()).where(column >= start, column < start + timedelta(days=1))
        ).scalar_one()
        rejected = connection.execute(
            sa.select(sa.func.count()).where(rtarf_rejected_events.c.partition_day == partition_day)
        ).scalar_one()
    return int(events) + int(rejected)


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


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


def _rejected_ids(warehouse: WarehouseResource, partition_days: list[str]) -> set[str]:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import rtarf_rejected_events

    column = rtarf_rejected_events.c
    with warehouse.begin() as connection:
        query = sa.select(column.es_id).where(column.partition_day.in_(partition_days))
        return set(connection.execute(query).scalars())


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
