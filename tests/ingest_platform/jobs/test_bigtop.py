"""`bigtop_push_to_production_job`: the bridge's push as a Dagster job, secrets from the environment."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ingest_platform.definitions import defs
from ingest_platform.resources.bigtop import BigTopIngestResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_production import BigTopProduction, Status

TOKEN = "job-token-3c9f1e7b42"
OP = "bigtop_push_to_production"


def local_events(count: int) -> None:
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    rows = [
        {"source_id": 5, "external_id": f"job-{number}", "title": f"Open mic {number}", "start_utc": first}
        for number in range(count)
    ]
    WarehouseResource().upsert(table=events, rows=rows, key=["source_id", "external_id"])


def run_job(instance: dg.DagsterInstance, **config: object) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("bigtop_push_to_production_job").execute_in_process(
        run_config={"ops": {OP: {"config": config}}}, instance=instance, raise_on_error=False
    )


def output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (output,) = [event for event in result.all_node_events if event.is_successful_output]
    return {key: value.value for key, value in output.step_output_data.metadata.items()}


def failure(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    (event,) = [event for event in result.all_node_events if event.is_step_failure]
    return event


def transcript(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(f"{entry.user_message} {entry.dagster_event}" for entry in instance.all_logs(result.run_id))


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with BigTopProduction(tmp_path / "prod-landing", TOKEN) as server:
        monkeypatch.setenv("BIGTOP_INGEST_API_BASE", server.url)
        monkeypatch.setenv("BIGTOP_INGEST_TOKEN", TOKEN)
        yield server


def test_job_pushes_the_local_events_with_the_secrets_of_the_environment(production: BigTopProduction) -> None:
    local_events(5)
    with dg.instance_for_test() as instance:
        result = run_job(instance, batch_size=2)
        logs = transcript(instance, result)

    assert result.success
    metadata = output_metadata(result)
    assert {key: metadata[key] for key in ("sent", "accepted", "batches", "failed_batches", "selected")} == {
        "sent": 5,
        "accepted": 5,
        "batches": 3,
        "failed_batches": 0,
        "selected": 5,
    }
    assert [len(document["payload"]["events"]) for document in production.landed_documents()] == [2, 2, 1]
    assert "batch 3/3: 1 events -> HTTP 202" in logs
    assert TOKEN not in logs and TOKEN not in str(metadata)


def test_job_fails_with_the_summary_when_a_batch_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local_events(3)
    monkeypatch.setenv("BIGTOP_INGEST_TOKEN", TOKEN)
    with (
        BigTopProduction(tmp_path / "prod-landing", TOKEN, failures=[Status(503)] * 2) as production,
        dg.instance_for_test() as instance,
    ):
        monkeypatch.setenv("BIGTOP_INGEST_API_BASE", production.url)
        result = defs.resolve_job_def("bigtop_push_to_production_job").execute_in_process(
            run_config={"ops": {OP: {"config": {"batch_size": 2}}}},
            resources={
                "bigtop_ingest": BigTopIngestResource(
                    api_base=production.url, token=TOKEN, max_attempts=2, backoff_seconds=0.01
                )
            },
            instance=instance,
            raise_on_error=False,
        )
        logs = transcript(instance, result)
    assert not result.success
    event = failure(result)
    assert "0 accepted; 2 batches, 1 failed, 1 not sent" in event.step_failure_data.error.message
    metadata = {key: value.value for key, value in event.step_failure_data.user_failure_data.metadata.items()}
    assert (metadata["failed_batches"], metadata["unsent_batches"]) == (1, 1)
    assert TOKEN not in logs


def test_job_refuses_with_env_production(production: BigTopProduction, monkeypatch: pytest.MonkeyPatch) -> None:
    local_events(2)
    monkeypatch.setenv("ENV", "production")
    with dg.instance_for_test() as instance:
        result = run_job(instance)
    assert not result.success
    assert "refusing to run with ENV=production" in failure(result).step_failure_data.error.message
    assert production.requests == []


def test_job_dry_run_posts_nothing(production: BigTopProduction) -> None:
    local_events(4)
    with dg.instance_for_test() as instance:
        result = run_job(instance, dry_run=True, limit=3)
    assert result.success
    assert output_metadata(result) == {"selected": 3, "dry_run": True}
    assert production.requests == []


@pytest.mark.parametrize("batch_size", [0, 501], ids=str)
def test_job_config_refuses_a_batch_size_outside_1_to_500(production: BigTopProduction, batch_size: int) -> None:
    local_events(1)
    with dg.instance_for_test() as instance:
        result = run_job(instance, batch_size=batch_size)
    assert not result.success
    message = failure(result).step_failure_data.error.to_string()
    assert "batch_size" in message and (
        "less than or equal to 500" in message or "greater than or equal to 1" in message
    )
    assert production.requests == []
