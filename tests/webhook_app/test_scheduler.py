"""The RTARF scheduler API against a real dagster-webserver serving the project's definitions on loopback.

The webserver's runs sync from the fake Elasticsearch into a SQLite warehouse; the webhook app is driven with
Flask's test client and reaches Dagster over real sockets through dagster-graphql's client.
"""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from tests.dagster_webserver import dagster_webserver
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.rtarf_documents import INDEX, day_documents, event_source
from webhook_app import create_app
from webhook_app.dagster_api import WORKSPACE_QUERY

TOKEN = "rtarf-api-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _schedule_loaded(response: dict) -> bool:
    nodes = (response.get("data") or {}).get("repositoriesOrError", {}).get("nodes", [])
    return any(schedule["name"] == "rtarf_sync_schedule" for node in nodes for schedule in node["schedules"])


@pytest.fixture(scope="module")
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch().running() as server:
        yield server


@pytest.fixture(scope="module")
def platform_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rtarf_platform")


@pytest.fixture(scope="module")
def graphql_url(es: FakeElasticsearch, platform_dir: Path) -> Iterator[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ELASTICSEARCH_", "RTARF_", "DATABASE_URL", "DAGSTER_", "LANDING_DIR"))
    }
    env.update(
        PLATFORM_DATA_DIR=str(platform_dir),
        ELASTICSEARCH_URL=es.url,
        RTARF_SYNC_ENABLED="false",
        RTARF_SYNC_INTERVAL_SECONDS="600",
    )
    with dagster_webserver(
        platform_dir / "dagster_home", env, ready_query=WORKSPACE_QUERY, ready=_schedule_loaded
    ) as url:
        yield url


@pytest.fixture
def client(graphql_url: str) -> FlaskClient:
    app = create_app(
        {
            "TESTING": True,
            "RTARF_API_TOKEN": TOKEN,
            "DAGSTER_GRAPHQL_URL": graphql_url,
            "RTARF_SYNC_POLL_SECONDS": 0.2,
            # A run worker starts a Python process; on a loaded machine that alone can take many seconds.
            "RTARF_SYNC_WAIT_SECONDS": 120,
        }
    )
    return app.test_client()


