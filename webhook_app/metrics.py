"""Prometheus metrics at `GET /metrics`, behind their own bearer (`METRICS_TOKEN`; unset, the route answers 503).

The app's own series are counted in every worker: under gunicorn `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py
makes a fresh folder when it is not), each worker writes its values to memory-mapped files there and a scrape,
whichever worker answers it, adds up all of them. Without it (the Flask test client, `flask run`) the process's own
registry is served.

The platform's series (inbox backlog, quarantine, last loads, the RTARF success rate) are not computed here: the
Dagster sensor `landing_metrics_sensor` writes them to `<LANDING_DIR>/.metrics/platform.prom` (a node_exporter
textfile-collector file), and a scrape appends that file as it is. The app reads nothing of the warehouse and
imports nothing of the platform; the sensor has the run history and the landing zone at hand. See docs/metrics.md.

What is recorded per request is one counter and one histogram observation, in a WSGI wrapper round the whole app
(the one hook), plus one observation per landed file; labels are the matched route (never the path), the status
and the error code, so no client-made value becomes a series.
"""

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from webhook_app.access_log import ACCESS_FIELDS, UNMATCHED_ROUTE
from webhook_app.auth import require_bearer
from webhook_app.errors import ERROR_CODE

TOKEN_ENV = "METRICS_TOKEN"  # noqa: S105 (a variable name, not a secret)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Written by the platform's landing_metrics_sensor; relative to the landing zone's root.
PLATFORM_FILE = Path(".metrics") / "platform.prom"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Series:
    """The app's series. prometheus_client is imported when the first request is measured, not with the app: a
    cold start does not pay for it, and the worker has the multiprocess folder from gunicorn's master by then."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            "webhook_requests", "Requests answered, by matched route and status.", ["method", "route", "status"]
        )
        self.request_seconds = Histogram(
            "webhook_request_duration_seconds",
            "Time from receiving a request to its response.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
        )
        self.landing_seconds = Histogram(
            "webhook_landing_write_seconds",
            "Durable write of one landed file: write, fsync, rename and directory fsync.",
            ["stream"],
            buckets=_LATENCY_BUCKETS,
        )
        self.landed_bytes = Counter("webhook_landed_bytes", "Bytes written to the landing zone.", ["stream"])
        self.rejections = Counter(
            "webhook_rejections", "Requests answered with a JSON error, by status and error code.", ["status", "error"]
        )
        self.claim_store_errors = Counter(
            "webhook_claim_store_errors", "Claim-store (dedup) calls that failed, by operation.", ["operation"]
        )


_series: _Series | None = None
_series_lock = threading.Lock()


def series() -> _Series:
    global _series
    if _series is None:
        with _series_lock:
            if _series is None:
                _series = _Series()
    return _series


bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    app.config.setdefault(TOKEN_ENV, os.environ.get(TOKEN_ENV))
    app.wsgi_app = _Measured(app.wsgi_app)  # type: ignore[method-assign]
    app.extensions["landing"].observe = landed
    app.register_blueprint(bp)


def landed(stream: str, size: int, seconds: float) -> None:
    measured = series()
    measured.landing_seconds.labels(stream).observe(seconds)
    measured.landed_bytes.labels(stream).inc(size)


def claim_store_error(operation: str) -> None:
    series().claim_store_errors.labels(operation).inc()


@bp.get("/metrics")
def metrics() -> Response:
    require_bearer(TOKEN_ENV, disabled_error="metrics_disabled")
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    series()
    body = generate_latest(_registry())
    platform = _platform_text(Path(current_app.config["LANDING_DIR"]) / PLATFORM_FILE)
    return Response(body + platform, content_type=CONTENT_TYPE_LATEST)


def _registry():
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _platform_text(path: Path) -> bytes:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return b""
    return text if text.endswith(b"\n") or not text else text + b"\n"


class _Measured:
    """Counts and times each request round the whole app; the route comes from what access_log leaves in the
    environ, so it is the matched rule (`/scheduler/jobs/<job_id>`), or `-` when none matched."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        # (method, route, status) → the counter and histogram children: `labels()` takes a lock and checks its
        # arguments on every call. Threads racing on a new key get the same children from it, so no lock here.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def __call__(self, wsgi_env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        statuses: list[str] = []

        def recording_start_response(status: str, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(wsgi_env, recording_start_response)
        finally:
            route = (wsgi_env.get(ACCESS_FIELDS) or {}).get("route", UNMATCHED_ROUTE)
            status = statuses[-1][:3] if statuses else "500"
            key = (wsgi_env.get("REQUEST_METHOD", "-"), route, status)
            children = self._children.get(key)
            if children is None:
                measured = series()
                children = (measured.requests.labels(*key), measured.request_seconds.labels(route))
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
            error = wsgi_env.get(ERROR_CODE)
            if error is not None:
                series().rejections.labels(status, error).inc()
