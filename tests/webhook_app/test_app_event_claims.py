"""The claims of one POST /ingest/events, on both claim stores: one round trip, given back when the landing fails,
and two requests racing for the same keys store each event once."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.webhook_app.intake_support import REDIS_URL, app_headers, events_body, landed, make_app, redis_prefix


@pytest.fixture(params=["sqlite", "redis"])
def claims_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {"CLAIMS_URL": f"sqlite:///{tmp_path / 'claims.sqlite'}"}
        return
    with redis_prefix() as prefix:
        yield {"CLAIMS_URL": REDIS_URL, "CLAIMS_KEY_PREFIX": prefix}


def _batch(first: int, count: int) -> list[dict[str, Any]]:
    """Events with their own idempotency keys, every other one a VIEW of its own rule."""
    return [
        {"type": "VIEW" if number % 2 else "SAVE", "ruleId": f"rule_{number}", "idempotencyKey": f"key_{number}"}
        for number in range(first, first + count)
    ]


def _stored_keys(landing_dir: Path) -> list[str]:
    return [
        event["idempotency_key"]
        for document in landed(landing_dir, "app_events")
        for event in document["payload"]["events"]
    ]


def test_failed_landing_gives_back_every_claim_of_the_batch(tmp_path: Path, claims_config: dict[str, str]) -> None:
    landing_dir = tmp_path / "landing"
    client = make_app(landing_dir, **claims_config).test_client()
    events = [*_batch(0, 40), {"type": "VIEW", "ruleId": "rule_1"}]  # the last one repeats a VIEW window: dropped
    (landing_dir / "app_events").mkdir(parents=True)
    (landing_dir / "app_events" / ".tmp").write_text("a file where the temporary directory belongs")

    failed = client.post("/ingest/events", json=events_body(*events), headers=app_headers())
    (landing_dir / "app_events" / ".tmp").unlink()
    retried = client.post("/ingest/events", json=events_body(*events), headers=app_headers())

    assert failed.status_code == 503
    assert (retried.status_code, retried.get_json()["stored"], retried.get_json()["duplicates"]) == (202, 40, 1)
    assert _stored_keys(landing_dir) == [f"key_{number}" for number in range(40)]


def test_racing_requests_store_each_event_once(tmp_path: Path, claims_config: dict[str, str]) -> None:
    # Two workers (separate apps and connections, one claim store) get the same events in opposite orders.
    events = _batch(0, 60)
    landing_dirs = [tmp_path / "worker0", tmp_path / "worker1"]
    clients = [make_app(landing_dir, **claims_config).test_client() for landing_dir in landing_dirs]
    start = threading.Barrier(2)
    responses: list[Any] = [None, None]

    def post(index: int) -> None:
        order = events if index == 0 else events[::-1]
        start.wait()
        responses[index] = [
            clients[index].post("/ingest/events", json=events_body(*order[offset : offset + 5]), headers=app_headers())
            for offset in range(0, len(order), 5)
        ]

    threads = [threading.Thread(target=post, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {response.status_code for index in range(2) for response in responses[index]} == {202}
    stored = _stored_keys(landing_dirs[0]) + _stored_keys(landing_dirs[1])
    assert sorted(stored) == sorted(event["idempotencyKey"] for event in events)


def test_sqlite_claims_of_a_request_are_one_transaction(tmp_path: Path) -> None:
    app = make_app(tmp_path / "landing", CLAIMS_URL=f"sqlite:///{tmp_path / 'claims.sqlite'}")
    client = app.test_client()
    statements: list[str] = []
    # The test client serves in this thread, so the store uses this thread's connection.
    app.extensions["claims"]._connection().set_trace_callback(statements.append)

    response = client.post("/ingest/events", json=events_body(*_batch(0, 200)), headers=app_headers())

    assert response.get_json()["stored"] == 200
    assert [statement for statement in statements if statement.startswith(("BEGIN", "COMMIT"))] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]


def test_redis_claims_of_a_request_are_one_command(tmp_path: Path) -> None:
    with redis_prefix() as prefix:
        client = make_app(tmp_path / "landing", CLAIMS_URL=REDIS_URL, CLAIMS_KEY_PREFIX=prefix).test_client()
        client.post("/ingest/events", json=events_body(*_batch(0, 1)), headers=app_headers())  # loads the script
        monitoring = redis.Redis.from_url(REDIS_URL)
        with monitoring.monitor() as monitor:
            response = client.post("/ingest/events", json=events_body(*_batch(1, 200)), headers=app_headers())
            # Commands reach the monitor in order: once this marker shows, every command of the request has.
            marker = f"{prefix}end-of-request"
            redis.Redis.from_url(REDIS_URL).exists(marker)
            commands = []
            for entry in monitor.listen():
                if marker in entry["command"]:
                    break
                if prefix in entry["command"] and entry["client_type"] != "lua":
                    commands.append(entry["command"].split()[0].upper())

    assert response.get_json()["stored"] == 200
    assert commands == ["EVALSHA"]
