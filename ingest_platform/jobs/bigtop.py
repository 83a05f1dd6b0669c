"""Big Top's jobs: the local→production push, the in-process collection the bridge runs first, and the probe."""

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from ingest_platform.assets.bigtop import BigTopCollectConfig, bigtop_collect_job
from ingest_platform.bigtop import collector
from ingest_platform.bigtop.challenge import ChallengeError
from ingest_platform.bigtop.collector import (
    DEFAULT_BASE_URL,
    DEFAULT_PAGE_PATH,
    DEFAULT_RESTAURANT_ID,
    CollectOptions,
    CollectorError,
)
from ingest_platform.bigtop.probe import ProbeAttempt, judge, markdown_table, probe_once
from ingest_platform.bigtop.push import (
    BIGTOP_SOURCE_ID,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    BridgeError,
    refuse_in_production,
    select_local_events,
)
from ingest_platform.resources.bigtop import BigTopIngestResource
from ingest_platform.resources.browser import BrowserError, BrowserResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.tags import BROWSER_POOL


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


# --- the bridge's collection step, shared by the CLI and the push job ------------------------------------------
# Collection is the Big Top collector asset (bigtop/raw/collected_events) materialized through its job, in this
# process, on the persistent instance when `DAGSTER_HOME` is set (so the run shows in the UI), else on an ephemeral
# one. It writes the local warehouse's `events` table, which the push then reads. A dry run collects the same window
# with the collector itself and writes nothing.

COLLECTOR_KEY = dg.AssetKey(["bigtop", "raw", "collected_events"])
BROWSER_RESOURCE_KEY = "browser"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


@contextmanager
def bridge_instance() -> Iterator[dg.DagsterInstance]:
    """The persistent instance when DAGSTER_HOME is set (runs visible in the UI), else an ephemeral one."""
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()


@dataclass(frozen=True)
class Collection:
    run_id: str
    metadata: dict[str, Any]


