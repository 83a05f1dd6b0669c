"""Sensors of the Ingest Service source: one landing sensor per intake stream, the rollups' late-data sensor and
the search index's automation."""

from datetime import date

import dagster as dg

from ingest_platform.assets.app import (
    APP_LANDING_ASSETS,
    DIRTY_FROM_TAG,
    DIRTY_THROUGH_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    app_load_jobs,
    app_rollup_job,
    app_search_rules_index,
)
from ingest_platform.partitions import event_daily
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.landing import build_landing_sensor

app_landing_sensors = [
    build_landing_sensor(
        name=f"app_{stream.removeprefix('app_')}_landing_sensor",
        stream=stream,
        job_name=app_load_jobs[stream].name,
        asset_key=asset.key,
    )
    for stream, asset in APP_LANDING_ASSETS.items()
]

# Evaluates the index's automation condition (a rebuild after rule or crawl loads). Its own sensor, running by
# default, so the refresh does not depend on the instance-wide default automation sensor being switched on.
app_search_automation_sensor = dg.AutomationConditionSensorDefinition(
    "app_search_automation_sensor",
    target=[app_search_rules_index],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds app/search/rules_index once rules or crawl items have loaded since the last rebuild.",
)

ROLLUP_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.sensor(
    name="app_rollup_sensor",
    job=app_rollup_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Recomputes the event days loads changed (late events, refunds, rule changes noted in "
    "rollup_dirty_days) and every day after them through today, in one app_rollup_job run.",
)
def app_rollup_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    from ingest_platform.app.rollups import pending

    if rollup_in_flight(context.instance):
        # The next tick after it ends sees what it did not claim; two runs at once could interleave days.
        return dg.SkipReason("an app_rollup_job run is in flight")
    with warehouse.engine.connect() as connection:
        waiting = pending(connection)
    if waiting is None:
        return dg.SkipReason("no event day changed since the last rollup")
    first, last = _partition_range(waiting.first_day)
    tags = {DIRTY_THROUGH_TAG: str(waiting.through_id), DIRTY_FROM_TAG: waiting.first_day.isoformat()}
    context.log.info(f"{waiting.rows} dirty day notes from {waiting.first_day}: rolling up {first}..{last}")
    if first == last:
        return dg.RunRequest(partition_key=last, tags=tags)
    return dg.RunRequest(tags={**tags, RANGE_START_TAG: first, RANGE_END_TAG: last})


def _partition_range(first_day: date) -> tuple[str, str]:
    """From the first changed day (within the partitions) through today: later days read the earlier ones."""
    last = event_daily.get_last_partition_key()
    first = max(first_day.isoformat(), event_daily.get_first_partition_key())
    return min(first, last), last


def rollup_in_flight(instance: dg.DagsterInstance) -> bool:
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=app_rollup_job.name, statuses=ROLLUP_IN_FLIGHT), limit=1
    )
    return bool(records)
