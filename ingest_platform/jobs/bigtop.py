"""The local→production bridge as a Dagster job: push the Big Top events of the local warehouse to production."""

import json

import dagster as dg
from pydantic import Field

from ingest_platform.bigtop.bridge import BridgeError, refuse_in_production
from ingest_platform.bigtop.push import BIGTOP_SOURCE_ID, DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, select_local_events
from ingest_platform.resources.bigtop import BigTopIngestResource
from ingest_platform.resources.warehouse import WarehouseResource


class BigTopPushConfig(dg.Config):
    """The CLI's options (`ingest-platform bigtop push`), for a run launched from the UI."""

    source_id: int = Field(default=BIGTOP_SOURCE_ID, description="The source whose events are pushed.")
    limit: int | None = Field(default=None, ge=1, description="Push at most this many events (soonest first).")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE, description="Events per request.")
    future_only: bool = Field(default=False, description="Only events that have not ended yet.")
    batch_delay: float = Field(
        default=0.0,
        ge=0,
        description="Seconds between batches. Not the seed's `delay`, which spaces the collector's .ics requests "
        "(delay_s of bigtop_collect_job; --delay of the CLI).",
    )
    dry_run: bool = Field(default=False, description="Log what would be sent; post nothing.")


@dg.op(
    name="bigtop_push_to_production",
    description="Posts the local warehouse's Big Top events to production's POST /api/ingest/bigtop/events.",
)
def bigtop_push_to_production(
    context: dg.OpExecutionContext,
    config: BigTopPushConfig,
    warehouse: WarehouseResource,
    bigtop_ingest: BigTopIngestResource,
) -> dg.Output[dict]:
    try:
        refuse_in_production()
    except BridgeError as error:
        raise dg.Failure(description=str(error)) from None
    with warehouse.engine.connect() as connection:
        selected = select_local_events(
            connection, source_id=config.source_id, future_only=config.future_only, limit=config.limit
        )
    if config.dry_run:
        batches = -(-len(selected) // config.batch_size)
        context.log.info(f"dry run: would push {len(selected)} events in {batches} batches; nothing posted")
        for event in selected:
            context.log.debug(json.dumps(event, ensure_ascii=False))
        return dg.Output({"selected": len(selected)}, metadata={"selected": len(selected), "dry_run": True})

    summary = bigtop_ingest.push(
        events=selected,
        source_id=config.source_id,
        batch_size=config.batch_size,
        delay=config.batch_delay,
        report=context.log.info,
    )
    metadata = {**summary.as_metadata(), "selected": len(selected)}
    metadata["failures"] = dg.MetadataValue.json(metadata["failures"])
    if not summary.ok:
        raise dg.Failure(description=summary.line(), metadata=metadata)
    return dg.Output(summary.as_metadata(), metadata=metadata)


@dg.job(
    name="bigtop_push_to_production_job",
    description="The local→production bridge (seed 000): pushes the local Big Top events to production. "
    "Refuses to run with ENV=production.",
)
def bigtop_push_to_production_job() -> None:
    bigtop_push_to_production()
