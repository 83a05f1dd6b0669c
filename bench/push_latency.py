"""P5 under `scripts/run`: seconds from a Big Top batch's 202 to its rows in the warehouse, and how many load runs
the daemon launches while the webhook app takes 50 requests a second.

    .venv/bin/python -m bench.push_latency [--batches 20] [--rate 50] [--load-seconds 60]

The real path: `scripts/run` itself in a scratch data directory (webhook app under gunicorn, `dg dev` with the
webserver, the daemon and its code server, the SQLite warehouse), batches pushed over HTTP, rows polled in the
warehouse file. Phase 1 pushes one batch at a time at random moments (so they land anywhere in the sensor's tick
cycle) and waits for each; phase 2 pushes single-event batches at `--rate` per second and counts the runs of
`bigtop_push_load_job` created meanwhile: batching works when that count stays near one per sensor tick, not one
per request.
"""

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import REPO, free_port, median, percentile

TOKEN = "bench-latency-token"
LATEST_RUN = """
{
  runsOrError(filter: {pipelineName: "bigtop_push_load_job"}, limit: 1) {
    ... on Runs { results { creationTime startTime } }
  }
}"""
RUNS = """
query($after: Float!) {
  runsOrError(filter: {pipelineName: "bigtop_push_load_job", createdAfter: $after}, limit: 10000) {
    ... on Runs { results { runId status creationTime } }
  }
}"""


