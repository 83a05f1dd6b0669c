"""gunicorn settings of the webhook app (scripts/run, docker/ and the benchmarks use this file).

Threads let a worker parse the next request while another waits on fsync, which every accepted request does twice.
"""

import gc
import os

bind = os.environ.get("WEBHOOK_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("WEBHOOK_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEBHOOK_THREADS", "4"))
# Clients of an ingest endpoint retry on a dropped connection; a stuck request must not hold a worker for long.
timeout = 30
graceful_timeout = 20
accesslog = "-"


def post_worker_init(worker) -> None:
    # The loaded app (modules, routes, validation schemas: some 56k objects) never becomes garbage. Frozen, it is no
    # longer walked by the full collections that a batch's allocations set off: 0.09 ms of a 2.2 ms Big Top batch.
    gc.freeze()
