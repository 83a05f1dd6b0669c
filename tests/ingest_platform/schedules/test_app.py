"""app_rollup_schedule: today every hour, yesterday too until the first tick after the grace period."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ingest_platform.assets.app import RANGE_END_TAG, RANGE_START_TAG
from ingest_platform.resources.app import AppRollupResource
from ingest_platform.schedules.app import app_rollup_schedule, rollup_request


@pytest.mark.parametrize(
    ("tick", "expected"),
    [
        (datetime(2026, 3, 31, 0, 5, tzinfo=UTC), ("2026-03-30", "2026-03-31")),
        (datetime(2026, 3, 31, 2, 5, tzinfo=UTC), ("2026-03-30", "2026-03-31")),  # the first tick after the grace
        (datetime(2026, 3, 31, 3, 5, tzinfo=UTC), "2026-03-31"),
        (datetime(2026, 3, 31, 23, 5, tzinfo=UTC), "2026-03-31"),
    ],
    ids=["just-after-midnight", "grace-over", "later", "end-of-day"],
)
def test_ticks_request_today_and_yesterday_until_it_is_final(tick, expected) -> None:
    request = rollup_request(tick, grace=timedelta(hours=2))
    if isinstance(expected, tuple):
        assert request.partition_key is None
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == expected
    else:
        assert request.partition_key == expected
    assert request.run_key == f"schedule@{tick.isoformat()}"


def test_the_schedule_reads_the_grace_from_the_resource() -> None:
    tick = datetime(2026, 3, 31, 4, 5, tzinfo=UTC)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, resources={"app_rollup": AppRollupResource(final_after_hours=4)}
    )
    request = app_rollup_schedule(context)
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-03-30", "2026-03-31")
