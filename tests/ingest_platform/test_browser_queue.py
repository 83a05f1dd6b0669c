"""The instance runs one browser run at a time (seed 001: the browser worker had concurrency 1)."""

from dagster import DagsterRunStatus

from ingest_platform.schedules.bigtop import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from ingest_platform.tags import BROWSER_RUN_TAGS
from tests.support.dagster_queue import project_run_queue

DECEMBER = {PARTITION_RANGE_START_TAG: "2026-12-01", PARTITION_RANGE_END_TAG: "2026-12-31"}


def test_a_second_browser_run_stays_queued_while_the_first_runs() -> None:
    with project_run_queue() as queue:
        first = queue.submit("bigtop_collect_job", DECEMBER)
        probe = queue.submit("bigtop_probe")
        landing_load = queue.submit("bigtop_push_load_job", {"dagster/partition": "2026-12-01"})
        assert BROWSER_RUN_TAGS.items() <= queue.tags(first).items()
        assert BROWSER_RUN_TAGS.items() <= queue.tags(probe).items()

        queue.tick()
        assert queue.status(first) == DagsterRunStatus.STARTING
        assert queue.status(probe) == DagsterRunStatus.QUEUED
        assert queue.status(landing_load) == DagsterRunStatus.STARTING, "runs without a browser are not held back"

        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.QUEUED

        queue.finish(first)
        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.STARTING
