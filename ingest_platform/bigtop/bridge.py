"""The bridge's guard rails and its collection step, shared by the CLI and the Dagster push job.

Collection is the Big Top collector asset materialized through Dagster, in this process, on the persistent instance
when `DAGSTER_HOME` is set (so the run shows in the UI), else on an ephemeral one. It writes the local warehouse's
`events` table, which the push then reads.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ingest_platform.tags import BROWSER_RUN_TAGS

COLLECTOR_KEY = dg.AssetKey(["bigtop", "raw", "collected_events"])
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
    future_only: bool = False,
    limit: int | None = None,
) -> Collection:
    """Materialize the collector asset once; raise BridgeError when it is missing, busy or fails."""
    if COLLECTOR_KEY not in defs.resolve_all_asset_keys():
        raise BridgeError(
            f"the Big Top collector asset {COLLECTOR_KEY.to_user_string()} is not in the platform's definitions; "
            "push what the local warehouse already holds with --no-collect"
        )
    assets_def = defs.resolve_assets_def(COLLECTOR_KEY)
    _refuse_if_browser_busy(instance)
    job = _collector_job(defs)
    # The options the collector shares with the bridge, passed on when its config declares them.
    options = {"future_only": future_only, "limit": limit}
    accepted = _config_fields(assets_def)
    config = {name: value for name, value in options.items() if name in accepted and value is not None}
    run_config = {"ops": {assets_def.op.name: {"config": config}}} if config else {}
    result = job.execute_in_process(
        run_config=run_config,
        instance=instance,
        asset_selection=[COLLECTOR_KEY],
        tags={**BROWSER_RUN_TAGS, **_partition_range_tags(assets_def, future_only=future_only, instance=instance)},
        raise_on_error=False,
    )
    if not result.success:
        raise BridgeError(f"the collector run {result.run_id} failed: {_failure_message(result)}")
    metadata: dict[str, Any] = {}
    for materialization in result.asset_materializations_for_node(assets_def.op.name):
        metadata.update({key: value.value for key, value in materialization.metadata.items()})
    return Collection(run_id=result.run_id, metadata=metadata)


def _collector_job(defs: dg.Definitions) -> dg.JobDefinition:
    """The collector's own job when the definitions have one (it carries its run tags), else the implicit one."""
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__") and set(job.asset_layer.selected_asset_keys) == {COLLECTOR_KEY}:
            return job
    job = defs.resolve_implicit_job_def_def_for_assets([COLLECTOR_KEY])
    if job is None:
        raise BridgeError(f"no job can materialize {COLLECTOR_KEY.to_user_string()}")
    return job


def _refuse_if_browser_busy(instance: dg.DagsterInstance) -> None:
    # The instance's tag limit only governs runs it launches; an in-process run must check for itself.
    busy = instance.get_run_records(filters=dg.RunsFilter(statuses=BUSY_STATUSES, tags=BROWSER_RUN_TAGS), limit=1)
    if busy:
        raise BridgeError(
            f"browser run {busy[0].dagster_run.run_id} is {busy[0].dagster_run.status.value.lower()}: one browser "
            "at a time; try again when it has finished"
        )


def _config_fields(assets_def: dg.AssetsDefinition) -> set[str]:
    schema = assets_def.op.config_schema
    config_type = getattr(schema, "config_type", None)
    return set(getattr(config_type, "fields", None) or {})


def _partition_range_tags(
    assets_def: dg.AssetsDefinition, *, future_only: bool, instance: dg.DagsterInstance
) -> dict[str, str]:
    """One run over the partitions to refresh: all of them, or those not yet over with `future_only`."""
    partitions_def = assets_def.partitions_def
    if partitions_def is None:
        return {}
    keys = list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))
    if future_only and isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        now = datetime.now(UTC)
        keys = [key for key in keys if partitions_def.time_window_for_partition_key(key).end > now]
    if not keys:
        raise BridgeError(f"{COLLECTOR_KEY.to_user_string()} has no partitions to collect")
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            # Dagster wraps the asset's own exception; the innermost cause is the one that says what happened.
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip()
    return "see the run's logs"
