"""The RTARF run-status sensors post a signed notification to the configured webhook."""

import hashlib
import hmac
from collections.abc import Iterator
from datetime import date

import dagster as dg
import pytest

from ingest_platform.assets.rtarf import rtarf_events_asset, rtarf_sync_job
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.rtarf import RtarfSettingsResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.rtarf import rtarf_run_failure_sensor, rtarf_run_success_sensor
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.notification_receiver import WebhookReceiver
from tests.fakes.rtarf_documents import INDEX, day_documents

DAY = date(2025, 11, 14)
SECRET = "notify-secret-for-tests"


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch().running() as server:
        server.index_many(INDEX, day_documents(DAY, 5))
        yield server


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    with WebhookReceiver().running() as running:
        monkeypatch.setenv("RTARF_NOTIFY_WEBHOOK_URL", running.url)
        monkeypatch.setenv("RTARF_NOTIFY_WEBHOOK_SECRET", SECRET)
        yield running


def run_sync(instance: dg.DagsterInstance, es_url: str, data_dir) -> dg.ExecuteInProcessResult:
    definitions = dg.Definitions(
        assets=[rtarf_events_asset],
        jobs=[rtarf_sync_job],
        resources={
            "elasticsearch": ElasticsearchResource(url=es_url, max_retries=0),
            "warehouse": WarehouseResource(database_url=f"sqlite:///{data_dir / 'warehouse.sqlite'}"),
        },
    )
    job = definitions.resolve_job_def(rtarf_sync_job.name)
    return job.execute_in_process(instance=instance, partition_key=DAY.isoformat(), raise_on_error=False)


def evaluate(
    sensor: dg.RunStatusSensorDefinition,
    result: dg.ExecuteInProcessResult,
    instance: dg.DagsterInstance,
    settings: RtarfSettingsResource | None = None,
):
    status = dg.DagsterEventType.RUN_SUCCESS if result.success else dg.DagsterEventType.RUN_FAILURE
    (event,) = [event for event in result.all_events if event.event_type == status]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"rtarf_settings": settings or RtarfSettingsResource()},
    )
    return sensor(context.for_run_failure() if not result.success else context)


def test_a_successful_sync_is_notified_with_its_figures(es, receiver: WebhookReceiver, data_dir):
    with dg.instance_for_test() as instance:
        result = run_sync(instance, es.url, data_dir)
        evaluate(rtarf_run_success_sensor, result, instance)

    (request,) = receiver.received
    payload = request.json
    assert {key: payload[key] for key in ("event", "status", "partition", "run_id", "job")} == {
        "event": "rtarf.sync.succeeded",
        "status": "success",
        "partition": DAY.isoformat(),
        "run_id": result.run_id,
        "job": "rtarf_sync_job",
    }
    assert {key: payload["result"][key] for key in ("total_processed", "inserted", "updated", "bad_documents")} == {
        "total_processed": 5,
        "inserted": 5,
        "updated": 0,
        "bad_documents": 0,
    }
    expected = hmac.new(SECRET.encode(), request.raw, hashlib.sha256).hexdigest()
    assert request.headers["X-Rtarf-Signature"] == f"sha256={expected}"
    assert request.headers["X-Rtarf-Notification-Id"] == f"{result.run_id}:success"


def test_a_failed_sync_is_notified_with_the_error(receiver: WebhookReceiver, data_dir):
    with dg.instance_for_test() as instance:
        result = run_sync(instance, "http://127.0.0.1:9", data_dir)
        assert not result.success
        evaluate(rtarf_run_failure_sensor, result, instance)

    (request,) = receiver.received
    assert (request.json["event"], request.json["status"], request.json["result"]) == (
        "rtarf.sync.failed",
        "failed",
        {},
    )
    assert "rtarf__raw__events" in request.json["error"]


def test_a_receiver_error_is_retried(es, receiver: WebhookReceiver, data_dir):
    receiver.statuses = [503]
    with dg.instance_for_test() as instance:
        evaluate(rtarf_run_success_sensor, run_sync(instance, es.url, data_dir), instance)

    assert len(receiver.received) == 2
    assert receiver.received[0].raw == receiver.received[1].raw


def test_a_rejecting_receiver_fails_the_tick_so_it_is_retried(es, receiver: WebhookReceiver, data_dir):
    receiver.statuses = [400]
    with dg.instance_for_test() as instance:
        result = run_sync(instance, es.url, data_dir)
        with pytest.raises(Exception, match="HTTP 400"):
            evaluate(rtarf_run_success_sensor, result, instance)

    assert len(receiver.received) == 1


def test_without_a_webhook_url_nothing_is_sent(es, data_dir, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RTARF_NOTIFY_WEBHOOK_URL", raising=False)
    with dg.instance_for_test() as instance:
        outcome = evaluate(rtarf_run_success_sensor, run_sync(instance, es.url, data_dir), instance)

    assert isinstance(outcome, dg.SkipReason)
    assert "RTARF_NOTIFY_WEBHOOK_URL is not set" in outcome.skip_message


def test_the_webhook_is_the_one_the_resource_names_read_when_the_tick_starts(
    es, data_dir, monkeypatch: pytest.MonkeyPatch
):
    settings = RtarfSettingsResource(notify_url_env="OPS_RTARF_HOOK", notify_secret_env="OPS_RTARF_HOOK_SECRET")
    with WebhookReceiver().running() as running, dg.instance_for_test() as instance:
        result = run_sync(instance, es.url, data_dir)
        monkeypatch.delenv("RTARF_NOTIFY_WEBHOOK_URL", raising=False)
        monkeypatch.setenv("OPS_RTARF_HOOK", running.url)
        monkeypatch.setenv("OPS_RTARF_HOOK_SECRET", SECRET)
        evaluate(rtarf_run_success_sensor, result, instance, settings)

    (request,) = running.received
    expected = hmac.new(SECRET.encode(), request.raw, hashlib.sha256).hexdigest()
    assert request.headers["X-Rtarf-Signature"] == f"sha256={expected}"


def test_the_unset_notification_settings_are_reported_before_a_tick(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RTARF_NOTIFY_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("RTARF_NOTIFY_WEBHOOK_SECRET", SECRET)

    assert list(RtarfSettingsResource().missing_settings()) == ["RTARF_NOTIFY_WEBHOOK_URL"]
