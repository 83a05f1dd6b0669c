"""The Ingest Service rollups' schedule: today's metrics at least hourly, yesterday's made final after the grace."""

from datetime import UTC, datetime, time, timedelta

import dagster as dg

from ingest_platform.assets.app import RANGE_END_TAG, RANGE_START_TAG, app_rollup_job
from ingest_platform.partitions import event_daily
from ingest_platform.resources.app import AppRollupResource

# The rollups run every hour: they warn when one run is missing, fail when three are.
APP_ROLLUP_FRESHNESS = dg.FreshnessPolicy.time_window(warn_window=timedelta(hours=2), fail_window=timedelta(hours=4))


@dg.schedule(
    name="app_rollup_schedule",
    cron_schedule="5 * * * *",
    job=app_rollup_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :05 recomputes today's metrics and leaderboards; until the first tick after the "
    "grace period (AppRollupResource.final_after_hours) also yesterday's, which that tick makes final.",
)
def app_rollup_schedule(context: dg.ScheduleEvaluationContext, app_rollup: AppRollupResource):
    tick = context.scheduled_execution_time.astimezone(UTC)
    return rollup_request(tick, grace=timedelta(hours=app_rollup.final_after_hours))


def rollup_request(tick: datetime, *, grace: timedelta) -> dg.RunRequest:
    today = tick.date()
    midnight = datetime.combine(today, time(), UTC)
    run_key = f"schedule@{tick.isoformat()}"
    # An hourly schedule: the ticks within grace + 1 hour of midnight redo yesterday, the last of them after the grace.
    if tick - midnight < grace + timedelta(hours=1) and event_daily.has_partition_key(
        (today - timedelta(days=1)).isoformat()
    ):
        yesterday = (today - timedelta(days=1)).isoformat()
        return dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: yesterday, RANGE_END_TAG: today.isoformat()})
    return dg.RunRequest(run_key=run_key, partition_key=today.isoformat())
