"""`GET /metrics`: its own bearer, and counters that move as requests are made (the Flask test client, one process)."""

import json
from pathlib import Path

import pytest

from bench.common import free_port
from tests.webhook_app.conftest import BIGTOP_TOKEN
from tests.webhook_app.intake_support import app_headers, events_body, make_app
from tests.webhook_app.metrics_support import METRICS_AUTH, METRICS_TOKEN, samples, value
from tests.webhook_app.test_bigtop import AUTH, URL, batch
from webhook_app.metrics import PLATFORM_FILE


@pytest.fixture
def client(landing_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return make_app(landing_dir, BIGTOP_INGEST_TOKEN=BIGTOP_TOKEN).test_client()


def scrape(client) -> str:
    response = client.get("/metrics", headers=METRICS_AUTH)
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/plain; version=")
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("token", "headers", "status", "error"),
    [
        pytest.param(None, METRICS_AUTH, 503, "metrics_disabled", id="token-unset"),
        pytest.param(METRICS_TOKEN, {}, 401, "unauthorized", id="no-bearer"),
        pytest.param(METRICS_TOKEN, {"Authorization": "Bearer wrong"}, 401, "unauthorized", id="wrong-bearer"),
        pytest.param(METRICS_TOKEN, AUTH, 401, "unauthorized", id="another-routes-bearer"),
    ],
)
def test_metrics_need_their_own_bearer(landing_dir, monkeypatch, token, headers, status: int, error: str) -> None:
    if token is None:
        monkeypatch.delenv("METRICS_TOKEN", raising=False)
    else:
        monkeypatch.setenv("METRICS_TOKEN", token)
    response = make_app(landing_dir).test_client().get("/metrics", headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert "webhook_requests" not in response.get_data(as_text=True)


def test_requests_landings_and_rejections_are_counted(client, landing_dir: Path) -> None:
    before = scrape(client)

    for _ in range(3):
        assert client.get("/health").status_code == 200
    accepted = client.post(URL, json=batch(), headers=AUTH)
    assert accepted.status_code == 202
    assert client.post(URL, json=batch(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post(URL, data="{", headers={**AUTH, "Content-Type": "application/json"}).status_code == 400
    assert client.get("/no/such/route/42").status_code == 404

    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("webhook_requests_total", method="GET", route="/health", status="200") == 3
    assert moved("webhook_requests_total", method="POST", route=URL, status="202") == 1
    assert moved("webhook_requests_total", method="POST", route=URL, status="401") == 1
    assert moved("webhook_requests_total", method="GET", route="-", status="404") == 1
    assert moved("webhook_request_duration_seconds_count", route="/health") == 3
    assert moved("webhook_rejections_total", status="401", error="unauthorized") == 1
    assert moved("webhook_rejections_total", status="404", error="not_found") == 1
    assert moved("webhook_rejections_total", status="400", error="malformed_json") == 1
    [landed] = [path for path in (landing_dir / "bigtop_events").glob("*.json")]
    assert moved("webhook_landed_bytes_total", stream="bigtop_events") == landed.stat().st_size
    assert moved("webhook_landing_write_seconds_count", stream="bigtop_events") == 1
    assert moved("webhook_landing_write_seconds_sum", stream="bigtop_events") > 0
    # No series is labelled by anything a client made up.
    assert not any("/no/such" in str(labels) for _, labels in samples(after))


def test_claim_store_errors_are_counted(landing_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    client = make_app(landing_dir, CLAIMS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    before = scrape(client)
    response = client.post("/ingest/events", json=events_body({"type": "VIEW", "ruleId": "r1"}), headers=app_headers())
    assert response.status_code == 503
    after = scrape(client)
    assert (
        value(after, "webhook_claim_store_errors_total", operation="claim")
        - value(before, "webhook_claim_store_errors_total", operation="claim")
        == 1
    )
    assert value(after, "webhook_rejections_total", status="503", error="dedup_unavailable") > value(
        before, "webhook_rejections_total", status="503", error="dedup_unavailable"
    )


def test_the_platforms_textfile_is_served_after_the_apps_own(client, landing_dir: Path) -> None:
    assert value(scrape(client), "ingest_platform_inbox_files", stream="bigtop_events") == 0
    (landing_dir / PLATFORM_FILE).parent.mkdir(parents=True)
    (landing_dir / PLATFORM_FILE).write_text(
        "# HELP ingest_platform_inbox_files Files waiting in a stream's inbox.\n"
        "# TYPE ingest_platform_inbox_files gauge\n"
        'ingest_platform_inbox_files{stream="bigtop_events"} 7\n'
    )
    text = scrape(client)
    assert value(text, "ingest_platform_inbox_files", stream="bigtop_events") == 7
    assert value(text, "webhook_requests_total", method="GET", route="/metrics", status="200") >= 1
    assert json.dumps(text).count("ingest_platform_inbox_files") == 3
