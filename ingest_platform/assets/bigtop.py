"""Big Top events: the batches the local runner pushes to production (seed 000), loaded from the landing zone."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import AwareDatetime, BaseModel, ConfigDict

from ingest_platform.loading import LandingBatchConfig, load_landing_files
from ingest_platform.partitions import landed_daily
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events

BIGTOP_SOURCE_ID = 5
PUSH_STREAM = "bigtop_events"
EVENT_KEY = ["source_id", "external_id"]


class LandedEvent(BaseModel):
    """An event as the webhook app validated it; re-checked here because a landed file may be damaged."""

    model_config = ConfigDict(extra="ignore")

    external_id: str
    title: str
    start_utc: AwareDatetime
    end_utc: AwareDatetime | None = None
    description: str | None = None
    location: str | None = None
    external_url: str | None = None
    categories: list[str] | None = None


class LandedPush(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source_id: int
    events: list[LandedEvent]


def push_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    push = LandedPush.model_validate(document["payload"])
    if push.source_id != BIGTOP_SOURCE_ID:
        # Production only ever upserts the Big Top source (seed 000).
        raise ValueError(f"source_id {push.source_id} is not Big Top's ({BIGTOP_SOURCE_ID})")
    return [{"source_id": BIGTOP_SOURCE_ID, **event.model_dump()} for event in push.events]


@dg.asset(
    key=["bigtop", "raw", "pushed_events"],
    group_name="bigtop",
    partitions_def=landed_daily,
    kinds={"sql"},
    description="Events pushed to POST /api/ingest/bigtop/events, upserted into `events` by (source_id, "
    "external_id). Partitioned by the UTC day the batch landed.",
)
def bigtop_pushed_events(
    context: dg.AssetExecutionContext,
    config: LandingBatchConfig,
    landing: LandingZoneResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    return load_landing_files(
        context,
        config=config,
        stream=PUSH_STREAM,
        landing=landing,
        warehouse=warehouse,
        table=events,
        key=EVENT_KEY,
        rows_from_document=push_rows,
    )


bigtop_push_load_job = dg.define_asset_job(
    "bigtop_push_load_job",
    selection=[bigtop_pushed_events],
    description="Loads landed Big Top push batches; requested by bigtop_landing_sensor.",
)