def warehouse_ids(platform_dir: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{platform_dir / 'warehouse.sqlite'}")
    try:
        with engine.connect() as connection:
            return set(connection.execute(sa.text("SELECT es_id FROM rtarf_events")).scalars())
    finally:
        engine.dispose()


def test_status_reports_the_schedule_as_configured(client: FlaskClient):
    response = client.get("/scheduler/status", headers=AUTH)

    assert response.status_code == 200
    body = response.get_json()
    assert {key: body[key] for key in ("is_running", "interval_seconds", "cron_schedule", "schedule")} == {
        "is_running": False,
        "interval_seconds": 600,
        "cron_schedule": "*/10 * * * *",
        "schedule": "rtarf_sync_schedule",
    }
    assert set(body) >= {"last_sync_time", "last_sync_status", "total_syncs", "failed_syncs", "success_rate"}


def test_start_and_stop_turn_the_schedule_on_and_off(client: FlaskClient):
    started = client.post("/scheduler/start", headers=AUTH)
    again = client.post("/scheduler/start", headers=AUTH)
    running = client.get("/scheduler/status", headers=AUTH).get_json()
    stopped = client.post("/scheduler/stop", headers=AUTH)
    stopped_again = client.post("/scheduler/stop", headers=AUTH)

    assert (started.status_code, started.get_json()["message"]) == (200, "Scheduler started")
    assert started.get_json()["scheduler_status"]["is_running"] is True
    assert again.get_json()["message"] == "Scheduler already running"
    assert running["is_running"] is True
    assert running["next_sync_time"] is not None
    assert (stopped.status_code, stopped.get_json()["message"]) == (200, "Scheduler stopped")
    assert stopped.get_json()["scheduler_status"]["is_running"] is False
    assert stopped_again.get_json()["message"] == "Scheduler already stopped"


def test_sync_now_waits_for_the_run_and_reports_its_figures(
    client: FlaskClient, es: FakeElasticsearch, platform_dir: Path
):
    today = datetime.now(UTC).date()
    es.index_many(INDEX, day_documents(today, 4, prefix="manual"))
    before = client.get("/scheduler/status", headers=AUTH).get_json()

    first = client.post("/scheduler/sync-now?wait=true", headers=AUTH)

    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["message"] == "Manual sync completed"
    assert body["partition"] == today.isoformat()
    assert {key: body["result"][key] for key in ("status", "total_processed", "inserted", "updated")} == {
        "status": "success",
        "total_processed": 4,
        "inserted": 4,
        "updated": 0,
    }
    status = body["scheduler_status"]
    assert (status["total_syncs"], status["failed_syncs"]) == (before["total_syncs"] + 1, before["failed_syncs"])
    assert (status["last_sync_status"], status["last_sync_run_id"]) == ("success", body["run_id"])
    assert status["success_rate"] == "100.0%"
    assert warehouse_ids(platform_dir) >= {f"manual-{n}" for n in range(4)}

    moment = datetime.fromisoformat(es.indices[INDEX]["manual-3"]["@timestamp"].replace("Z", "+00:00"))
    es.index(INDEX, "manual-3", event_source(moment, 3, message="edited"))
    second = client.post("/scheduler/sync-now?wait=1", headers=AUTH).get_json()

    assert (second["result"]["inserted"], second["result"]["updated"]) == (0, 1)


def test_a_failed_sync_is_reported_and_counted(client: FlaskClient, es: FakeElasticsearch):
    before = client.get("/scheduler/status", headers=AUTH).get_json()
    es.api_key = "the-cluster-now-requires-a-key"
    try:
        response = client.post("/scheduler/sync-now?wait=true", headers=AUTH)
    finally:
        es.api_key = None

    body = response.get_json()
    assert (response.status_code, body["message"], body["result"]["status"]) == (200, "Manual sync failed", "failed")
    status = body["scheduler_status"]
    assert status["failed_syncs"] == before["failed_syncs"] + 1
    assert status["last_sync_status"] == "failed"
    succeeded = status["total_syncs"] - status["failed_syncs"]
    assert status["success_rate"] == f"{succeeded / status['total_syncs'] * 100:.1f}%"


def test_sync_now_without_wait_answers_at_once_with_the_run_id(client: FlaskClient, graphql_url: str):
    response = client.post("/scheduler/sync-now", headers=AUTH)

    assert response.status_code == 202
    body = response.get_json()
    assert (body["message"], len(body["run_id"])) == ("Manual sync launched", 36)


def test_a_wait_longer_than_allowed_answers_202_while_the_run_goes_on(graphql_url: str):
    app = create_app(
        {"TESTING": True, "RTARF_API_TOKEN": TOKEN, "DAGSTER_GRAPHQL_URL": graphql_url, "RTARF_SYNC_WAIT_SECONDS": 0}
    )
    client = app.test_client()

    response = client.post("/scheduler/sync-now?wait=true", headers=AUTH)

    assert response.status_code == 202
    assert response.get_json()["result"] == {"status": "running"}


def _location_failed(response: dict) -> bool:
    entries = (response.get("data") or {}).get("workspaceOrError", {}).get("locationEntries", [])
    return any((entry.get("locationOrLoadError") or {}).get("__typename") == "PythonError" for entry in entries)


def test_a_code_location_that_fails_to_load_is_named_in_a_503(
    es: FakeElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("RTARF_", "DAGSTER_"))}
    env.update(PLATFORM_DATA_DIR=str(tmp_path), ELASTICSEARCH_URL=es.url, RTARF_SYNC_INTERVAL_SECONDS="90")
    with dagster_webserver(tmp_path / "dagster_home", env, ready_query=WORKSPACE_QUERY, ready=_location_failed) as url:
        app = create_app({"TESTING": True, "RTARF_API_TOKEN": TOKEN, "DAGSTER_GRAPHQL_URL": url})
        response = app.test_client().get("/scheduler/status", headers=AUTH)

    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "schedule_unavailable"
    assert "RTARF_SYNC_INTERVAL_SECONDS must be a whole number of minutes" in body["detail"]
