"""`/cron/rollup` and `/cron/rebuild-search` against the platform's own definitions (workspace.yaml) in a real
dagster-webserver: the routes' contract with the real rollup assets, not only with the stand-in location of
test_cron.py."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import app_events
from tests.dagster_webserver import REPO_ROOT, dagster_webserver
from tests.webhook_app.test_cron import HEADERS, cron_client
from webhook_app.dagster_api import WORKSPACE_QUERY


def _rollup_job_loaded(response: dict) -> bool:
    nodes = (response.get("data") or {}).get("repositoriesOrError", {}).get("nodes", [])
    return any(job["name"] == "app_rollup_job" for node in nodes for job in node["jobs"])


@pytest.fixture(scope="module")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cron_real_platform")
    warehouse = WarehouseResource(database_url=f"sqlite:///{home / 'warehouse.sqlite'}")
    events = [
        {
            "event_id": f"req-1:{n}",
            "idempotency_key": None,
            "type": kind,
            "rule_id": "rule-a",
            "user_id": None,
            "ts": datetime(2026, 3, 4, 10, n, tzinfo=UTC),
            "received_at": datetime(2026, 3, 4, 10, 30, tzinfo=UTC),
            "ip_hash": f"hash-{n}",
            "request_id": "req-1",
        }
        for n, kind in enumerate(["VIEW", "VIEW", "COPY"])
    ]
    warehouse.upsert(table=app_events, rows=events, key=["event_id"])
    return home


@pytest.fixture(scope="module")
def graphql_url(data_home: Path) -> Iterator[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DAGSTER_", "DATABASE_URL"))}
    env.update(PLATFORM_DATA_DIR=str(data_home))
    with dagster_webserver(
        data_home / "dagster_home",
        env,
        ready_query=WORKSPACE_QUERY,
        ready=_rollup_job_loaded,
        workspace=REPO_ROOT / "workspace.yaml",
    ) as url:
        yield url


@pytest.fixture
def client(graphql_url: str) -> FlaskClient:
    return cron_client(graphql_url)


def test_a_rollup_of_the_real_assets_reports_each_days_figures(client: FlaskClient) -> None:
    response = client.post("/cron/rollup?wait=true", json={"date": "2026-03-05", "daysToProcess": 2}, headers=HEADERS)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["days"] == ["2026-03-04", "2026-03-05"]
    assert [(result["date"], result["status"]) for result in body["results"]] == [
        ("2026-03-04", "success"),
        ("2026-03-05", "success"),
    ]
    first_day = body["results"][0]["assets"]
    # Two VIEWs and a COPY of one rule on March 4, all under the cap; nothing on March 5.
    assert first_day["app/metrics/rule_metric_daily"]["events"] == 3
    assert body["results"][1]["assets"]["app/metrics/rule_metric_daily"]["events"] == 0
    assert set(first_day) == {
        "app/metrics/rule_metric_daily",
        "app/metrics/author_metric_daily",
        "app/metrics/leaderboards",
    }


def test_rebuild_search_runs_the_real_index_job(client: FlaskClient) -> None:
    response = client.post("/cron/rebuild-search?wait=true", headers=HEADERS)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["documents"]) == ("success", 0)  # no rule or crawl item loaded yet
