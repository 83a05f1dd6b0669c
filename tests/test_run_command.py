"""The README's run command on embedded defaults: UI, daemon and webhook app start, a pushed batch is loaded by the
daemon's sensor into the SQLite warehouse with no PostgreSQL involved, and the command stops cleanly and promptly on
SIGTERM or SIGINT whatever it is doing, leaving no process behind."""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.common import free_port

REPO = Path(__file__).resolve().parent.parent
TOKEN = "run-command-token"
# scripts/run's grace period plus the kill and a wide margin for a busy machine: still "promptly" next to the
# 30 s a stuck `dagster dev` used to take, and far from the minutes a hanging run would.
STOP_WITHIN_S = 45

LAUNCH_RUN = """
mutation($selector: JobOrPipelineSelector!, $runConfigData: RunConfigData) {
  launchRun(executionParams: {selector: $selector, runConfigData: $runConfigData}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = "query($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"


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


def processes_with(marker: str) -> set[int]:
    """Live processes whose environment holds `marker`: everything scripts/run started, orphans included."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
    return found


@dataclass
class Platform:
    process: subprocess.Popen
    log: Path
    ui: str
    webhook: str
    data: Path
    marker: str

    def graphql(self, query: str, **variables) -> dict:
        response = httpx.post(f"{self.ui}/graphql", json={"query": query, "variables": variables}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    def stop(self, how: signal.Signals, *, group: bool) -> float:
        """Signal scripts/run (a supervisor signals the process, Ctrl-C the foreground group); seconds to exit."""
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, how)
        else:
            self.process.send_signal(how)
        try:
            self.process.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/run did not stop within {STOP_WITHIN_S} s of {how.name}")
        return time.monotonic() - started


@contextlib.contextmanager
def scripts_run(tmp_path: Path, **extra_env: str) -> Iterator[Platform]:
    dagster_port, webhook_port = free_port(), free_port()
    marker = f"RUN_COMMAND_TEST={uuid.uuid4().hex}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DAGSTER_", "LANDING_DIR", "PYTEST_", "ENV"))
    }
    env |= {
        "PLATFORM_DATA_DIR": str(tmp_path / "data"),
        "BIGTOP_INGEST_TOKEN": TOKEN,
        "DAGSTER_PORT": str(dagster_port),
        "WEBHOOK_BIND": f"127.0.0.1:{webhook_port}",
        marker.split("=")[0]: marker.split("=")[1],
        **extra_env,
    }
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "run")], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    platform = Platform(
        process, log, f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{webhook_port}", tmp_path / "data", marker
    )
    try:
        yield platform
    finally:
        # Whatever the test found, nothing of this platform outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def assert_stopped_cleanly(platform: Platform) -> None:
    assert platform.process.returncode == 0, platform.log.read_text()[-3000:]
    leftovers = wait_for_nothing_left(platform.marker)
    assert leftovers == set(), f"processes left behind: {leftovers}"
    assert "run: stopped" in platform.log.read_text()


def wait_for_nothing_left(marker: str) -> set[int]:
    # The kill is sent before scripts/run exits; a killed process may need a moment to be reaped by init.
    deadline = time.monotonic() + 10
    while (alive := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def push_one_event(platform: Platform) -> None:
    response = httpx.post(
        f"{platform.webhook}/api/ingest/bigtop/events",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "run_id": "run-command",
            "sent_at": "2026-03-01T12:00:00Z",
            "events": [{"external_id": "run-1", "title": "Loaded by the daemon", "start_utc": "2026-03-05T23:00:00Z"}],
        },
    )
    assert response.status_code == 202


def test_scripts_run_loads_pushed_events_and_stops_on_sigterm_while_a_run_is_in_progress(tmp_path) -> None:
    # A receiver that takes connections and never answers: the push job's run hangs in its request.
    with socket.create_server(("127.0.0.1", 0)) as silent_receiver:
        receiver = f"http://127.0.0.1:{silent_receiver.getsockname()[1]}"
        with scripts_run(tmp_path, BIGTOP_INGEST_API_BASE=receiver) as platform:
            wait_for(lambda: httpx.get(f"{platform.ui}/server_info").is_success, timeout=180, what="UI")
            wait_for(lambda: httpx.get(f"{platform.webhook}/health").is_success, timeout=60, what="webhook app")
            push_one_event(platform)

            warehouse = platform.data / "warehouse.sqlite"

            def loaded_titles():
                with sqlite3.connect(warehouse) as connection:
                    return connection.execute("SELECT title FROM events WHERE external_id = 'run-1'").fetchall()

            assert wait_for(loaded_titles, timeout=180, what="the sensor's run to load the batch") == [
                ("Loaded by the daemon",)
            ]
            assert (platform.data / "dagster_home" / "dagster.yaml").exists(), "runs and cursors persist"

            launched = platform.graphql(
                LAUNCH_RUN,
                selector={
                    "repositoryLocationName": "ingest_platform",
                    "repositoryName": "__repository__",
                    "jobName": "bigtop_push_to_production_job",
                },
            )["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            wait_for(
                lambda: platform.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"] == "STARTED",
                timeout=180,
                what="the push run to start",
            )

            platform.stop(signal.SIGTERM, group=False)
            assert_stopped_cleanly(platform)


def test_scripts_run_stops_on_ctrl_c_while_it_is_still_starting(tmp_path) -> None:
    with scripts_run(tmp_path) as platform:
        # The webhook app is up and Dagster is on its way (its UI is not served yet, or only just).
        wait_for(lambda: "Listening at" in platform.log.read_text(), timeout=180, what="gunicorn to listen")
        platform.stop(signal.SIGINT, group=True)
        assert_stopped_cleanly(platform)
