from datetime import UTC, date, datetime, timedelta

import dagster as dg

from ingest_platform.assets.bigtop import COLLECT_HORIZON_DAYS
from ingest_platform.definitions import defs
from ingest_platform.schedules.bigtop import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    bigtop_collect_schedule,
)


def test_every_six_hours_stopped_by_default_on_the_collect_job() -> None:
    assert bigtop_collect_schedule.cron_schedule == "0 */6 * * *"
    assert bigtop_collect_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert bigtop_collect_schedule.job_name == "bigtop_collect_job"


def test_a_tick_asks_for_one_run_from_the_venues_today_to_the_horizon() -> None:
    # 02:00 UTC on Dec 1 is still Nov 30 in New York.
    tick = datetime(2026, 12, 1, 2, tzinfo=UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        [request] = bigtop_collect_schedule.evaluate_tick(context).run_requests
    assert request.partition_key is None
    assert request.tags[PARTITION_RANGE_START_TAG] == "2026-11-30"
    # COLLECT_HORIZON_DAYS venue days, today included
    last = date(2026, 11, 30) + timedelta(days=COLLECT_HORIZON_DAYS - 1)
    assert request.tags[PARTITION_RANGE_END_TAG] == last.isoformat()
