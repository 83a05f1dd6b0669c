"""The whole path under faults: every request the webhook app acknowledged is in the warehouse exactly once, with
no one acting, though PostgreSQL went down through a run and its retry, a poison file sat in the stream and a second
replica wrote with its clock 5 s behind (names below the sensor's cursor).

The webhook app runs under gunicorn; a second replica runs in this process with a clock 5 s slow, sharing the landing
directory. The landing sensor ticks in-process and its runs execute in-process on a Dagster instance, relaunched on
failure as often as dagster.yaml's run retries allow (tests/support/landing_runs.py). The warehouse is a PostgreSQL
cluster of the test's own, stopped and started for real (the machine's shared server keeps serving the others).
"""

import time
import uuid
from pathlib import Path

import dagster as dg
import httpx
import sqlalchemy as sa

import webhook_app.landing
from bench.common import gunicorn
from ingest_platform.landing import LandingZone
from ingest_platform.resources.warehouse import WarehouseResource, dispose_engines
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.landing import LandingCursor
from ingest_platform.warehouse.tables import events, landing_ledger
from tests.landing_files import bigtop_batch, bigtop_event, land
from tests.servers import serve_wsgi
from tests.support.landing_runs import launch, tick, tick_and_launch
from tests.support.private_postgres import private_postgres
from webhook_app import create_app

TOKEN = "fault-injection-token"
STREAM = "bigtop_events"
URL = "/api/ingest/bigtop/events"
EVENTS_PER_BATCH = 25
SKEW_NS = 5_000_000_000


