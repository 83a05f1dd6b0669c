"""Vivenu charity tickets (seed 002): pull an event's tickets, then deliver the charity ones as webhooks.

One partition is one event in one region, `REGION:EVENT_ID`, added from the UI, the CLI or
`vivenu_event_list_sensor`.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from ingest_platform.assets.warehouse import table_metadata, table_name_metadata
from ingest_platform.resources.vivenu import VivenuError, VivenuResource, VivenuWebhooksResource, validate_event_id
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.vivenu.delivery import DeliveryOutcome, DeliverySettings, deliver
from ingest_platform.vivenu.tickets import (
    TICKET_KEY,
    is_sendable_status,
    select_tickets,
    split_partition_key,
    ticket_row,
)

# The tables and the ledger (and SQLAlchemy with them) are imported on first use: loading the code location must
# stay cheap.

vivenu_events = dg.DynamicPartitionsDefinition(name="vivenu_events")

SEED_SPACING_SECONDS = 1.8
FAILED_IDS_IN_DESCRIPTION = 20
# Listed in full up to this many per run; the count is always exact.
MAX_LISTED_LEFT_FILTER = 100


def partition_parts(context: dg.AssetExecutionContext) -> tuple[str, str]:
    try:
        region, event_id = split_partition_key(context.partition_key)
        validate_event_id(event_id)
    except (ValueError, VivenuError) as error:
        raise dg.Failure(description=str(error)) from None
    return region.upper(), event_id


class VivenuPullConfig(dg.Config):
    page_size: int | None = Field(default=None, ge=1, le=1000, description="Tickets per page; the resource's else.")


@dg.asset(
    key=["vivenu", "raw", "tickets"],
    group_name="vivenu",
    partitions_def=vivenu_events,
    kinds={"sql"},
    metadata=table_name_metadata("vivenu_tickets"),
    description="Every ticket of one Vivenu event (partition REGION:EVENT_ID), upserted into `vivenu_tickets` by "
    "(region, ticket id). Read-only towards Vivenu. Needs the region's API key `<REGION>_API` (e.g. PROD_API); "
    "without it the run fails at once naming the variable to set.",
)
def vivenu_tickets(
    context: dg.AssetExecutionContext,
    config: VivenuPullConfig,
    vivenu: VivenuResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from ingest_platform.warehouse.tables import vivenu_tickets as vivenu_tickets_table

    region, event_id = partition_parts(context)

    def on_page(fetched: int, total: int) -> None:
        context.log.info(f"{region}:{event_id}: pulled {fetched}/{total} tickets")

    try:
        tickets = vivenu.fetch_tickets(region=region, event_id=event_id, page_size=config.page_size, on_page=on_page)
    except VivenuError as error:
        raise dg.Failure(description=str(error)) from None
    rows = [ticket_row(region, event_id, ticket) for ticket in tickets]
    result = warehouse.upsert(table=vivenu_tickets_table, rows=rows, key=TICKET_KEY)
    _, counts = select_tickets(tickets)
    for line in counts.report_lines():
        context.log.info(line)
    return dg.MaterializeResult(
        metadata={
            "region": region,
            "event_id": event_id,
            **counts.as_metadata(),
            **result.as_metadata(),
            **table_metadata(warehouse, "vivenu_tickets"),
        }
    )


class CharityDeliveryConfig(dg.Config):
    """Where and how fast the charity tickets go. URLs left empty are the `vivenu_webhooks` resource's."""

    mode: Literal["prod", "test"] = Field(default="prod", description="'test' sends to the test endpoint.")
    production_url: str | None = Field(
        default=None,
        description="Else the vivenu_webhooks resource's: VIVENU_WEBHOOK_PRODUCTION_URL, else seed 002's.",
    )
    test_url: str | None = Field(
        default=None, description="Else the vivenu_webhooks resource's: VIVENU_WEBHOOK_TEST_URL, else seed 002's."
    )
    limit: int | None = Field(default=None, ge=1, description="Send at most this many (the CLI's --test sends 1).")
    requests_per_second: float = Field(
        default=1 / SEED_SPACING_SECONDS, gt=0, description="Request starts per second, retries included."
    )
    max_in_flight: int = Field(default=2, ge=1, le=64, description="Requests waiting for an answer at once.")
    headroom: float = Field(
        default=0.01, ge=0, lt=1, description="Fraction kept below the limit for the two machines' clock drift."
    )
    max_attempts: int = Field(default=5, ge=1, description="Tries per ticket on timeouts, 429 and 5xx.")
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long one request may wait for the receiver's answer; the other tickets go on meanwhile.",
    )
    backoff_base_seconds: float = Field(default=2.0, ge=0)
    backoff_cap_seconds: float = Field(default=60.0, ge=0)
    lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a killed run keeps the event locked before another may resume."
    )

    def settings(self, webhooks: VivenuWebhooksResource) -> DeliverySettings:
        configured = self.test_url if self.mode == "test" else self.production_url
        return DeliverySettings(
            endpoint=configured or webhooks.endpoint(mode=self.mode),
            mode=self.mode,
            requests_per_second=self.requests_per_second,
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            backoff_base_seconds=self.backoff_base_seconds,
            backoff_cap_seconds=self.backoff_cap_seconds,
            headroom=self.headroom,
            lease_seconds=self.lease_seconds,
            limit=self.limit,
        )


