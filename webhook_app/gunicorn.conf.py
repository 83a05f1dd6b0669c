"""gunicorn settings of the webhook app (scripts/run, docker/ and the benchmarks use this file).

Threads let a worker parse the next request while another waits on fsync, which every accepted request does twice.
"""

import gc
import os

from gunicorn.glogging import Logger

# Where the app leaves a request's access-log fields in the WSGI environ (webhook_app/access_log.py); spelled out
# so the master does not import the app to read its settings.
ACCESS_FIELDS = "webhook_app.access_fields"

bind = os.environ.get("WEBHOOK_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("WEBHOOK_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEBHOOK_THREADS", "4"))
# Clients of an ingest endpoint retry on a dropped connection; a stuck request must not hold a worker for long.
timeout = 30
graceful_timeout = 20
accesslog = "-"


class AccessLogger(Logger):
    """gunicorn's access log in the app's own terms (webhook_app/access_log.py): request id, route, status, size,
    duration and keyed IP hash. Only these atoms exist, so no `--access-logformat` can bring back the peer
    address (`%(h)s`), the request line or query string (`%(r)s`, `%(U)s`, `%(q)s`) or a header (`%({…}i)s`)."""

    def atoms(self, resp, req, environ, request_time):
        fields = environ.get(ACCESS_FIELDS) or {}
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        return {
            "t": self.now(),
            "request_id": fields.get("request_id", "-"),
            "m": environ.get("REQUEST_METHOD", "-"),
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
