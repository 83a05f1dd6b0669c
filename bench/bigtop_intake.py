"""P1 intake: 500-event Big Top batches over real HTTP to gunicorn, durable, next to a bare fsync handler.

    .venv/bin/python -m bench.bigtop_intake [--requests 300] [--concurrency 8]

Both servers run under the same gunicorn settings in this run; each request is the same pre-serialised body.
"""

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import gunicorn, median, percentile

TOKEN = "bench-token"


def body(request_number: int) -> bytes:
    events = [
        {
            "external_id": f"uid-{request_number}-{i}@bigtop",
            "title": f"Event {i}",
            "start_utc": "2026-03-05T23:00:00Z",
            "end_utc": "2026-03-06T02:00:00Z",
            "description": "Live music on the patio. " * 4,
            "location": "Big Top Brewing, Sarasota",
            "external_url": f"https://www.bigtopbrewing.com/events/event-{i}",
            "categories": ["music", "taproom"],
        }
        for i in range(500)
    ]
    batch = {"source_id": 5, "run_id": f"bench-{request_number}", "sent_at": "2026-03-01T12:00:00Z", "events": events}
    return json.dumps(batch).encode()


def drive(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    # A connection per request: gunicorn keeps a kept-alive connection on the worker that accepted it, so eight
    # long-lived connections split unevenly between the two workers (all on one in some runs) and the figure would
    # measure that split; new connections spread the requests over both workers in every run, for both servers.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    with httpx.Client(headers=headers, timeout=30, limits=limits) as client:

        def post(payload: bytes) -> float:
            started = time.perf_counter()
            response = client.post(url, content=payload)
            if response.status_code != 202:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
            return time.perf_counter() - started

        for payload in bodies[:10]:
            post(payload)
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(post, bodies))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bodies = [body(n) for n in range(args.requests)]
    events = 500 * args.requests
    results: dict[str, list[tuple[float, list[float]]]] = {"bare handler": [], "platform": []}

    with tempfile.TemporaryDirectory() as scratch:
        env = {"BIGTOP_INGEST_TOKEN": TOKEN, "LANDING_DIR": f"{scratch}/landing", "BENCH_BARE_DIR": f"{scratch}/bare"}
        for _ in range(args.rounds):
            with gunicorn("bench.bare_handler:create_app()", env=env) as base:
                results["bare handler"].append(drive(f"{base}/ingest", bodies, args.concurrency))
            with gunicorn("webhook_app:create_app()", env=env) as base:
                results["platform"].append(drive(f"{base}/api/ingest/bigtop/events", bodies, args.concurrency))
        landed = len(list(Path(scratch, "landing", "bigtop_events").glob("*.json")))
        assert landed == (args.requests + 10) * args.rounds, f"{landed} files landed (warm-up included)"

    rates = {}
    print(f"P1 intake: {args.requests} batches x 500 events, concurrency {args.concurrency}, gunicorn 2 workers")
    for name, runs in results.items():
        rates[name] = median([events / elapsed for elapsed, _ in runs])
        latencies = [latency for _, run in runs for latency in run]
        print(
            f"  {name:13s} {rates[name]:10,.0f} events/s  p50 {percentile(latencies, 0.5) * 1000:6.1f} ms"
            f"  p99 {percentile(latencies, 0.99) * 1000:6.1f} ms"
        )
    paired_rounds = zip(results["bare handler"], results["platform"], strict=True)
    round_ratios = [bare_elapsed / platform_elapsed for (bare_elapsed, _), (platform_elapsed, _) in paired_rounds]
    print(f"  ratio per round (servers alternate): {', '.join(f'{ratio:.2f}' for ratio in round_ratios)}")
    print(f"  ratio platform / bare handler: {rates['platform'] / rates['bare handler']:.2f}x (goal >= 0.8x)")


if __name__ == "__main__":
    main()
