"""The README's run command on embedded defaults: UI, daemon and webhook app start, and a pushed batch is loaded
by the daemon's sensor into the SQLite warehouse with no PostgreSQL involved."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench.common import free_port

REPO = Path(__file__).resolve().parent.parent


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (httpx.TransportError, sqlite3.OperationalError):
            result = None
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_scripts_run_serves_ui_and_webhook_and_loads_pushed_events(tmp_path) -> None:
    dagster_port, webhook_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DAGSTER_", "LANDING_DIR", "PYTEST_"))
    }
    env |= {
        "PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "BIGTOP_INGEST_TOKEN": "run-command-token",
        "DAGSTER_PORT": str(dagster_port),
        "WEBHOOK_BIND": f"127.0.0.1:{webhook_port}",
    }
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(
        [str(REPO / "scripts" / "run")], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{dagster_port}/server_info").is_success, timeout=120, what="UI")
        webhook = f"http://127.0.0.1:{webhook_port}"
        wait_for(lambda: httpx.get(f"{webhook}/health").is_success, timeout=30, what="webhook app")
        response = httpx.post(
            f"{webhook}/api/ingest/bigtop/events",
            headers={"Authorization": "Bearer run-command-token"},
            json={
                "run_id": "run-command",
                "sent_at": "2026-03-01T12:00:00Z",
                "events": [
                    {"external_id": "run-1", "title": "Loaded by the daemon", "start_utc": "2026-03-05T23:00:00Z"}
                ],
            },
        )
        assert response.status_code == 202

        warehouse = tmp_path / "data" / "warehouse.sqlite"

        def loaded_titles():
            with sqlite3.connect(warehouse) as connection:
                return connection.execute("SELECT title FROM events WHERE external_id = 'run-1'").fetchall()

        assert wait_for(loaded_titles, timeout=120, what="the sensor's run to load the batch") == [
            ("Loaded by the daemon",)
        ]
        assert (tmp_path / "data" / "dagster_home" / "dagster.yaml").exists(), "runs and cursors persist"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            # `dagster dev` leaves a run's code server and worker behind on SIGTERM; end the whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log.close()
