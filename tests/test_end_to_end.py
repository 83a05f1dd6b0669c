"""Big Top push, end to end: HTTP → landing zone → sensor → run → rows in PostgreSQL."""

import time

import dagster as dg
import httpx
import sqlalchemy as sa

from ingest_platform.definitions import defs
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.warehouse.tables import events, landing_ledger
from tests.servers import serve_wsgi
from webhook_app import create_app

TOKEN = "end-to-end-token"


def batch(run_id: str, count: int, title: str = "Trivia") -> dict:
    return {
        "source_id": 5,
        "run_id": run_id,
        "sent_at": "2026-03-01T12:00:00+00:00",
        "events": [
            {"external_id": f"uid-{i}@bigtop", "title": f"{title} {i}", "start_utc": "2026-03-05T23:00:00Z"}
            for i in range(count)
        ],
    }


def sensor_requests(
    landing: LandingZoneResource, cursor: str | None, *, files: int = 1, within_s: float = 30
) -> dg.SensorResult:
    """Tick the sensor until one tick requests at least `files` landed files (on a busy machine the last one may land
    a tick after the others), or `within_s` has passed."""
    deadline = time.monotonic() + within_s
    while True:
        with dg.build_sensor_context(cursor=cursor, resources={"landing": landing}) as context:
            result = bigtop_landing_sensor(context)
        requested = [
            name
            for request in result.run_requests
            for op in request.run_config["ops"].values()
            for name in op["config"]["files"]
        ]
        if len(requested) >= files or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def test_pushed_batches_reach_postgresql_once(pg_warehouse, postgres_url, tmp_path, monkeypatch) -> None:
    landing_dir = tmp_path / "landing"
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("LANDING_DIR", str(landing_dir))
    app = create_app({"LANDING_DIR": str(landing_dir), "BIGTOP_INGEST_TOKEN": TOKEN})
    headers = {"Authorization": f"Bearer {TOKEN}"}

    with serve_wsgi(app) as base_url, httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        accepted = [client.post("/api/ingest/bigtop/events", json=batch(f"run-{n}", 250)) for n in range(2)]
        # The same events again, renamed: the second load updates rather than duplicates.
        accepted.append(client.post("/api/ingest/bigtop/events", json=batch("run-2", 100, title="Quiz")))
        rejected = client.post("/api/ingest/bigtop/events", json=batch("run-3", 0))
    assert [response.status_code for response in accepted] == [202, 202, 202]
    assert rejected.status_code == 422

    landing = LandingZoneResource(landing_dir=str(landing_dir))
    result = sensor_requests(landing, cursor=None, files=3)
    assert len(result.run_requests) == 1
    (request,) = result.run_requests
    job = defs.resolve_job_def("bigtop_push_load_job")
    with dg.instance_for_test() as instance:
        run = job.execute_in_process(
            run_config=request.run_config, partition_key=request.partition_key, instance=instance
        )
        assert run.success
        # Every file has settled by now: a tick or two would show any file requested again.
        assert not sensor_requests(landing, cursor=result.cursor, within_s=2).run_requests, "no file is requested twice"
        # Replaying the same run (a retry) loads nothing twice.
        assert job.execute_in_process(
            run_config=request.run_config, partition_key=request.partition_key, instance=instance
        ).success

    with pg_warehouse.engine.connect() as connection:
        rows = dict(connection.execute(sa.select(events.c.external_id, events.c.title)).all())
        ledgered = connection.execute(sa.select(sa.func.count()).select_from(landing_ledger)).scalar_one()
    assert len(rows) == 250
    assert rows["uid-0@bigtop"] == "Quiz 0"
    assert rows["uid-200@bigtop"] == "Trivia 200"
    assert ledgered == 3
