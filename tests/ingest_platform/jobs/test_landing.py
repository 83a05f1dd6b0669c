"""`landing_requeue_job` and the path back: requeued files are loaded by the landing sensor's reconciliation, once."""

import time

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.definitions import defs
from ingest_platform.landing import LandingZone
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.warehouse.tables import events, landing_ledger
from tests.landing_files import bigtop_batch, bigtop_event, land
from tests.support.landing_runs import tick_and_launch

STREAM = "bigtop_events"
HOUR_AGO = time.time_ns() - 3_600 * 1_000_000_000


@pytest.fixture
def landing_dir(tmp_path, monkeypatch, warehouse_url):
    directory = tmp_path / "landing"
    monkeypatch.setenv("LANDING_DIR", str(directory))
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("LANDING_RECONCILE_MINUTES", "0")
    return directory


def requeue(instance: dg.DagsterInstance, **config) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("landing_requeue_job").execute_in_process(
        run_config={"ops": {"landing_requeue": {"config": {"stream": STREAM, **config}}}},
        instance=instance,
        raise_on_error=False,
    )


def ledger(warehouse_url: str) -> dict[str, str]:
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(landing_ledger.c.file_name, landing_ledger.c.run_id))
            return {name: run_id for name, run_id in rows}
    finally:
        engine.dispose()


def event_ids(warehouse_url: str) -> list[str]:
    engine = sa.create_engine(warehouse_url)
    try:
        with engine.connect() as connection:
            return sorted(connection.scalars(sa.select(events.c.external_id)))
    finally:
        engine.dispose()


def test_requeued_files_load_once_and_a_file_loaded_before_is_not_loaded_again(landing_dir, warehouse_url) -> None:
    zone = LandingZone(landing_dir)
    with dg.instance_for_test() as instance:
        loaded_once = land(landing_dir, STREAM, bigtop_batch(bigtop_event("loaded-once")), at_ns=HOUR_AGO)
        cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, None)
        assert outcomes == [[True]]
        first_run = ledger(warehouse_url)[loaded_once]
        # A reload of its day that failed on a loader bug sends an archived, ledgered file to quarantine…
        zone.quarantine(STREAM, loaded_once, "payload does not match the schema: a loader bug, since fixed")
        # …and a file that never loaded waits there with the same reason.
        never_loaded = land(landing_dir, STREAM, bigtop_batch(bigtop_event("never-loaded")), at_ns=HOUR_AGO + 1)
        zone.quarantine(STREAM, never_loaded, "payload does not match the schema: a loader bug, since fixed")

        result = requeue(instance, reason_contains="LOADER BUG")

        assert result.success
        assert result.output_for_node("landing_requeue") == 2
        assert zone.pending(STREAM, limit=10) == sorted([loaded_once, never_loaded])
        assert [entry["by"] for entry in zone.requeue_history(STREAM)] == [f"dagster run {result.run_id}"] * 2

        cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)

        # The file named above the cursor is a new one to the sensor, the other one its reconciliation asks for.
        assert outcomes == [[True], [True]]
        assert zone.pending(STREAM, limit=10) == []
        assert zone.quarantined(STREAM) == []
        after = ledger(warehouse_url)
        assert after[loaded_once] == first_run  # the ledger kept its first load: this run only archived it
        assert after[never_loaded] != first_run
        assert event_ids(warehouse_url) == ["loaded-once", "never-loaded"]
        assert all(zone.locate(STREAM, name).parent.parent.name == "loaded" for name in (loaded_once, never_loaded))


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        pytest.param({}, "name the files", id="nothing-chosen"),
        pytest.param({"names": ["00000000000000000001-gone.json"]}, "not in quarantine", id="unknown-name"),
        pytest.param({"all": True, "reason_contains": "x"}, "name the files", id="two-selectors"),
    ],
)
def test_a_requeue_job_that_names_no_quarantined_file_fails_and_moves_nothing(
    landing_dir, config: dict, problem: str
) -> None:
    zone = LandingZone(landing_dir)
    name = land(landing_dir, STREAM, {}, at_ns=HOUR_AGO)
    zone.quarantine(STREAM, name, "not valid JSON")
    with dg.instance_for_test() as instance:
        result = requeue(instance, **config)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert problem in failure.step_failure_data.error.message
    assert zone.quarantined(STREAM) == [name]
    assert zone.requeue_history(STREAM) == []
