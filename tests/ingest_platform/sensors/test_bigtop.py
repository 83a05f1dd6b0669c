import json
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from ingest_platform.landing import LandingZone
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.landing import LandingCursor
from tests.landing_files import land, loaded

STREAM = "bigtop_events"
OP = "bigtop__raw__pushed_events"
DAY_1 = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1e9)
DAY_2 = int(datetime(2026, 3, 2, 12, tzinfo=UTC).timestamp() * 1e9)


def tick(landing_dir, cursor: str | None = None) -> dg.SensorResult:
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            cursor=cursor, instance=instance, resources={"landing": LandingZoneResource(landing_dir=str(landing_dir))}
        ) as context,
    ):
        return bigtop_landing_sensor(context)


def requested_files(result: dg.SensorResult) -> list[list[str]]:
    return [request.run_config["ops"][OP]["config"]["files"] for request in result.run_requests]


def test_no_files_skips(tmp_path) -> None:
    result = tick(tmp_path)
    assert not result.run_requests
    assert "no new or overdue files" in result.skip_reason.skip_message


def test_batches_files_into_runs_per_landed_day(tmp_path) -> None:
    day_1 = [land(tmp_path, STREAM, {}, at_ns=DAY_1 + i) for i in range(150)]
    day_2 = [land(tmp_path, STREAM, {}, at_ns=DAY_2 + i) for i in range(3)]
    result = tick(tmp_path)
    assert requested_files(result) == [sorted(day_1)[:100], sorted(day_1)[100:], sorted(day_2)]
    assert [request.partition_key for request in result.run_requests] == ["2026-03-01", "2026-03-01", "2026-03-02"]
    assert len({request.run_key for request in result.run_requests}) == 3
    assert LandingCursor.parse(result.cursor).newest == max(day_2)


def test_cursor_never_requests_a_loaded_file_twice(tmp_path) -> None:
    first = land(tmp_path, STREAM, {}, at_ns=DAY_1)
    result = tick(tmp_path)
    assert requested_files(result) == [[first]]
    LandingZone(tmp_path).archive(STREAM, loaded(first))  # what its run does
    assert not tick(tmp_path, cursor=result.cursor).run_requests
    second = land(tmp_path, STREAM, {}, at_ns=DAY_1 + 1)
    assert requested_files(tick(tmp_path, cursor=result.cursor)) == [[second]]


def test_caps_files_per_tick_and_continues_next_tick(tmp_path) -> None:
    names = sorted(land(tmp_path, STREAM, {}, at_ns=DAY_1 + i) for i in range(2_100))
    first = tick(tmp_path)
    assert sum(len(files) for files in requested_files(first)) == 2_000
    for files in requested_files(first):
        LandingZone(tmp_path).archive(STREAM, loaded(*files))
    second = tick(tmp_path, cursor=first.cursor)
    assert [name for files in requested_files(second) for name in files] == names[2_000:]


def test_leaves_a_file_that_has_only_just_landed(tmp_path) -> None:
    land(tmp_path, STREAM, {})  # landed 10 s ago: settled
    # Named a little ahead, so it is still inside the settle window however slowly the tick starts.
    fresh = land(tmp_path, STREAM, {}, at_ns=time.time_ns() + 30 * 10**9)
    result = tick(tmp_path)
    assert fresh not in [name for files in requested_files(result) for name in files]


@pytest.mark.parametrize("stray", ["notes.txt", ".tmp", "loaded"], ids=["text-file", "temp-dir", "archive-dir"])
def test_ignores_what_is_not_a_landing_file(tmp_path, stray: str) -> None:
    (tmp_path / STREAM).mkdir(parents=True)
    (tmp_path / STREAM / stray).write_text(json.dumps({}))
    assert not tick(tmp_path).run_requests
