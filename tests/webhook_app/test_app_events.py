"""POST /ingest/events: what lands, keyed IP hashes, idempotency keys and the VIEW dedup window."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.webhook_app.intake_support import (
    REDIS_URL,
    app_headers,
    events_body,
    ip_hash,
    landed,
    make_app,
    redis_prefix,
)
from webhook_app.claims import SqliteClaimStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _post(client, *events, **headers):
    return client.post("/ingest/events", json=events_body(*events), headers=app_headers(**headers))


def _stored(landing_dir: Path) -> list[dict]:
    return [event for document in landed(landing_dir, "app_events") for event in document["payload"]["events"]]


@pytest.fixture
def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


def test_accepted_events_land_with_keyed_ip_hash_and_audit(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    response = _post(
        client,
        {"type": "COPY", "ruleId": "rule_1", "userId": "user_1", "ts": "2025-03-01T10:00:00+02:00"},
        {"type": "VOTE", "ruleId": "rule_2"},
    )

    assert response.status_code == 202
    body = response.get_json()
    assert body | {"request_id": None} == {"accepted": 2, "stored": 2, "duplicates": 0, "request_id": None}
    [document] = landed(landing_dir, "app_events")
    assert document["request_id"] == body["request_id"]
    payload = document["payload"]
    assert payload["ip_hash"] == ip_hash("127.0.0.1")
    first, second = payload["events"]
    assert first == {
        "type": "COPY",
        "rule_id": "rule_1",
        "user_id": "user_1",
        "ts": "2025-03-01T10:00:00+02:00",
        "idempotency_key": None,
    }
    # No ts: the receive time, timezone-aware.
    assert second["ts"] == document["received_at"]
    assert datetime.fromisoformat(second["ts"]).tzinfo is not None
    assert payload["audit"] | {"at": None, "audit_id": None} == {
        "audit_id": None,
        "at": None,
        "actor": "INGEST_APP_TOKEN#0",
        "action": "ingest.events",
        "outcome": "accepted",
        "status": 202,
        "error": None,
        "ip_hash": ip_hash("127.0.0.1"),
        "request_id": body["request_id"],
        "details": {"events": 2, "stored": 2, "duplicates": 0},
    }
    [landed_file] = (landing_dir / "app_events").glob("*.json")
    assert "127.0.0.1" not in landed_file.read_text()


def test_rotated_token_is_accepted_and_named_by_slot(landing_dir: Path) -> None:
    client = make_app(landing_dir, INGEST_APP_TOKEN="old-token, new-token").test_client()
    response = client.post(
        "/ingest/events", json=events_body({"type": "SAVE", "ruleId": "r"}), headers={"x-app-token": "new-token"}
    )
    assert response.status_code == 202
    assert landed(landing_dir, "app_events")[0]["payload"]["audit"]["actor"] == "INGEST_APP_TOKEN#1"


@pytest.mark.parametrize(
    ("trusted_proxies", "forwarded_for", "client_ip"),
    [
        (0, "203.0.113.7", "127.0.0.1"),
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (2, "198.51.100.1, 203.0.113.7", "198.51.100.1"),
        (2, "203.0.113.7", "127.0.0.1"),
        (1, "not-an-ip", "127.0.0.1"),
    ],
    ids=["no-proxy-ignores-header", "one-proxy", "one-proxy-spoofed-left", "two-proxies", "too-few-hops", "garbage"],
)
def test_client_ip_behind_trusted_proxies(landing_dir: Path, trusted_proxies, forwarded_for, client_ip) -> None:
    client = make_app(landing_dir, TRUSTED_PROXIES=trusted_proxies).test_client()
    assert _post(client, {"type": "SAVE", "ruleId": "r"}, **{"X-Forwarded-For": forwarded_for}).status_code == 202
    assert landed(landing_dir, "app_events")[0]["payload"]["ip_hash"] == ip_hash(client_ip)


def test_repeated_idempotency_key_is_accepted_not_stored_twice(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    event = {"type": "SAVE", "ruleId": "rule_1", "idempotencyKey": "save-1"}

    first = _post(client, event, event)
    second = _post(client, event)

    assert (first.status_code, first.get_json()["stored"], first.get_json()["duplicates"]) == (202, 1, 1)
    assert (second.status_code, second.get_json()["stored"], second.get_json()["duplicates"]) == (202, 0, 1)
    assert [event["idempotency_key"] for event in _stored(landing_dir)] == ["save-1"]


def test_view_dedup_per_ip_and_rule_within_window(landing_dir: Path) -> None:
    clock = FakeClock()
    app = make_app(landing_dir)
    app.extensions["claims"] = SqliteClaimStore(landing_dir / "claims.sqlite", clock=clock)
    client = app.test_client()

    _post(client, {"type": "VIEW", "ruleId": "rule_1"}, {"type": "VIEW", "ruleId": "rule_1"})  # 1 stored
    _post(client, {"type": "VIEW", "ruleId": "rule_2"})  # another rule: stored
    _post(client, {"type": "VIEW", "ruleId": "rule_1"}, **{"X-Forwarded-For": "x"})  # same IP (no proxy): dropped
    _post(client, {"type": "COPY", "ruleId": "rule_1"})  # not a VIEW: stored
    clock.now += 599
    _post(client, {"type": "VIEW", "ruleId": "rule_1"})  # inside the window: dropped
    clock.now += 2
    _post(client, {"type": "VIEW", "ruleId": "rule_1"})  # window over: stored

    assert [(event["type"], event["rule_id"]) for event in _stored(landing_dir)] == [
        ("VIEW", "rule_1"),
        ("VIEW", "rule_2"),
        ("COPY", "rule_1"),
        ("VIEW", "rule_1"),
    ]


def test_view_dedup_distinguishes_client_ips(landing_dir: Path) -> None:
    client = make_app(landing_dir, TRUSTED_PROXIES=1).test_client()
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.1"):
        _post(client, {"type": "VIEW", "ruleId": "rule_1"}, **{"X-Forwarded-For": ip})
    assert [event["rule_id"] for event in _stored(landing_dir)] == ["rule_1", "rule_1"]


def test_duplicate_event_does_not_open_a_view_window(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    _post(client, {"type": "SAVE", "ruleId": "r", "idempotencyKey": "k"})
    # The retried event is a VIEW now only by a client bug; it is dropped and must leave the VIEW window free.
    _post(client, {"type": "VIEW", "ruleId": "r", "idempotencyKey": "k"})
    _post(client, {"type": "VIEW", "ruleId": "r"})
    assert [event["type"] for event in _stored(landing_dir)] == ["SAVE", "VIEW"]


def test_repeated_event_leaves_the_view_window_to_the_next_view_of_the_batch(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    _post(client, {"type": "SAVE", "ruleId": "r", "idempotencyKey": "k"})
    response = _post(client, {"type": "VIEW", "ruleId": "r", "idempotencyKey": "k"}, {"type": "VIEW", "ruleId": "r"})
    assert (response.get_json()["stored"], response.get_json()["duplicates"]) == (1, 1)
    assert [event["type"] for event in _stored(landing_dir)] == ["SAVE", "VIEW"]


def test_landing_failure_gives_the_claims_back(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    (landing_dir / "app_events").mkdir(parents=True)
    (landing_dir / "app_events" / ".tmp").write_text("a file where the temporary directory belongs")

    failed = _post(client, {"type": "VIEW", "ruleId": "r", "idempotencyKey": "k"})
    (landing_dir / "app_events" / ".tmp").unlink()
    retried = _post(client, {"type": "VIEW", "ruleId": "r", "idempotencyKey": "k"})

    assert failed.status_code == 503
    assert failed.get_json()["error"] == "landing_unavailable"
    assert (retried.status_code, retried.get_json()["stored"]) == (202, 1)


def test_dedup_survives_restart_with_the_default_sqlite_store(landing_dir: Path) -> None:
    _post(make_app(landing_dir).test_client(), {"type": "VIEW", "ruleId": "r", "idempotencyKey": "k1"})
    restarted = make_app(landing_dir).test_client()
    response = _post(
        restarted, {"type": "VIEW", "ruleId": "r"}, {"type": "SAVE", "ruleId": "r", "idempotencyKey": "k1"}
    )
    assert response.get_json()["duplicates"] == 2
    assert (landing_dir / ".state" / "claims.sqlite").is_file()


@pytest.fixture
def redis_claims() -> Iterator[dict[str, str]]:
    with redis_prefix() as prefix:
        yield {"CLAIMS_URL": REDIS_URL, "CLAIMS_KEY_PREFIX": prefix}


def test_redis_store_shares_dedup_between_instances(landing_dir: Path, redis_claims: dict[str, str]) -> None:
    # Two workers (or hosts) with one Redis and separate landing zones: only the store is shared.
    clients = [make_app(landing_dir / f"host{n}", **redis_claims).test_client() for n in (1, 2)]
    both = ({"type": "VIEW", "ruleId": "r"}, {"type": "SAVE", "ruleId": "r", "idempotencyKey": "k"})

    first, second = (_post(client, *both) for client in clients)

    assert (first.get_json()["stored"], second.get_json()["stored"]) == (2, 0)
    ttl = redis.Redis.from_url(REDIS_URL).pttl(f"{redis_claims['CLAIMS_KEY_PREFIX']}idem:k")
    assert 0 < ttl <= 7 * 24 * 3600 * 1000


def test_redis_view_window_expires(landing_dir: Path, redis_claims: dict[str, str]) -> None:
    client = make_app(landing_dir, APP_VIEW_DEDUP_SECONDS=0.2, **redis_claims).test_client()
    stored = [_post(client, {"type": "VIEW", "ruleId": "r"}).get_json()["stored"]]
    stored.append(_post(client, {"type": "VIEW", "ruleId": "r"}).get_json()["stored"])
    time.sleep(0.3)  # Redis expires keys on its own clock
    stored.append(_post(client, {"type": "VIEW", "ruleId": "r"}).get_json()["stored"])
    assert stored == [1, 0, 1]


def test_unreachable_claim_store_is_503_and_lands_nothing(landing_dir: Path) -> None:
    client = make_app(landing_dir, CLAIMS_URL="redis://127.0.0.1:1/0").test_client()
    response = _post(client, {"type": "VIEW", "ruleId": "r"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "dedup_unavailable"
    # At least the 5 s the claim store is given to come back.
    assert int(response.headers["Retry-After"]) >= 5
    assert landed(landing_dir, "app_events") == []


def test_received_times_are_utc(landing_dir: Path) -> None:
    _post(make_app(landing_dir).test_client(), {"type": "SAVE", "ruleId": "r"})
    assert datetime.fromisoformat(landed(landing_dir, "app_events")[0]["received_at"]).utcoffset() == UTC.utcoffset(
        None
    )
