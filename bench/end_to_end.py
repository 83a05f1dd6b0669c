"""P5 end to end: time from the 202 of a Big Top batch to its rows being queryable in PostgreSQL.

    .venv/bin/python -m bench.end_to_end [--batches 20]

The webhook app runs under gunicorn; a loop ticks bigtop_landing_sensor every 100 ms (its interval set low) and
executes each requested run in-process, as the daemon and run worker would. Not included: the daemon's tick
loop (every 5 s) and the start of a run worker process under the default run launcher: bench/push_latency.py
measures those, under scripts/run.
"""

import argparse
import os
import tempfile
import threading
import time

import dagster as dg
import httpx
import sqlalchemy as sa

from bench.common import gunicorn, median, percentile, scratch_postgres
from ingest_platform.definitions import defs
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.warehouse.tables import events

TOKEN = "bench-token"


def run_pipeline(landing: LandingZoneResource, stop: threading.Event, failures: list[BaseException]) -> None:
    try:
        _tick_and_run(landing, stop)
    except BaseException as error:
        failures.append(error)
        raise


def _tick_and_run(landing: LandingZoneResource, stop: threading.Event) -> None:
    job = defs.resolve_job_def("bigtop_push_load_job")
    cursor = None
    with dg.instance_for_test() as instance:
        while not stop.is_set():
            with dg.build_sensor_context(cursor=cursor, instance=instance, resources={"landing": landing}) as context:
                result = bigtop_landing_sensor(context)
            for request in result.run_requests:
                job.execute_in_process(
                    run_config=request.run_config, partition_key=request.partition_key, instance=instance
                )
            cursor = result.cursor or cursor
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    latencies = []
    with scratch_postgres() as url, tempfile.TemporaryDirectory() as scratch:
        os.environ["DATABASE_URL"] = url
        os.environ["LANDING_DIR"] = f"{scratch}/landing"
        landing = LandingZoneResource(landing_dir=f"{scratch}/landing")
        engine = WarehouseResource(database_url=url).engine
        stop = threading.Event()
        failures: list[BaseException] = []
        pipeline = threading.Thread(target=run_pipeline, args=(landing, stop, failures), daemon=True)
        pipeline.start()
        env = {"BIGTOP_INGEST_TOKEN": TOKEN, "LANDING_DIR": f"{scratch}/landing"}
        with gunicorn("webhook_app:create_app()", env=env) as base:
            for number in range(args.batches):
                external_id = f"uid-{number}@bigtop"
                batch = {
                    "run_id": f"bench-{number}",
                    "sent_at": "2026-03-01T12:00:00Z",
                    "events": [{"external_id": external_id, "title": "Event", "start_utc": "2026-03-05T23:00:00Z"}],
                }
                response = httpx.post(
                    f"{base}/api/ingest/bigtop/events", json=batch, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert response.status_code == 202, response.text
                accepted = time.perf_counter()
                query = sa.select(sa.func.count()).select_from(events).where(events.c.external_id == external_id)
                while True:
                    if failures:
                        raise RuntimeError("the pipeline loop failed") from failures[0]
                    with engine.connect() as connection:
                        if connection.execute(query).scalar_one():
                            break
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - accepted)
        stop.set()
        pipeline.join(timeout=30)
    print(f"P5 end to end: {args.batches} batches, 202 -> rows queryable in PostgreSQL")
    print(f"  p50 {median(latencies):.2f} s   p90 {percentile(latencies, 0.9):.2f} s   max {max(latencies):.2f} s")
    print("  of which the sensor's tick (0.1 s) is a fixed wait")


if __name__ == "__main__":
    main()
