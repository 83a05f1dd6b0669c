"""gunicorn settings of the webhook app (scripts/run, docker/ and the benchmarks use this file).

Threads let a worker parse the next request while another waits on fsync, which every accepted request does twice.
"""

import gc
import json
import logging
import os
import re
import shutil
import tempfile

import gunicorn.util
from gunicorn.glogging import CONFIG_DEFAULTS, Logger

# Where the app leaves a request's access-log fields in the WSGI environ (webhook_app/access_log.py); spelled out
# so the master does not import the app to read its settings.
ACCESS_FIELDS = "webhook_app.access_fields"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

bind = os.environ.get("WEBHOOK_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("WEBHOOK_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEBHOOK_THREADS", "4"))
# Clients of an ingest endpoint retry on a dropped connection; a stuck request must not hold a worker for long.
timeout = 30
graceful_timeout = 20
accesslog = "-"


def per_instance_control_socket(binds: list[str]) -> str:
    """gunicorn's default control socket is one per user ($HOME/.gunicorn/gunicorn.ctl): a second instance on the
    host takes it over. One per bind address instead, which two instances on a host cannot share; short, as a Unix
    socket path holds at most 107 bytes."""
    name = "gunicorn-" + re.sub(r"[^A-Za-z0-9.]+", "_", "-".join(binds)) + ".ctl"
    return os.path.join(tempfile.gettempdir(), f"ingest-webhook-{os.getuid()}", name)


def on_starting(server) -> None:
    # The bind is final here (--bind on the command line included); an explicit --control-socket is kept.
    if server.cfg.control_socket == server.cfg.settings["control_socket"].default:
        server.cfg.set("control_socket", per_instance_control_socket(server.cfg.bind))
    prepare_metrics_dir(os.environ)


def prepare_metrics_dir(environ) -> str:
    """prometheus_client's multiprocess folder (webhook_app/metrics.py): `PROMETHEUS_MULTIPROC_DIR` emptied of a
    previous server's files, or a fresh private folder when unset. Set in the master, so every worker inherits it
    before it imports prometheus_client, which picks its storage at import."""
    folder = environ.get(MULTIPROC_ENV)
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.unlink(os.path.join(folder, name))
    else:
        folder = tempfile.mkdtemp(prefix="ingest-webhook-metrics-")
        environ[MULTIPROC_ENV] = folder
        _made_metrics_dirs.append(folder)
    return folder


_made_metrics_dirs: list[str] = []


def on_exit(server) -> None:
    # A folder this server made for itself goes with it; one named in the environment is the operator's.
    for folder in _made_metrics_dirs:
        shutil.rmtree(folder, ignore_errors=True)


def child_exit(server, worker) -> None:
    # A dead worker's counters stay in the sum; its live gauges (none today) are dropped.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class RequestIdFilter(logging.Filter):
    """Puts the request id (the one the response and the landed file carry) on each record logged in a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        from flask import has_request_context

        if has_request_context():
            from webhook_app.audit import request_id

            record.request_id = request_id()
        else:
            record.request_id = "-"
        return True


# The app's own lines (landed, rejected, errors) at INFO, one line per event with its request id, next to
# gunicorn's own. No line carries the client's IP: the app logs none, and the access log is configured by its own
# settings. gunicorn applies this over its defaults key by key, so the defaults' loggers and handlers are kept here.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": ["error_console"]},
    "filters": {"request_id": {"()": RequestIdFilter}},
    "formatters": {
        **CONFIG_DEFAULTS["formatters"],
        "app": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s request_id=%(request_id)s %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        },
        # An access line is exactly `access_log_format`, as without a logging config.
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        **CONFIG_DEFAULTS["handlers"],
        "app": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "app",
            "filters": ["request_id"],
        },
        "access_console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "access"},
    },
    "loggers": {
        **{name: {**logger, "propagate": False} for name, logger in CONFIG_DEFAULTS["loggers"].items()},
        "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False},
        "webhook_app": {"level": "INFO", "handlers": ["app"], "propagate": False},
    },
}


class AccessLogger(Logger):
    """gunicorn's access log in the app's own terms (webhook_app/access_log.py): request id, route, status, size,
    duration and keyed IP hash. Only these atoms exist, so no `--access-logformat` can bring back the peer
    address (`%(h)s`), the request line or query string (`%(r)s`, `%(U)s`, `%(q)s`) or a header (`%({…}i)s`)."""

    def atoms(self, resp, req, wsgi_env, request_time):
        fields = wsgi_env.get(ACCESS_FIELDS) or {}
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        return {
            "t": self.now(),
            "request_id": fields.get("request_id", "-"),
            "m": wsgi_env.get("REQUEST_METHOD", "-"),
            "route": fields.get("route", "-"),
            "s": status,
            "B": getattr(resp, "sent", None) or 0,
            "duration_ms": f"{request_time.total_seconds() * 1000:.1f}",
            "ip_hash": fields.get("ip_hash", "-"),
            "p": f"<{os.getpid()}>",
        }


logger_class = AccessLogger
access_log_format = (
    "request_id=%(request_id)s method=%(m)s route=%(route)s status=%(s)s size=%(B)s duration_ms=%(duration_ms)s "
    "ip_hash=%(ip_hash)s"
)


def post_worker_init(worker) -> None:
    # The loaded app (modules, routes, validation schemas: some 56k objects) never becomes garbage. Frozen, it is no
    # longer walked by the full collections that a batch's allocations set off: 0.09 ms of a 2.2 ms Big Top batch.
    gc.freeze()


def _json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusals (400 bad request line or chunking, 414, 431, 417, 501) in the app's error shape.

    gunicorn answers these before the app sees the request and offers no hook for the body, so its writer is
    replaced. `mesg` is not sent: it quotes the client's request line or headers.
    """
    error = reason.lower().replace(" ", "_")
    body = json.dumps({"error": error, "detail": f"{reason}: the server refused the request.", "fields": []}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    gunicorn.util.write_nonblock(sock, head + body)


gunicorn.util.write_error = _json_error
