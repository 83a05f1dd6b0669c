"""Per-request cost of the webhook app's metrics: the same app answering `GET /health` and a Big Top batch through
the WSGI stack with its metrics wrapper and without it, interleaved rounds in one process, medians compared.

    .venv/bin/python -m bench.metrics_overhead [--requests 2000] [--rounds 7]
"""

import argparse
import json
import tempfile
import time

from bench.common import median
from webhook_app import create_app
from webhook_app.metrics import series

TOKEN = "bench-token"


def per_request_seconds(client, requests: int, method: str, path: str, **kwargs) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        client.open(path, method=method, **kwargs)
    return (time.perf_counter() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as landing_dir:
        app = create_app({"TESTING": True, "LANDING_DIR": landing_dir, "BIGTOP_INGEST_TOKEN": TOKEN})
        measured_wsgi = app.wsgi_app
        bare_wsgi = measured_wsgi.wsgi_app
        writer = app.extensions["landing"]
        observe = writer.observe
        client = app.test_client()
        series()  # the first request's import is a cold-start cost, not a per-request one
        body = json.dumps(
            {
                "source_id": 5,
                "run_id": "bench",
                "sent_at": "2026-03-01T12:00:00+00:00",
                "events": [{"external_id": "e1", "title": "t", "start_utc": "2026-03-05T23:00:00+00:00"}],
            }
        )
        cases = {
            "GET /health": ("GET", "/health", {}),
            "POST Big Top batch (lands, fsyncs)": (
                "POST",
                "/api/ingest/bigtop/events",
                {"data": body, "headers": {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}},
            ),
        }
        results = {name: {"with": [], "without": []} for name in cases}
        for round_number in range(args.rounds):
            # The order flips each round: the first variant of a round runs on a colder cache.
            variants = ("with", "without") if round_number % 2 == 0 else ("without", "with")
            for name, (method, path, kwargs) in cases.items():
                requests = args.requests if method == "GET" else max(1, args.requests // 10)
                for variant in variants:
                    app.wsgi_app = measured_wsgi if variant == "with" else bare_wsgi
                    writer.observe = observe if variant == "with" else None
                    results[name][variant].append(per_request_seconds(client, requests, method, path, **kwargs))
    print(f"metrics overhead, Flask test client, median of {args.rounds} interleaved rounds")
    for name, figures in results.items():
        with_metrics, without = median(figures["with"]), median(figures["without"])
        print(
            f"  {name:36s} with {with_metrics * 1e6:7.1f} µs  without {without * 1e6:7.1f} µs  "
            f"ratio {with_metrics / without:.3f}  (+{(with_metrics - without) * 1e6:.1f} µs)"
        )


if __name__ == "__main__":
    main()
