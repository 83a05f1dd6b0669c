"""The cron routes against a real dagster-webserver on loopback.

The rollup assets are built in parallel (issue 12), so the webserver serves a small code location with the same
asset keys, partitions and job names (tests/support/rollup_location.py). WORKSPACE is the one switch: point it at
the project's workspace.yaml (and READY_JOB stays) to run these tests against the real definitions.
"""

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from dagster_graphql import DagsterGraphQLClient
from flask.testing import FlaskClient

from tests.dagster_webserver import REPO_ROOT, dagster_webserver
from tests.support.rollup_location import figures
from webhook_app import create_app
from webhook_app.dagster_api import WORKSPACE_QUERY

WORKSPACE = REPO_ROOT / "tests" / "support" / "rollup_workspace.yaml"
READY_JOB = "app_rollup_job"
SECRET = "cron-secret-for-tests-0123456789"
HEADERS = {"x-cron-secret": SECRET}
ASSETS = ("rule_metric_daily", "author_metric_daily", "leaderboards")
RUNS_COUNT_QUERY = "{ runsOrError { ... on Runs { count } } }"


def _job_loaded(response: dict) -> bool:
    nodes = (response.get("data") or {}).get("repositoriesOrError", {}).get("nodes", [])
    return any(job["name"] == READY_JOB for node in nodes for job in node["jobs"])


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rollup_output")


@pytest.fixture(scope="module")
def graphql_url(tmp_path_factory: pytest.TempPathFactory, output_dir: Path) -> Iterator[str]:
    home = tmp_path_factory.mktemp("cron_platform")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DAGSTER_", "DATABASE_URL"))}
    env.update(PLATFORM_DATA_DIR=str(home), ROLLUP_TEST_OUTPUT_DIR=str(output_dir))
    with dagster_webserver(
        home / "dagster_home", env, ready_query=WORKSPACE_QUERY, ready=_job_loaded, workspace=WORKSPACE
    ) as url:
        yield url


def cron_client(graphql_url: str) -> FlaskClient:
    """The webhook app with the cron secret, driving the Dagster at `graphql_url`."""
    app = create_app(
        {
            "TESTING": True,
            "CRON_SECRET": SECRET,
            "DAGSTER_GRAPHQL_URL": graphql_url,
            "CRON_POLL_SECONDS": 0.2,
            # A run worker starts a Python process; on a loaded machine that alone can take many seconds.
            "CRON_WAIT_SECONDS": 240,
            # The webserver answers slowly while run workers start on the shared cores.
            "DAGSTER_TIMEOUT_SECONDS": 60,
        }
    )
    return app.test_client()


@pytest.fixture
def client(graphql_url: str) -> FlaskClient:
    return cron_client(graphql_url)


def run_count(graphql_url: str) -> int:
    return httpx.post(graphql_url, json={"query": RUNS_COUNT_QUERY}, timeout=30).json()["data"]["runsOrError"]["count"]