def collect(
    *,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config: BigTopCollectConfig,
    browser: Mapping[str, Any] | None = None,
) -> Collection:
    """Materialize the collector asset once through its job; raise BridgeError when it is missing, busy or fails.

    The run's step takes the instance's `browser` pool slot like any launched run, so two collections never
    drive Chromium at once; a slot already held fails fast here rather than waiting behind a long run.
    `browser` overrides fields of the definitions' BrowserResource for this run (run config, shown in the UI).
    """
    assets_def = _collector_asset(defs)
    _refuse_if_browser_busy(instance)
    first, last = partition_range(assets_def, future_only=config.future_only)
    run_config: dict[str, Any] = {"ops": {assets_def.op.name: {"config": config.model_dump(exclude_unset=True)}}}
    if browser:
        run_config["resources"] = {BROWSER_RESOURCE_KEY: {"config": dict(browser)}}
    result = defs.resolve_job_def(bigtop_collect_job.name).execute_in_process(
        run_config=run_config,
        instance=instance,
        tags={**bigtop_collect_job.tags, PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )
    if not result.success:
        raise BridgeError(f"the collector run {result.run_id} failed: {_failure_message(result)}")
    metadata: dict[str, Any] = {}
    for materialization in result.asset_materializations_for_node(assets_def.op.name):
        metadata.update({key: value.value for key, value in materialization.metadata.items()})
    return Collection(run_id=result.run_id, metadata=metadata)


def collect_without_writing(
    *,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config: BigTopCollectConfig,
    browser: Mapping[str, Any] | None = None,
) -> collector.Collection:
    """What `collect` would find (same window, same options), read with the collector alone: nothing is written.

    The browser is a BrowserResource with its defaults (those the definitions bind) and `browser` applied.
    """
    assets_def = _collector_asset(defs)
    _refuse_if_browser_busy(instance)
    first, last = partition_range(assets_def, future_only=config.future_only)
    partitions_def = assets_def.partitions_def
    window_start = partitions_def.time_window_for_partition_key(first).start
    window_end = partitions_def.time_window_for_partition_key(last).end
    try:
        return collector.collect(
            browser=BrowserResource(**(browser or {})),
            options=config.options(window_start=window_start, window_end=window_end),
        )
    except (ChallengeError, CollectorError, BrowserError) as error:
        raise BridgeError(f"the collection failed: {error}") from error


def partition_range(assets_def: dg.AssetsDefinition, *, future_only: bool) -> tuple[str, str]:
    """One run over the partitions to refresh: all of them, or those not yet over with `future_only`."""
    partitions_def = assets_def.partitions_def
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        raise BridgeError(f"{COLLECTOR_KEY.to_user_string()} is not partitioned by day")
    keys = list(partitions_def.get_partition_keys())
    if future_only:
        now = datetime.now(UTC)
        keys = [key for key in keys if partitions_def.time_window_for_partition_key(key).end > now]
    if not keys:
        raise BridgeError(f"{COLLECTOR_KEY.to_user_string()} has no partitions to collect")
    return keys[0], keys[-1]


def _collector_asset(defs: dg.Definitions) -> dg.AssetsDefinition:
    if COLLECTOR_KEY not in defs.resolve_all_asset_keys():
        raise BridgeError(
            f"the Big Top collector asset {COLLECTOR_KEY.to_user_string()} is not in the platform's definitions; "
            "push what the local warehouse already holds with --no-collect"
        )
    return defs.resolve_assets_def(COLLECTOR_KEY)


def _refuse_if_browser_busy(instance: dg.DagsterInstance) -> None:
    # Only a fast refusal: the pool itself keeps two in-process runs that both pass this check apart.
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    holders = sorted(storage.get_concurrency_info(BROWSER_POOL).active_run_ids)
    if holders:
        raise BridgeError(
            f"browser run {holders[0]} holds the {BROWSER_POOL!r} pool: one browser at a time; "
            "try again when it has finished"
        )


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            # Dagster wraps the asset's own exception; the innermost cause is the one that says what happened.
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip()
    return "see the run's logs"


# --- the probe (seed 001, phase 1) ------------------------------------------------------------------------------

PROBE_MAX_RUNTIME_S = 3600


class ProbeConfig(dg.Config):
    attempts: int = Field(default=5, ge=1, le=20, description="How many attempts (the seed ran 5).")
    spacing_s: float = Field(
        default=240.0, ge=0, description="Pause between attempts (the seed spread 5 runs over 15-30 minutes)."
    )
    base_url: str = DEFAULT_BASE_URL
    page_path: str = DEFAULT_PAGE_PATH
    restaurant_id: int = DEFAULT_RESTAURANT_ID
    settle_s: float = Field(default=3.0, ge=0, description="Wait after DOM ready, as the seed's 3 s.")


@dg.op(
    pool=BROWSER_POOL,
    description="Runs the probe's attempts and judges them; fails the run unless the verdict is PASS.",
)
def bigtop_probe_attempts(context: dg.OpExecutionContext, config: ProbeConfig, browser: BrowserResource) -> str:
    options = CollectOptions(
        base_url=config.base_url,
        page_path=config.page_path,
        restaurant_id=config.restaurant_id,
        settle_s=config.settle_s,
    )
    attempts: list[ProbeAttempt] = []
    for number in range(1, config.attempts + 1):
        if number > 1 and config.spacing_s:
            time.sleep(config.spacing_s)
        attempt = probe_once(browser=browser, options=options, number=number)
        attempts.append(attempt)
        context.log.info(
            f"probe {number}/{config.attempts}: IS_CHALLENGE={attempt.is_challenge} "
            f"REFUSED={attempt.refused or '-'} GRAPHQL_STATUS={attempt.graphql_status} "
            f"elapsed={attempt.elapsed_s:.2f}s" + (f" error={attempt.error}" if attempt.error else "")
        )
    judgement = judge(attempts)
    metadata = {
        "verdict": judgement.verdict,
        "passed": judgement.passed,
        "attempts": len(attempts),
        "counted": judgement.counted,
        "site_unavailable": judgement.unavailable,
        "results": dg.MetadataValue.md(markdown_table(attempts)),
    }
    if judgement.verdict != "PASS":
        raise dg.Failure(
            description=f"Big Top probe verdict {judgement.verdict}: {judgement.summary()}", metadata=metadata
        )
    context.add_output_metadata(metadata)
    return judgement.verdict


@dg.job(
    name="bigtop_probe",
    tags={"dagster/max_runtime": str(PROBE_MAX_RUNTIME_S)},
    description="Seed 001's Playwright probe: N browser attempts at the venue page and GraphQL; writes no events.",
)
def bigtop_probe() -> None:
    bigtop_probe_attempts()
