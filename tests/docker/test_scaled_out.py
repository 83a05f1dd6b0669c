"""docker/'s topology run for real, without containers (no Docker engine here): Dagster on PostgreSQL, the two code
locations as separate `dagster api grpc` servers, the webserver and the daemon as their own processes on the docker
workspace with the hosts replaced, two webhook instances sharing the landing folder and Redis, the deploy step as
the migrate service runs it, and the PostgreSQL warehouse the runs only check."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from bench.common import free_port
from tests.webhook_app.intake_support import redis_prefix

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TOKEN = "scaled-out-token"
# Generous: a busy 2-core machine starts six Python servers here. Each wait polls and returns as soon as it holds.
START_S, LOAD_S = 180, 180

LAUNCH_RUN = """
mutation($selector: JobOrPipelineSelector!, $runConfigData: RunConfigData) {
  launchRun(executionParams: {selector: $selector, runConfigData: $runConfigData}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN_STATUS = "query($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"
TERMINATE = "mutation($runId: String!) { terminateRun(runId: $runId) { __typename } }"
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename } } } } }"""


def wait_for(predicate, *, timeout: float, what: str, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                pytest.fail(f"{what}: {process.args[0]} exited:\n{Path(log).read_text()[-3000:]}")
        try:
            result = predicate()
        except (httpx.TransportError, sa.exc.OperationalError):
            result = None
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Topology:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.processes: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, name: str, command: list[str], **extra_env: str) -> None:
        log = self.tmp_path / f"{name}.log"
        with log.open("ab") as output:
            self.processes[name] = (
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env={**self.env, **extra_env},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                ),
                log,
            )

    def kill(self, name: str) -> None:
        process, _ = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def alive(self):
        return list(self.processes.values())

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)


def service_command(service: str, **replace: str) -> list[str]:
    """The compose service's command with its container addresses replaced by loopback ones."""
    command = [replace.get(part, part) for part in SERVICES[service]["command"]]
    executable = BIN / command[0]
    return [str(executable) if executable.exists() else command[0], *command[1:]]


def grpc_command(service: str, port: int) -> list[str]:
    command = service_command(service, **{"0.0.0.0": "127.0.0.1"})  # noqa: S104 (replaced, not bound)
    command[command.index("-p") + 1] = str(port)
    return command


def loopback_workspace(path: Path, ports: dict[str, int]) -> Path:
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    for entry in workspace["load_from"]:
        server = entry["grpc_server"]
        server["port"] = ports[server["host"]]
        server["host"] = "127.0.0.1"
    path.write_text(yaml.safe_dump(workspace))
    return path


@pytest.fixture
def dagster_storage_url() -> Iterator[str]:
    from tests.conftest import _new_postgres_database

    with _new_postgres_database() as url:
        yield url


