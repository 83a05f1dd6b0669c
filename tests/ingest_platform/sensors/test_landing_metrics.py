"""`landing_metrics_sensor`: the platform's series in a textfile, read back with prometheus_client's parser and
served by the webhook app's /metrics next to its own."""

import time

import dagster as dg
import pytest

from ingest_platform.definitions import defs
from ingest_platform.landing import PLATFORM_METRICS_FILE, LandingZone
from ingest_platform.resources.landing import LandingZoneResource
from tests.landing_files import land
from tests.webhook_app.metrics_support import METRICS_AUTH, METRICS_TOKEN, value
from webhook_app import create_app

SECOND = 1_000_000_000


def sensor() -> dg.SensorDefinition:
    return defs.get_sensor_def("landing_metrics_sensor")


def tick(landing_dir, instance) -> str:
    resources = {"landing": LandingZoneResource(landing_dir=str(landing_dir))}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor()(context)
    assert isinstance(result, dg.SkipReason)  # it never asks for runs
    return (landing_dir / PLATFORM_METRICS_FILE).read_text()


def rtarf_runs(instance: dg.DagsterInstance, outcomes: list[dg.DagsterRunStatus], monkeypatch) -> None:
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9")  # the job's config resolves it; nothing connects
    job = defs.resolve_job_def("rtarf_sync_job")
    for status in outcomes:
        instance.create_run_for_job(job_def=job, status=status)


@pytest.fixture
def landing_dir(tmp_path):
    return tmp_path / "landing"


@pytest.mark.parametrize(
    ("successes", "failures", "ratio"),
    [
        pytest.param(9, 1, 0.9, id="nine-of-ten"),
        pytest.param(3, 1, 0.75, id="below-the-90-percent-alert"),
        pytest.param(0, 0, None, id="no-runs-no-ratio"),
    ],
)
def test_the_rtarf_success_ratio_counts_the_days_ended_runs(landing_dir, monkeypatch, successes, failures, ratio):
    with dg.instance_for_test() as instance:
        ended = [dg.DagsterRunStatus.SUCCESS] * successes + [dg.DagsterRunStatus.FAILURE] * failures
        rtarf_runs(instance, ended, monkeypatch)
        rtarf_runs(instance, [dg.DagsterRunStatus.STARTED], monkeypatch)  # not ended: not counted
        text = tick(landing_dir, instance)
    assert value(text, "ingest_platform_rtarf_sync_runs", outcome="success") == successes
    assert value(text, "ingest_platform_rtarf_sync_runs", outcome="failure") == failures
    if ratio is None:
        assert "ingest_platform_rtarf_sync_success_ratio" not in text
    else:
        assert value(text, "ingest_platform_rtarf_sync_success_ratio") == pytest.approx(ratio)


def test_backlog_quarantine_and_last_loads_are_written_and_served_by_the_webhook_app(landing_dir, monkeypatch) -> None:
    zone = LandingZone(landing_dir)
    now = time.time_ns()
    land(landing_dir, "bigtop_events", {}, at_ns=now - 600 * SECOND)
    land(landing_dir, "bigtop_events", {}, at_ns=now - 5 * SECOND)
    for n in range(3):
        zone.quarantine("app_events", land(landing_dir, "app_events", {}, at_ns=now - n * SECOND), "not valid JSON")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["bigtop", "raw", "pushed_events"]))
        before_tick = time.time()
        text = tick(landing_dir, instance)

    assert value(text, "ingest_platform_inbox_files", stream="bigtop_events") == 2
    assert 600 <= value(text, "ingest_platform_oldest_unloaded_age_seconds", stream="bigtop_events") < 3_600
    assert value(text, "ingest_platform_quarantined_files", stream="app_events") == 3
    assert value(text, "ingest_platform_inbox_files", stream="app_events") == 0
    assert before_tick - 3_600 < value(text, "ingest_platform_last_success_timestamp_seconds", source="bigtop")
    assert value(text, "ingest_platform_last_success_timestamp_seconds", source="rtarf") == 0
    assert value(text, "ingest_platform_metrics_generated_timestamp_seconds") >= before_tick

    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    app = create_app({"TESTING": True, "LANDING_DIR": str(landing_dir)})
    served = app.test_client().get("/metrics", headers=METRICS_AUTH).get_data(as_text=True)
    assert value(served, "ingest_platform_quarantined_files", stream="app_events") == 3
    assert value(served, "webhook_requests_total", method="GET", route="/health", status="200") >= 0
    assert "webhook_request_duration_seconds" in served
    # The textfile's folder is no stream of its own.
    assert [status.stream for status in zone.status()] == ["app_events", "bigtop_events"]
