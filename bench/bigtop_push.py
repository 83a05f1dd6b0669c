"""Push of 5,000 Big Top events in batches of 500 to the webhook app served by gunicorn on loopback.

Figures, all in this one process run against the same server:
  baseline  a bare httpx loop posting the 10 batches pre-serialised (the floor: the server's intake, fsync included)
  push      `push_events` (serialisation, retries machinery, progress lines) on the same 5,000 events
  bridge    the CLI's path: select the 5,000 events from a local SQLite warehouse, then `push_events`
Each is run ROUNDS times, interleaved; the median is reported. Run: .venv/bin/python -m bench.bigtop_push
"""

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.common import gunicorn
from ingest_platform.bigtop.push import ENDPOINT_PATH, push_events, select_local_events, serialise_batch
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events

EVENTS = 5_000
BATCH_SIZE = 500
ROUNDS = 5
WORKERS = 2
TOKEN = "bench-token-not-a-secret"


def event_rows() -> list[dict]:
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return [
        {
            "source_id": 5,
            "external_id": f"bench-{number:05d}@bigtopbrewing.com",
            "title": f"Live music night {number}",
            "start_utc": first + timedelta(minutes=30 * number),
            "end_utc": first + timedelta(minutes=30 * number + 120),
            "description": "Local bands on the patio. " * 8,
            "location": "Big Top Brewing, 6977 Superior Ave, Sarasota, FL",
            "external_url": f"https://www.bigtopbrewing.com/events/live-music-{number}",
            "categories": ["music", "live"],
        }
        for number in range(EVENTS)
    ]


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bigtop-push-bench-") as scratch:
        scratch_dir = Path(scratch)
        local = WarehouseResource(database_url=f"sqlite:///{scratch_dir / 'local.sqlite'}")
        local.upsert(table=events, rows=event_rows(), key=["source_id", "external_id"])
        with local.engine.connect() as connection:
            payloads = select_local_events(connection)
        assert len(payloads) == EVENTS
        batches = [payloads[start : start + BATCH_SIZE] for start in range(0, EVENTS, BATCH_SIZE)]
        bodies = [serialise_batch(batch, source_id=5, run_id="bench-baseline") for batch in batches]

        env = {"LANDING_DIR": str(scratch_dir / "landing"), "BIGTOP_INGEST_TOKEN": TOKEN}
        with gunicorn("webhook_app:create_app()", env=env, workers=WORKERS) as base:

            def baseline() -> None:
                headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
                with httpx.Client(headers=headers, timeout=30) as client:
                    for body in bodies:
                        client.post(base + ENDPOINT_PATH, content=body).raise_for_status()

            def push() -> None:
                summary = push_events(
                    payloads, api_base=base, token=TOKEN, batch_size=BATCH_SIZE, report=lambda _: None
                )
                assert summary.ok and summary.accepted == EVENTS

            def bridge() -> None:
                with local.engine.connect() as connection:
                    selected = select_local_events(connection)
                summary = push_events(
                    selected, api_base=base, token=TOKEN, batch_size=BATCH_SIZE, report=lambda _: None
                )
                assert summary.ok and summary.accepted == EVENTS

            baseline()  # warm-up: gunicorn workers import the app on their first request
            times: dict[str, list[float]] = {"baseline": [], "push": [], "bridge": []}
            for _ in range(ROUNDS):
                for name, action in (("baseline", baseline), ("push", push), ("bridge", bridge)):
                    times[name].append(timed(action))

    medians = {name: statistics.median(values) for name, values in times.items()}
    body_kib = sum(map(len, bodies)) / 1024
    print(
        f"{EVENTS} events in {len(bodies)} batches of {BATCH_SIZE} ({body_kib:.0f} KiB of JSON), gunicorn "
        f"{WORKERS} workers on 127.0.0.1, median of {ROUNDS} rounds, cores shared with other jobs"
    )
    for name, seconds in medians.items():
        print(
            f"  {name:<8} {seconds * 1000:8.1f} ms  {EVENTS / seconds:10,.0f} events/s  "
            f"ratio to baseline {seconds / medians['baseline']:.2f}x"
        )
    print(json.dumps({name: round(EVENTS / seconds) for name, seconds in medians.items()}))


if __name__ == "__main__":
    main()