def wait_until_finished(graphql_url: str, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        for run_id in run_ids:
            response = httpx.post(graphql_url, json={"query": query, "variables": {"id": run_id}}, timeout=30)
            statuses[run_id] = response.json()["data"]["runOrError"]["status"]
        if all(status in ("SUCCESS", "FAILURE", "CANCELED") for status in statuses.values()):
            return statuses
        time.sleep(0.5)
    raise AssertionError(f"runs still going after {timeout} s: {statuses}")


def outputs(output_dir: Path) -> set[str]:
    return {path.name for path in output_dir.iterdir()} if output_dir.exists() else set()


def test_wait_returns_each_days_figures_from_the_materializations(client: FlaskClient, output_dir: Path):
    response = client.post("/cron/rollup?wait=true", json={"date": "2026-03-05", "daysToProcess": 2}, headers=HEADERS)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["message"] == "Rollup completed for 2 days"
    assert body["days"] == ["2026-03-04", "2026-03-05"]
    assert body["run_ids"] == [body["run_id"]]
    assert [(result["date"], result["run_id"], result["status"]) for result in body["results"]] == [
        ("2026-03-04", body["run_id"], "success"),
        ("2026-03-05", body["run_id"], "success"),
    ]
    assert body["results"][0]["assets"] == {
        "app/metrics/rule_metric_daily": {"rows": 4, "events": 40},
        "app/metrics/author_metric_daily": {"rows": 104, "events": 40},
        "app/metrics/leaderboards": {"rows": 204, "events": 40},
    }
    assert body["results"][1]["assets"]["app/metrics/leaderboards"] == figures("leaderboards", "2026-03-05")
    assert {f"{asset}.{day}" for asset in ASSETS for day in body["days"]} <= outputs(output_dir)


def test_dry_run_launches_and_writes_nothing_and_reports_partition_states(
    client: FlaskClient, graphql_url: str, output_dir: Path
):
    done = client.post("/cron/rollup?wait=1", json={"date": "2026-04-10", "daysToProcess": 1}, headers=HEADERS)
    assert done.status_code == 200, done.get_json()
    runs_before, files_before = run_count(graphql_url), outputs(output_dir)

    response = client.post(
        "/cron/rollup", json={"date": "2026-04-11", "daysToProcess": 3, "dryRun": True}, headers=HEADERS
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["dry_run"], body["run_ids"], body["days"]) == (True, [], ["2026-04-09", "2026-04-10", "2026-04-11"])
    assert body["would_launch"] == {"job": "app_rollup_job", "partitions": body["days"]}
    plan = {day["date"]: day for day in body["plan"]}
    assert plan["2026-04-10"]["partitions"] == dict.fromkeys((f"app/metrics/{asset}" for asset in ASSETS), "fresh")
    assert plan["2026-04-10"]["would_compute"] is False
    for day in ("2026-04-09", "2026-04-11"):
        assert set(plan[day]["partitions"].values()) == {"missing"}
        assert plan[day]["would_compute"] is True
    assert body["message"] == "Dry run: 3 days, 6 asset partitions missing or stale; nothing launched"
    assert run_count(graphql_url) == runs_before
    assert outputs(output_dir) == files_before


def test_dry_run_reports_downstream_partitions_stale_after_an_upstream_rerun(client: FlaskClient, graphql_url: str):
    day = "2026-06-15"
    done = client.post("/cron/rollup?wait=1", json={"date": day, "daysToProcess": 1}, headers=HEADERS)
    assert done.status_code == 200, done.get_json()
    port = int(graphql_url.rsplit(":", 1)[1].split("/")[0])
    rerun = DagsterGraphQLClient("127.0.0.1", port_number=port).submit_job_execution(
        "app_rollup_job", asset_selection=[["app", "metrics", "rule_metric_daily"]], tags={"dagster/partition": day}
    )
    assert wait_until_finished(graphql_url, [rerun]) == {rerun: "SUCCESS"}

    plan = client.post("/cron/rollup", json={"date": day, "daysToProcess": 1, "dryRun": True}, headers=HEADERS)

    assert plan.get_json()["plan"] == [
        {
            "date": day,
            "partitions": {
                "app/metrics/rule_metric_daily": "fresh",
                "app/metrics/author_metric_daily": "stale",
                "app/metrics/leaderboards": "stale",
            },
            "would_compute": True,
        }
    ]


def test_a_single_day_is_one_run_of_its_partition(client: FlaskClient, graphql_url: str):
    before = run_count(graphql_url)

    response = client.post("/cron/rollup?wait=true", json={"date": "2026-07-09", "daysToProcess": 1}, headers=HEADERS)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert run_count(graphql_url) == before + 1
    assert body["results"] == [
        {
            "date": "2026-07-09",
            "run_id": body["run_id"],
            "status": "success",
            "assets": {f"app/metrics/{asset}": figures(asset, "2026-07-09") for asset in ASSETS},
        }
    ]


def test_without_wait_one_run_of_the_range_is_launched_and_its_id_returned(client: FlaskClient, graphql_url: str):
    before = run_count(graphql_url)

    response = client.post("/cron/rollup", json={"date": "2026-05-02", "daysToProcess": 2}, headers=HEADERS)

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["message"], body["days"]) == ("Rollup launched for 2 days", ["2026-05-01", "2026-05-02"])
    assert body["run_ids"] == [body["run_id"]]
    assert run_count(graphql_url) == before + 1
    # Let them finish before the next test (and the webserver's teardown) on a machine with few cores.
    assert set(wait_until_finished(graphql_url, body["run_ids"]).values()) == {"SUCCESS"}


def test_without_a_body_the_rollup_covers_the_7_days_ending_today(client: FlaskClient, graphql_url: str):
    before = run_count(graphql_url)
    today = datetime.now(UTC).date()

    response = client.post("/cron/rollup", json={"dryRun": True}, headers=HEADERS)
    bodiless = client.post("/cron/rollup?wait=false", headers={**HEADERS, "Content-Type": "application/json"})

    assert response.status_code == 200, response.get_json()
    days = response.get_json()["days"]
    assert days == [(today - timedelta(days=back)).isoformat() for back in range(6, -1, -1)]
    assert bodiless.status_code == 202, bodiless.get_json()
    assert bodiless.get_json()["days"] == days
    assert run_count(graphql_url) == before + 1
    assert set(wait_until_finished(graphql_url, bodiless.get_json()["run_ids"]).values()) == {"SUCCESS"}


def test_a_day_before_the_rollups_first_partition_is_a_422_and_launches_nothing(client: FlaskClient, graphql_url: str):
    before = run_count(graphql_url)

    response = client.post("/cron/rollup", json={"date": "2026-01-02", "daysToProcess": 3}, headers=HEADERS)

    assert response.status_code == 422
    assert response.get_json()["fields"] == [{"field": "date", "problem": "the rollup has no partition for 2025-12-31"}]
    assert run_count(graphql_url) == before


def test_rebuild_search_runs_the_index_job(client: FlaskClient, output_dir: Path):
    response = client.post("/cron/rebuild-search?wait=true", headers=HEADERS)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["documents"]) == ("success", 3)
    assert "rules_index.all" in outputs(output_dir)
