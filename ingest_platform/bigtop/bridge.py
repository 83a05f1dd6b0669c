"""The bridge's guard rails and its collection step, shared by the CLI and the Dagster push job.

Collection is the Big Top collector asset (bigtop/raw/collected_events) materialized through its job, in this
process, on the persistent instance when `DAGSTER_HOME` is set (so the run shows in the UI), else on an ephemeral
one. It writes the local warehouse's `events` table, which the push then reads. A dry run collects the same window
with the collector itself and writes nothing.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ingest_platform.assets.bigtop import BigTopCollectConfig, bigtop_collect_job
from ingest_platform.bigtop import collector
from ingest_platform.bigtop.challenge import ChallengeError
from ingest_platform.bigtop.collector import CollectorError
from ingest_platform.resources.browser import BrowserError, BrowserResource
from ingest_platform.tags import BROWSER_RUN_TAGS

COLLECTOR_KEY = dg.AssetKey(["bigtop", "raw", "collected_events"])
BROWSER_RESOURCE_KEY = "browser"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
BUSY_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


class BridgeError(Exception):
    """The bridge cannot go on; the message says why and what to do."""


def refuse_in_production(environ: Mapping[str, str] | None = None) -> None:
    """Raise when `ENV=production`: production receives the pushes, it never runs the bridge (seed 000)."""
    env = (environ if environ is not None else os.environ).get("ENV", "")
    if env.strip().lower() == "production":
        raise BridgeError(
            "refusing to run with ENV=production: the Big Top bridge runs on a local machine and pushes to "
            "production; production itself only receives (POST /api/ingest/bigtop/events)"
        )


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
        tags={**BROWSER_RUN_TAGS, PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last},
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
    # The instance's tag limit only governs runs it launches; an in-process run must check for itself.
    busy = instance.get_run_records(filters=dg.RunsFilter(statuses=BUSY_STATUSES, tags=BROWSER_RUN_TAGS), limit=1)
    if busy:
        raise BridgeError(
            f"browser run {busy[0].dagster_run.run_id} is {busy[0].dagster_run.status.value.lower()}: one browser "
            "at a time; try again when it has finished"
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