@contextlib.contextmanager
def scripts_run(data: Path, log: Path) -> Iterator[tuple[str, str]]:
    """`scripts/run` on a scratch data dir and free ports; yields the UI and webhook URLs once both answer."""
    dagster_port, webhook_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DAGSTER_", "LANDING_DIR", "ENV", "WEBHOOK_"))
    }
    env |= {
        "PLATFORM_DATA_DIR": str(data),
        "BIGTOP_INGEST_TOKEN": TOKEN,
        "DAGSTER_PORT": str(dagster_port),
        "WEBHOOK_BIND": f"127.0.0.1:{webhook_port}",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "run")], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    ui, webhook = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{webhook_port}"
    try:
        _wait(lambda: httpx.get(f"{ui}/server_info", timeout=5).is_success, 300, "the Dagster UI", process, log)
        _wait(lambda: httpx.get(f"{webhook}/health", timeout=5).is_success, 120, "the webhook app", process, log)
        yield ui, webhook
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait(predicate, timeout: float, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scripts/run ended while waiting for {what}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if predicate():
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


class Warehouse:
    """Read-only polls of the SQLite warehouse `scripts/run` loads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def loaded(self, prefix: str) -> set[str]:
        if not self.path.exists():
            return set()
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)) as connection:
                rows = connection.execute(
                    "SELECT external_id FROM events WHERE external_id >= ? AND external_id < ?", (prefix, prefix + "~")
                ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet, or locked by a writer past the timeout
            return set()
        return {row[0] for row in rows}


def push(client: httpx.Client, webhook: str, external_id: str) -> float:
    """POST a one-event batch; the moment its 202 arrived (perf_counter)."""
    batch = {
        "run_id": f"bench-{external_id}",
        "sent_at": "2026-03-01T12:00:00Z",
        "events": [{"external_id": external_id, "title": "Bench", "start_utc": "2026-03-05T23:00:00Z"}],
    }
    response = client.post(
        f"{webhook}/api/ingest/bigtop/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    if response.status_code != 202:
        raise RuntimeError(f"{response.status_code} {response.text}")
    return time.perf_counter()


def one_at_a_time(
    ui: str, webhook: str, warehouse: Warehouse, *, batches: int, timeout: float
) -> tuple[list[float], list[tuple[float, float, float]]]:
    """Each batch's 202 → rows, and where the time went: 202 → run created (the sensor's wait and tick), created →
    started (dequeue, run worker start, loading the code), started → rows (the load)."""
    latencies, parts = [], []
    prefix = f"single-{uuid.uuid4().hex[:8]}-"
    with httpx.Client(timeout=30) as client:
        for number in range(batches):
            time.sleep(random.uniform(0, 5))  # a random phase against the daemon's 5 s sensor loop
            external_id = f"{prefix}{number:05d}"
            accepted = push(client, webhook, external_id)
            accepted_at = time.time()
            deadline = accepted + timeout
            while external_id not in warehouse.loaded(prefix):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{external_id} not loaded within {timeout:.0f} s")
                time.sleep(0.05)
            latencies.append(time.perf_counter() - accepted)
            [run] = httpx.post(f"{ui}/graphql", json={"query": LATEST_RUN}, timeout=60).json()["data"]["runsOrError"][
                "results"
            ]
            created, started = run["creationTime"] - accepted_at, run["startTime"] - run["creationTime"]
            parts.append((created, started, latencies[-1] - created - started))
            print(
                f"  batch {number + 1}/{batches}: {latencies[-1]:.2f} s (run created after {created:.2f} s, "
                f"started {started:.2f} s later)",
                flush=True,
            )
    return latencies, parts


def under_load(webhook: str, warehouse: Warehouse, *, rate: float, seconds: float, timeout: float):
    """Pushes at `rate` per second for `seconds`; each batch's 202 → rows latency and the wall time of the phase."""
    prefix = f"load-{uuid.uuid4().hex[:8]}-"
    total = int(rate * seconds)
    accepted: dict[str, float] = {}
    loaded: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            now = time.perf_counter()
            for external_id in warehouse.loaded(prefix) - loaded.keys():
                loaded[external_id] = now
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.perf_counter()
    late = 0
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16)) as client, ThreadPoolExecutor(16) as pool:

        def send(number: int) -> None:
            external_id = f"{prefix}{number:06d}"
            accepted[external_id] = push(client, webhook, external_id)

        futures = []
        for number in range(total):
            due = started + number / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            elif pause < -1:
                late += 1
            futures.append(pool.submit(send, number))
        for future in futures:
            future.result()
    sent_for = time.perf_counter() - started
    deadline = time.perf_counter() + timeout
    while len(loaded) < total and time.perf_counter() < deadline:
        time.sleep(0.2)
    stop.set()
    poller.join()
    missing = total - len(loaded)
    latencies = [loaded[key] - accepted[key] for key in loaded]
    return latencies, sent_for, late, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="batches pushed one at a time (phase 1)")
    parser.add_argument("--rate", type=float, default=50, help="requests per second in phase 2")
    parser.add_argument("--load-seconds", type=float, default=60, help="how long phase 2 pushes")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a batch may take to be loaded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch:
        data, log = Path(scratch) / "data", Path(scratch) / "run.log"
        print(f"starting scripts/run (log {log}) …", flush=True)
        with scripts_run(data, log) as (ui, webhook):
            warehouse = Warehouse(data / "warehouse.sqlite")
            # The first run after a start pays for the migrations' first look and cold caches: not a latency.
            one_at_a_time(ui, webhook, warehouse, batches=1, timeout=args.timeout)
            print(f"phase 1: {args.batches} batches one at a time", flush=True)
            print(f"load average before: {os.getloadavg()}", flush=True)
            single, parts = one_at_a_time(ui, webhook, warehouse, batches=args.batches, timeout=args.timeout)
            print(f"phase 2: {args.rate:g} requests/s for {args.load_seconds:g} s", flush=True)
            phase_started = time.time()
            loaded, sent_for, late, missing = under_load(
                webhook, warehouse, rate=args.rate, seconds=args.load_seconds, timeout=args.timeout
            )
            runs = httpx.post(
                f"{ui}/graphql", json={"query": RUNS, "variables": {"after": phase_started}}, timeout=60
            ).json()["data"]["runsOrError"]["results"]
        print()
        print(
            f"one at a time: p50 {median(single):.2f} s, p90 {percentile(single, 0.9):.2f} s, "
            f"min {min(single):.2f} s, max {max(single):.2f} s over {len(single)} batches"
        )
        for label, index in (("202 → run created", 0), ("created → started", 1), ("started → rows", 2)):
            values = [part[index] for part in parts]
            print(f"  {label}: p50 {median(values):.2f} s, p90 {percentile(values, 0.9):.2f} s")
        sent = len(loaded) + missing
        print(
            f"under load: {sent} requests in {sent_for:.1f} s ({sent / sent_for:.1f}/s, "
            f"{late} sent over 1 s late); 202 → rows p50 {median(loaded):.2f} s, p90 {percentile(loaded, 0.9):.2f} s; "
            f"{missing} not loaded within {args.timeout:g} s"
        )
        per_minute = len(runs) / (sent_for / 60)
        failed = sum(1 for run in runs if run["status"] != "SUCCESS")
        print(f"load runs: {len(runs)} ({per_minute:.1f} per minute of pushing), {failed} not successful")
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