@dg.asset(
    key=["vivenu", "delivery", "charity_webhooks"],
    group_name="vivenu",
    partitions_def=vivenu_events,
    deps=[vivenu_tickets],
    kinds={"sql"},
    metadata=table_name_metadata("vivenu_deliveries"),
    description="The event's charity tickets (status VALID or DETAILSREQUIRED, 'CHARITY' in the name) sent as "
    "`ticket.created` webhooks at a bounded rate; the `vivenu_deliveries` ledger makes every ticket acknowledged "
    "once per endpoint across re-runs, retries, backfills and killed runs.",
)
def vivenu_charity_webhooks(
    context: dg.AssetExecutionContext,
    config: CharityDeliveryConfig,
    warehouse: WarehouseResource,
    vivenu_webhooks: VivenuWebhooksResource,
) -> dg.MaterializeResult:
    from ingest_platform.vivenu.ledger import DeliveryLedger, LeaseHeldError, region_progress, stored_tickets

    region, event_id = partition_parts(context)
    settings = config.settings(vivenu_webhooks)
    with warehouse.engine.connect() as connection:
        tickets = stored_tickets(connection, region=region, event_id=event_id)
    selected, counts = select_tickets(tickets)
    for line in counts.report_lines():
        context.log.info(line)
    ledger = DeliveryLedger(
        engine=warehouse.engine,
        region=region,
        event_id=event_id,
        endpoint=settings.endpoint,
        mode=settings.mode,
        run_id=context.run.run_id,
    )

    def on_progress(outcome: DeliveryOutcome) -> None:
        done = outcome.acknowledged + len(outcome.failed)
        context.log.info(
            f"{region}:{event_id}: sent {done}/{outcome.attempted} ({outcome.acknowledged} acknowledged, "
            f"{len(outcome.failed)} failed)"
        )

    context.log.info(
        f"delivering to the {settings.mode} endpoint at {settings.requests_per_second:g} requests/s, "
        f"{settings.max_in_flight} in flight"
    )
    left_filter = left_filter_after_delivery(
        tickets, selected=selected, acknowledged=ledger.acknowledged([str(ticket["_id"]) for ticket in tickets])
    )
    if left_filter:
        context.log.warning(
            f"{region}:{event_id}: {len(left_filter)} tickets already delivered to this endpoint no longer pass the "
            "filter (e.g. refunded); nothing more is sent for them (the seed sends ticket.created only)"
        )
    try:
        outcome = deliver(ledger=ledger, tickets=selected, settings=settings, on_progress=on_progress)
    except LeaseHeldError as error:
        raise dg.Failure(description=str(error)) from None
    with warehouse.engine.connect() as connection:
        progress = region_progress(connection, region=region)
    metadata = {
        "region": region,
        "event_id": event_id,
        "mode": settings.mode,
        "endpoint": settings.endpoint,
        **counts.as_metadata(),
        **outcome.as_metadata(),
        "failed_tickets": dg.MetadataValue.json(outcome.failed),
        "left_filter_after_delivery": len(left_filter),
        "left_filter_tickets": dg.MetadataValue.json(left_filter[:MAX_LISTED_LEFT_FILTER]),
        "region_progress": dg.MetadataValue.json(progress),
    }
    context.log.info(
        f"{region}:{event_id}: {outcome.acknowledged} acknowledged this run, {outcome.already_acknowledged} "
        f"already acknowledged, {len(outcome.failed)} failed"
    )
    if outcome.failed:
        failed_ids = sorted(outcome.failed)
        shown = ", ".join(failed_ids[:FAILED_IDS_IN_DESCRIPTION])
        more = len(failed_ids) - FAILED_IDS_IN_DESCRIPTION
        raise dg.Failure(
            description=f"{len(failed_ids)} of {outcome.attempted} tickets were not acknowledged: {shown}"
            + (f" and {more} more (all in the failed_tickets metadata)" if more > 0 else ""),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata={**metadata, **table_metadata(warehouse, "vivenu_deliveries")})


def left_filter_after_delivery(
    tickets: Sequence[Mapping[str, Any]], *, selected: Sequence[Mapping[str, Any]], acknowledged: set[str]
) -> list[dict[str, str | None]]:
    """Tickets the endpoint acknowledged that the filter no longer selects, as ticket id, current status and why:
    no names, emails or barcodes. Sorted by id."""
    selected_ids = {str(ticket["_id"]) for ticket in selected}
    by_id = {str(ticket["_id"]): ticket for ticket in tickets}
    left = []
    for ticket_id in sorted(acknowledged - selected_ids):
        status = by_id[ticket_id].get("status")
        reason = f"status {status}" if not is_sendable_status(status) else "no longer a charity ticket"
        left.append({"ticket_id": ticket_id, "status": status, "reason": reason})
    return left


# A run that failed because tickets failed is not retried by the instance: its 4xx tickets were refused and must
# not be sent again until someone fixes the cause. A crashed run is still retried, and resumes from the ledger.
NO_RETRY_ON_STEP_FAILURE = {"dagster/retry_on_asset_or_op_failure": "false"}

vivenu_sync_job = dg.define_asset_job(
    "vivenu_sync_job",
    selection=[vivenu_tickets, vivenu_charity_webhooks],
    tags=NO_RETRY_ON_STEP_FAILURE,
    description="Pull one event's tickets and deliver its charity tickets (seed 002's historical_sync.py).",
)

vivenu_pull_job = dg.define_asset_job(
    "vivenu_pull_job",
    selection=[vivenu_tickets],
    description="Pull one event's tickets into the warehouse, no webhook (seed 002's pull_purchased_tickets.py).",
)
