"""Production as the bridge sees it: the real webhook app on a loopback port, with scripted failures in front.

`BigTopProduction` serves `webhook_app.create_app` with werkzeug's threaded WSGI server on 127.0.0.1. Its
`failures` are played, one per request, before requests reach the app: a status answered without landing anything
(`Status(503)`, `Status(429, retry_after="2")`), or `SlowAfterLanding(seconds)`: the real app lands the batch and
the answer comes too late, as when production is slow, so the client times out on data that is already durable.

`load_landed_batches` is the production side after that: the real `bigtop_landing_sensor` evaluated, and each run
it requests executed in-process against the given warehouse.
"""

import io
import json
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ingest_platform.assets.bigtop import PUSH_STREAM
from ingest_platform.definitions import defs
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from tests.servers import serve_wsgi
from webhook_app import create_app

ENDPOINT = "/api/ingest/bigtop/events"


@dataclass(frozen=True)
class Status:
    status: int
    retry_after: str | None = None


@dataclass(frozen=True)
class SlowAfterLanding:
    seconds: float


@dataclass(frozen=True)
class Recorded:
    path: str
    status: int
    body: bytes


@dataclass
class BigTopProduction:
    landing_dir: Path
    token: str
    failures: Iterable[Status | SlowAfterLanding] = ()
    app_config: dict[str, Any] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def __enter__(self) -> "BigTopProduction":
        self._app = create_app(
            {"LANDING_DIR": str(self.landing_dir), "BIGTOP_INGEST_TOKEN": self.token, **self.app_config}
        )
        self._script = list(self.failures)
        self._lock = threading.Lock()
        self._serving = ExitStack()
        self.url = self._serving.enter_context(serve_wsgi(self._wsgi))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._serving.close()

    def landed_documents(self) -> list[dict[str, Any]]:
        """Every batch production has made durable (inbox and loaded archive)."""
        stream_dir = self.landing_dir / PUSH_STREAM
        # `*-*.json`: the landed files, not the receipts (`<request id>.receipt.json`) the loader leaves beside them.
        return [json.loads(path.read_bytes()) for path in sorted(stream_dir.rglob("*-*.json"))]

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self._lock:
            step = self._script.pop(0) if self._script else None
        path = environ.get("PATH_INFO", "")
        if isinstance(step, Status):
            headers = [("Content-Type", "application/json")]
            if step.retry_after is not None:
                headers.append(("Retry-After", step.retry_after))
            start_response(f"{step.status} Scripted", headers)
            self._record(path, step.status, body)
            return [json.dumps({"error": "scripted", "detail": "scripted failure", "fields": []}).encode()]

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        chunks = list(self._app(environ, capture))
        self._record(path, int(captured["status"].split()[0]), body)
        if isinstance(step, SlowAfterLanding):
            time.sleep(step.seconds)
        start_response(captured["status"], captured["headers"])
        return chunks

    def _record(self, path: str, status: int, body: bytes) -> None:
        with self._lock:
            self.requests.append(Recorded(path, status, body))


def load_landed_batches(landing_dir: Path, warehouse: WarehouseResource, *, timeout: float = 10.0) -> int:
    """Evaluate the landing sensor until it sees every landed file, run what it requests; returns the run count."""
    landing = LandingZoneResource(landing_dir=str(landing_dir))
    inbox = sorted(path.name for path in (landing_dir / PUSH_STREAM).glob("*.json"))
    job = defs.resolve_job_def("bigtop_push_load_job")
    deadline = time.monotonic() + timeout
    with dg.instance_for_test() as instance:
        while True:
            # The sensor leaves files younger than its settle time for a later tick; tick until all are due.
            result = bigtop_landing_sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing}))
            requested = [name for request in result.run_requests for name in _requested_files(request)]
            if sorted(requested) == inbox:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the sensor requested {requested}, the inbox holds {inbox}")
            time.sleep(0.1)
        for request in result.run_requests:
            run = job.execute_in_process(
                run_config=request.run_config,
                partition_key=request.partition_key,
                tags=request.tags,
                instance=instance,
                resources={"landing": landing, "warehouse": warehouse},
            )
            assert run.success
        return len(result.run_requests)


def _requested_files(request: dg.RunRequest) -> list[str]:
    (op_config,) = request.run_config["ops"].values()
    return op_config["config"]["files"]
