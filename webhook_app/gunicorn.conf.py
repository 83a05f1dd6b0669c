"""gunicorn settings of the webhook app (scripts/run, docker/ and the benchmarks use this file).

Threads let a worker parse the next request while another waits on fsync, which every accepted request does twice.
"""

import os

bind = os.environ.get("WEBHOOK_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("WEBHOOK_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEBHOOK_THREADS", "4"))
# Clients of an ingest endpoint retry on a dropped connection; a stuck request must not hold a worker for long.
timeout = 30
graceful_timeout = 20
accesslog = "-"
