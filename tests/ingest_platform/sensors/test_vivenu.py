"""vivenu_event_list_sensor: a file of events → partitions and sync runs, each event once."""

from pathlib import Path

import dagster as dg
import pytest

from ingest_platform.assets.vivenu import vivenu_events
from ingest_platform.sensors.vivenu import vivenu_event_list_sensor

EVENT_LIST = """\
# region event
PROD 68108c20c5c88849372bfb61
italy:67abc123def456789
PROD   68108c20c5c88849372bfb61
not an event line!
DACH 6864d4f427c2aa9b05cd17ee  # after the doors opened
"""


@pytest.fixture
def event_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "events.txt"
    monkeypatch.setenv("VIVENU_EVENT_LIST", str(path))
    return path


def test_new_events_become_partitions_and_sync_runs_once(event_list: Path) -> None:
    event_list.write_text(EVENT_LIST)
    expected = ["PROD:68108c20c5c88849372bfb61", "ITALY:67abc123def456789", "DACH:6864d4f427c2aa9b05cd17ee"]
    with dg.instance_for_test() as instance:
        result = vivenu_event_list_sensor(dg.build_sensor_context(instance=instance))

        assert [request.partition_key for request in result.run_requests] == expected
        assert [request.run_key for request in result.run_requests] == expected
        (add,) = result.dynamic_partitions_requests
        assert (add.partitions_def_name, list(add.partition_keys)) == (vivenu_events.name, expected)

        instance.add_dynamic_partitions(vivenu_events.name, expected[:2])
        again = vivenu_event_list_sensor(dg.build_sensor_context(instance=instance))
        assert [request.partition_key for request in again.run_requests] == expected[2:]

        instance.add_dynamic_partitions(vivenu_events.name, expected[2:])
        idle = vivenu_event_list_sensor(dg.build_sensor_context(instance=instance))
        assert idle.run_requests == [] and "no new events" in idle.skip_reason.skip_message


def test_no_list_is_a_skip_naming_the_file(event_list: Path) -> None:
    with dg.instance_for_test() as instance:
        result = vivenu_event_list_sensor(dg.build_sensor_context(instance=instance))
    assert str(event_list) in result.skip_reason.skip_message
