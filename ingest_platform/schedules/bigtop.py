"""Schedules of the Big Top source."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from ingest_platform.assets.bigtop import bigtop_collect_job, bigtop_event_days

# Dagster's tags for a run over a partition range (what a single-run backfill launches).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

# The collector runs every 6 hours: it warns when one run is missing, fails when two are.
BIGTOP_COLLECT_FRESHNESS = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=7), fail_window=timedelta(hours=13)
)


@dg.schedule(
    name="bigtop_collect_schedule",
    cron_schedule="0 */6 * * *",
    job=bigtop_collect_job,
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every 6 hours (seed 000): one browser run over today's venue day up to the last partition.",
)
def bigtop_collect_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    tick = context.scheduled_execution_time
    keys = bigtop_event_days.get_partition_keys(current_time=tick)
    today = tick.astimezone(ZoneInfo(bigtop_event_days.timezone)).date().isoformat()
    return dg.RunRequest(tags={PARTITION_RANGE_START_TAG: today, PARTITION_RANGE_END_TAG: keys[-1]})