def test_the_docker_topology_loads_pushes_from_both_instances_queues_browser_runs_and_survives_a_daemon_restart(
    tmp_path: Path, fresh_postgres_url: str, dagster_storage_url: str
) -> None:
    warehouse_url = fresh_postgres_url
    storage = sa.make_url(dagster_storage_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance_parts = [REPO / "dagster.yaml", DOCKER / "dagster.storage-postgres.yaml"]
    (home / "dagster.yaml").write_text("\n".join(part.read_text() for part in instance_parts))
    data = tmp_path / "data"
    ports = {"core_code": free_port(), "browser_code": free_port(), "webserver": free_port()}
    workspace = loopback_workspace(home / "workspace.yaml", ports)
    marker = uuid.uuid4().hex

    with redis_prefix() as limits_prefix:
        dagster_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_URL", "DAGSTER_", "LANDING_DIR", "PYTEST_", "ENV"))
        } | {
            # docker/'s x-dagster-env, with loopback addresses.
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_HOST": storage.host,
            "DAGSTER_POSTGRES_PORT": str(storage.port),
            "DAGSTER_POSTGRES_USER": storage.username,
            "DAGSTER_POSTGRES_PASSWORD": "",
            "DAGSTER_POSTGRES_DB": storage.database,
            "DATABASE_URL": warehouse_url,
            "WAREHOUSE_MIGRATIONS": SERVICES["core_code"]["environment"]["WAREHOUSE_MIGRATIONS"],
            "PLATFORM_DATA_DIR": str(data),
            "LANDING_DIR": str(data / "landing"),
            "BIGTOP_INGEST_TOKEN": TOKEN,
            "INGEST_IP_HASH_SECRET": "scaled-out-ip-secret",
            "WEBHOOK_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
            "WEBHOOK_RATELIMIT_KEY_PREFIX": limits_prefix,
            "SCALED_OUT_TEST": marker,
        }
        topology = Topology(tmp_path, dagster_env)
        try:
            # The deploy step: the migrate service's command, before any server starts.
            deploy = subprocess.run(
                service_command("migrate"), cwd=REPO, env=dagster_env, capture_output=True, text=True, timeout=300
            )
            assert deploy.returncode == 0, deploy.stderr[-3000:]
            engine = sa.create_engine(warehouse_url)

            for service in ("core_code", "browser_code"):
                topology.start(service, grpc_command(service, ports[service]))
            topology.start(
                "webserver",
                [
                    str(BIN / "dagster-webserver"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(ports["webserver"]),
                    "-w",
                    str(workspace),
                ],
            )
            topology.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
            webhooks = []
            for number in range(2):
                port = free_port()
                command = service_command("webhook", **{"0.0.0.0:8080": f"127.0.0.1:{port}"})
                topology.start(f"webhook{number}", command)
                webhooks.append(f"http://127.0.0.1:{port}")

            ui = f"http://127.0.0.1:{ports['webserver']}/graphql"

            def graphql(query: str, **variables):
                response = httpx.post(ui, json={"query": query, "variables": variables}, timeout=30)
                response.raise_for_status()
                return response.json()["data"]

            def locations_loaded():
                entries = graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
                loaded = {e["name"] for e in entries if e["locationOrLoadError"]["__typename"] == "RepositoryLocation"}
                return loaded == {"ingest_platform", "ingest_platform_browser"}

            wait_for(locations_loaded, timeout=START_S, what="both code locations", processes=topology.alive())
            for webhook in webhooks:
                wait_for(lambda url=webhook: httpx.get(f"{url}/health").is_success, timeout=START_S, what=webhook)

            def launch_probe() -> str:
                launched = graphql(
                    LAUNCH_RUN,
                    selector={
                        "repositoryLocationName": "ingest_platform_browser",
                        "repositoryName": "__repository__",
                        "jobName": "bigtop_probe",
                    },
                    # The first attempt fails at once (nothing listens there), then the run waits: it holds the
                    # browser slot for as long as the test needs.
                    runConfigData={
                        "ops": {
                            "bigtop_probe_attempts": {
                                "config": {
                                    "attempts": 2,
                                    "spacing_s": 600,
                                    "settle_s": 0,
                                    "base_url": f"http://127.0.0.1:{free_port()}",
                                }
                            }
                        }
                    },
                )["launchRun"]
                assert launched["__typename"] == "LaunchRunSuccess", launched
                return launched["run"]["runId"]

            def status(run_id: str) -> str:
                return graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]

            def push(webhook: str, external_id: str) -> None:
                response = httpx.post(
                    f"{webhook}/api/ingest/bigtop/events",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    json={
                        "run_id": external_id,
                        "sent_at": "2026-03-01T12:00:00Z",
                        "events": [
                            {"external_id": external_id, "title": external_id, "start_utc": "2026-03-05T23:00:00Z"}
                        ],
                    },
                    timeout=30,
                )
                assert response.status_code == 202, response.text

            def loaded_ids() -> set[str]:
                with engine.connect() as connection:
                    return set(connection.execute(sa.text("SELECT external_id FROM events")).scalars())

            push(webhooks[0], "from-first-instance")
            push(webhooks[1], "from-second-instance")
            first = launch_probe()
            wait_for(lambda: status(first) == "STARTED", timeout=START_S, what="the first browser run to start")
            second = launch_probe()

            # The daemon dies mid-run; what lands meanwhile waits in the inbox, and a new daemon carries on.
            topology.kill("daemon")
            push(webhooks[1], "while-the-daemon-was-down")
            assert status(first) == "STARTED", "a run does not depend on the daemon that launched it"
            topology.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
            wait_for(
                lambda: {"from-first-instance", "from-second-instance", "while-the-daemon-was-down"} <= loaded_ids(),
                timeout=LOAD_S,
                what="every batch, the one landed while the daemon was down too, in the warehouse",
                processes=topology.alive(),
            )
            # The last load's run was queued after the second browser run and has run: the queue passed it over.
            assert status(first) == "STARTED"
            assert status(second) == "QUEUED", "the restarted daemon keeps one browser at a time"

            graphql(TERMINATE, runId=first)
            wait_for(lambda: status(first) == "CANCELED", timeout=LOAD_S, what="the first browser run to end")
            wait_for(lambda: status(second) == "STARTED", timeout=LOAD_S, what="the second browser run to get the slot")
            graphql(TERMINATE, runId=second)

            with engine.connect() as connection:
                counts = connection.execute(
                    sa.text("SELECT external_id, count(*) FROM events GROUP BY external_id")
                ).all()
            assert sorted(counts) == [
                ("from-first-instance", 1),
                ("from-second-instance", 1),
                ("while-the-daemon-was-down", 1),
            ]
            assert list((data / "landing" / "bigtop_events").glob("*.json")) == [], "every landed file was loaded"
            engine.dispose()
        finally:
            topology.stop_all()
            leftovers = [
                entry
                for entry in Path("/proc").iterdir()
                if entry.name.isdigit() and _has_marker(entry, f"SCALED_OUT_TEST={marker}")
            ]
            for entry in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)


def _has_marker(entry: Path, marker: str) -> bool:
    try:
        return marker.encode() in (entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
