"""The instance runs one browser at a time (seed 001: the browser worker had concurrency 1), through the `browser`
pool: runs the daemon launches from either code location, and in-process runs (the CLI's) in the same slot."""

import threading

import dagster as dg
import pytest
from dagster import DagsterRunStatus

from ingest_platform.schedules.bigtop import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from ingest_platform.tags import BROWSER_POOL
from tests.support.dagster_queue import DOCKER_LOCATIONS, ONE_LOCATION, project_run_queue

DECEMBER = {PARTITION_RANGE_START_TAG: "2026-12-01", PARTITION_RANGE_END_TAG: "2026-12-31"}


@pytest.mark.parametrize("locations", [ONE_LOCATION, DOCKER_LOCATIONS], ids=["one-location", "docker-locations"])
def test_a_second_browser_run_stays_queued_while_the_first_runs(locations) -> None:
    with project_run_queue(locations=locations) as queue:
        first = queue.submit("bigtop_collect_job", DECEMBER)
        probe = queue.submit("bigtop_probe")
        landing_load = queue.submit("bigtop_push_load_job", {"dagster/partition": "2026-12-01"})

        queue.tick()
        assert queue.status(first) == DagsterRunStatus.STARTING
        assert queue.status(probe) == DagsterRunStatus.QUEUED
        assert queue.status(landing_load) == DagsterRunStatus.STARTING, "runs without a browser are not held back"

        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.QUEUED

        queue.finish(first)
        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.STARTING


def test_the_asset_materialized_on_its_own_queues_behind_a_browser_run() -> None:
    """What the asset page launches (the implicit asset job, no job tags) is held back by the pool too."""
    with project_run_queue() as queue:
        probe = queue.submit("bigtop_probe")
        queue.tick()
        from_asset_page = queue.submit_asset("bigtop/raw/collected_events", DECEMBER)
        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.STARTING
        assert queue.status(from_asset_page) == DagsterRunStatus.QUEUED
        queue.finish(probe)
        queue.tick()
        assert queue.status(from_asset_page) == DagsterRunStatus.STARTING


def test_an_in_process_run_holds_the_slot_a_launched_browser_run_waits_for() -> None:
    """The CLI's collection runs in process (not launched by the daemon) and still takes the one slot."""
    entered, release = threading.Event(), threading.Event()

    @dg.op(pool=BROWSER_POOL)
    def hold_the_browser() -> None:
        entered.set()
        assert release.wait(60), "the test never released the slot"

    @dg.job
    def cli_like_browser_run() -> None:
        hold_the_browser()

    with project_run_queue(locations=DOCKER_LOCATIONS) as queue:
        results: list[dg.ExecuteInProcessResult] = []
        worker = threading.Thread(
            target=lambda: results.append(cli_like_browser_run.execute_in_process(instance=queue.instance))
        )
        worker.start()
        try:
            assert entered.wait(60), "the in-process run never got the browser slot"
            probe = queue.submit("bigtop_probe")
            queue.tick()
            assert queue.status(probe) == DagsterRunStatus.QUEUED
        finally:
            release.set()
            worker.join(60)
        assert results and results[0].success
        queue.tick()
        assert queue.status(probe) == DagsterRunStatus.STARTING
