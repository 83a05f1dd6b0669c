"""`/metrics` under real gunicorn with two workers: whichever worker answers a scrape, it counts every worker's
requests (prometheus_client's multiprocess mode, set up by gunicorn.conf.py)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import gunicorn
from tests.webhook_app.conftest import BIGTOP_TOKEN
from tests.webhook_app.metrics_support import METRICS_AUTH, METRICS_TOKEN, value
from tests.webhook_app.test_bigtop import AUTH, URL, batch

REQUESTS = 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("metrics-gunicorn")
    multiproc_dir = root / "prometheus"
    multiproc_dir.mkdir()
    (multiproc_dir / "counter_99999.db").write_bytes(b"a previous server's file, wiped at start")
    env = {
        "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN,
        "LANDING_DIR": str(root / "landing"),
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
    }
    with gunicorn("webhook_app:create_app()", env=env, workers=2) as base_url:
        yield base_url, multiproc_dir


def scrape(base_url: str) -> str:
    response = httpx.get(base_url + "/metrics", headers=METRICS_AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def test_every_workers_requests_are_in_every_scrape(served) -> None:
    base_url, multiproc_dir = served
    before = [scrape(base_url) for _ in range(2)]
    for _ in range(REQUESTS):
        # A new connection each time, so both workers answer some.
        response = httpx.get(base_url + "/health", headers={"Connection": "close"}, timeout=30)
        assert response.status_code == 200
    for _ in range(3):
        response = httpx.post(base_url + URL, json=batch(), headers={**AUTH, "Connection": "close"}, timeout=30)
        assert response.status_code == 202, response.text
    pids = {path.stem.rsplit("_", 1)[-1] for path in multiproc_dir.glob("counter_*.db")}

    after = [scrape(base_url) for _ in range(4)]

    # Two workers' files, and not the stale one of a previous server (wiped at start).
    assert len(pids) == 2, f"one worker answered everything: {sorted(pids)}"
    health = {"method": "GET", "route": "/health", "status": "200"}
    for text in after:
        assert (
            value(text, "webhook_requests_total", **health) - value(before[0], "webhook_requests_total", **health)
            == REQUESTS
        )
        assert value(text, "webhook_landing_write_seconds_count", stream="bigtop_events") == 3
        assert value(text, "webhook_landed_bytes_total", stream="bigtop_events") > 0


def test_without_a_folder_named_the_server_makes_its_own_and_removes_it(tmp_path_factory) -> None:
    private_tmp = tmp_path_factory.mktemp("t")  # short: gunicorn's control socket lives in TMPDIR too
    env = {"METRICS_TOKEN": METRICS_TOKEN, "TMPDIR": str(private_tmp), "LANDING_DIR": str(private_tmp / "landing")}
    with gunicorn("webhook_app:create_app()", env={**env, "PROMETHEUS_MULTIPROC_DIR": ""}, workers=2) as base_url:
        for _ in range(10):
            assert httpx.get(base_url + "/health", headers={"Connection": "close"}, timeout=30).status_code == 200
        [folder] = private_tmp.glob("ingest-webhook-metrics-*")
        assert list(folder.glob("*.db"))
        text = scrape(base_url)
    # The start-up probe's /health requests count too: at least the ten made here, from whichever worker.
    assert value(text, "webhook_requests_total", method="GET", route="/health", status="200") >= 10
    assert not folder.exists()
