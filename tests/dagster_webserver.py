"""A real `dagster-webserver` on loopback for tests of clients of Dagster's GraphQL API."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
# Next to the interpreter running the tests, so the webserver loads the same environment.
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"

# Runs launched over GraphQL start at once (no daemon needed to dequeue them) in their own process.
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator.default_run_coordinator
  class: DefaultRunCoordinator
"""


@contextmanager
def dagster_webserver(
    home: Path,
    env: Mapping[str, str],
    *,
    ready_query: str,
    ready: Callable[[dict[str, Any]], bool],
    timeout: float = 180,
    workspace: Path = REPO_ROOT / "workspace.yaml",
) -> Iterator[str]:
    """Serve `workspace` (the project's workspace.yaml by default); yields the GraphQL URL once `ready(response_json)`
    holds.

    The webserver runs in its own session: on exit it gets SIGTERM, then its whole process group (code server,
    run workers) is killed, so nothing outlives the test.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = free_port()
    log_path = home / "webserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
            cwd=REPO_ROOT,
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_until_ready(process, url, ready_query, ready, timeout, log_path)
        yield url
    finally:
        _stop(process)


def _wait_until_ready(process, url: str, query: str, ready, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            response = httpx.post(url, json={"query": query}, timeout=5)
            if response.status_code == 200 and ready(response.json()):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"dagster-webserver not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    # The code server and any run worker are in the webserver's session and may outlive it.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