class SlowClock:
    """The `time` module as a replica whose clock is 5 s behind sees it."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def time_ns() -> int:
        return time.time_ns() - SKEW_NS


class Sender:
    """Posts batches and remembers what was acknowledged."""

    def __init__(self) -> None:
        self.acked: dict[str, list[str]] = {}  # request id → external ids

    def post(self, client: httpx.Client, label: str) -> str:
        ids = [f"{label}-{n}-{uuid.uuid4().hex[:8]}" for n in range(EVENTS_PER_BATCH)]
        response = client.post(URL, json=bigtop_batch(*(bigtop_event(external_id) for external_id in ids)))
        assert response.status_code == 202, response.text
        self.acked[response.json()["request_id"]] = ids
        return response.json()["request_id"]


def settled_tick(
    landing_dir: Path, instance, cursor: str | None, request_ids: list[str]
) -> tuple[list[dg.RunRequest], str | None]:
    """Tick until the sensor has asked for the files of `request_ids` and they have settled into its cursor's newest
    name (a file named before them then lands below the cursor); the run requests of those ticks and the cursor."""
    deadline = time.monotonic() + 30
    requests: list[dg.RunRequest] = []
    while True:
        result = tick(bigtop_landing_sensor, landing_dir, instance, cursor)
        requests += result.run_requests
        cursor = result.cursor if result.cursor is not None else cursor
        requested = [
            name for request in requests for name in next(iter(request.run_config["ops"].values()))["config"]["files"]
        ]
        ours = [name for name in requested if any(request_id in name for request_id in request_ids)]
        settled = len(ours) == len(request_ids) and max(ours) <= newest_requested(cursor)
        if settled or time.monotonic() > deadline:
            return requests, cursor
        time.sleep(0.2)


def newest_requested(cursor: str | None) -> str:
    return LandingCursor.parse(cursor).newest


def test_every_acknowledged_request_is_loaded_exactly_once_through_faults(tmp_path, monkeypatch) -> None:
    landing_dir = tmp_path / "landing"
    monkeypatch.setenv("LANDING_DIR", str(landing_dir))
    # Ask again for any inbox file a finished run left behind at once, so that the test need not wait minutes.
    monkeypatch.setenv("LANDING_RECONCILE_MINUTES", "0")
    sender = Sender()
    below_cursor: list[str] = []
    attempts: list[bool] = []

    with private_postgres() as postgres, dg.instance_for_test() as instance:
        monkeypatch.setenv("DATABASE_URL", postgres.url)
        env = {"BIGTOP_INGEST_TOKEN": TOKEN, "LANDING_DIR": str(landing_dir)}
        replica_app = create_app({"LANDING_DIR": str(landing_dir), "BIGTOP_INGEST_TOKEN": TOKEN})
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with (
            gunicorn("webhook_app:create_app()", env=env, workers=2) as base_url,
            serve_wsgi(replica_app) as replica_url,
            httpx.Client(base_url=base_url, headers=headers, timeout=30) as client,
            httpx.Client(base_url=replica_url, headers=headers, timeout=30) as slow_replica,
        ):
            monkeypatch.setattr(webhook_app.landing, "time", SlowClock())

            # 1. The warehouse is up: three batches and a poison file (past the edge, written directly) load.
            posted = [sender.post(client, f"up{n}") for n in range(3)]
            poison = land(landing_dir, STREAM, bigtop_batch(bigtop_event("poison", title="Trivia\u0000night")))
            requests, cursor = settled_tick(landing_dir, instance, None, posted)
            for request in requests:
                outcome = launch(bigtop_landing_sensor, request, instance)
                assert outcome == [True], "a poison file fails no run"
                attempts += outcome

            # 2. PostgreSQL goes down. New batches arrive; their run fails, and so does its retry.
            postgres.stop()
            posted = [sender.post(client, f"down{n}") for n in range(3)]
            requests, cursor = settled_tick(landing_dir, instance, cursor, posted)
            # The slow replica lands right after the sensor moved its cursor: 5 s behind is below it.
            for n in range(2):
                request_id = sender.post(slow_replica, f"slow{n}")
                name = next(path.name for path in (landing_dir / STREAM).glob(f"*-{request_id}.json"))
                if name < newest_requested(cursor):
                    below_cursor.append(name)
            for request in requests:
                outcome = launch(bigtop_landing_sensor, request, instance)
                assert not any(outcome), "the warehouse is down"
                attempts += outcome
            # Still down: the reconciliation asks again, and fails again; nothing is quarantined meanwhile.
            cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)
            assert outcomes and not any(ok for outcome in outcomes for ok in outcome)
            attempts += [ok for outcome in outcomes for ok in outcome]
            assert LandingZone(landing_dir).quarantined(STREAM) == [poison]

            # 3. PostgreSQL is back: the sensor alone brings every file in.
            postgres.start()
            for _ in range(5):
                cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)
                attempts += [ok for outcome in outcomes for ok in outcome]
                if not LandingZone(landing_dir).pending(STREAM, limit=10):
                    break

        warehouse = WarehouseResource(database_url=postgres.url)
        with warehouse.engine.connect() as connection:
            stored = list(connection.scalars(sa.select(events.c.external_id)))
            ledgered = list(connection.scalars(sa.select(landing_ledger.c.file_name)))
        dispose_engines()

    expected = {external_id for ids in sender.acked.values() for external_id in ids}
    duplicates = len(stored) - len(set(stored))
    quarantined = {
        path.name.removesuffix(".reason"): path.read_text().strip()
        for path in (landing_dir / "quarantine" / STREAM).glob("*.reason")
    }
    print(
        f"\nrequests acked {len(sender.acked)} (2 from the replica 5 s behind, {len(below_cursor)} landed below the "
        f"cursor); rows expected {len(expected)}; rows found {len(expected & set(stored))}; rows not acked "
        f"{len(set(stored) - expected)}; duplicates {duplicates}; ledgered files {len(ledgered)} "
        f"({len(ledgered) - len(set(ledgered))} twice); run attempts {len(attempts)} ({attempts.count(False)} failed); "
        f"files quarantined {len(quarantined)}: {quarantined}"
    )
    assert set(stored) == expected
    assert duplicates == 0
    assert len(ledgered) == len(set(ledgered)) == len(sender.acked)
    assert list(quarantined) == [poison] and "events.title" in quarantined[poison]
    assert below_cursor, "the slow replica's files should have landed below the cursor"
    assert LandingZone(landing_dir).pending(STREAM, limit=10) == []
