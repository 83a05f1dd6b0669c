"""`GET /ingest/receipts/<id>` over a landing zone the real writer filled and the platform's zone moved about."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest_platform.landing import LandingZone, Loaded
from tests.webhook_app.conftest import BIGTOP_TOKEN
from webhook_app.audit import new_request_id
from webhook_app.landing import LandingWriter
from webhook_app.receipts import _days_of

APP_TOKEN = "app-token-for-receipts-0123456789"
SCHEDULER_TOKEN = "scheduler-token-for-receipts-0123456789"
CRON_SECRET = "cron-secret-for-receipts-0123456789"
CREDENTIALS = {
    "bigtop": {"Authorization": f"Bearer {BIGTOP_TOKEN}"},
    "app": {"x-app-token": APP_TOKEN},
    "scheduler": {"Authorization": f"Bearer {SCHEDULER_TOKEN}"},
    "cron": {"x-cron-secret": CRON_SECRET},
}
SEES = {
    "bigtop": ("bigtop_events",),
    "app": ("app_events", "crawl_items", "app_rules"),
    "scheduler": ("stripe_events",),
    "cron": ("stripe_events",),
}
STREAMS = ("bigtop_events", "app_events", "crawl_items", "app_rules", "stripe_events")
STATES = ("landed", "loaded", "quarantined")
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOADED_AT = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
REASON = "payload does not match the schema: events.0.title: Field required"


@pytest.fixture
def app_config(landing_dir: Path) -> dict:
    return {
        "TESTING": True,
        "LANDING_DIR": str(landing_dir),
        "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN,
        "INGEST_APP_TOKEN": APP_TOKEN,
        "RTARF_API_TOKEN": SCHEDULER_TOKEN,
        "CRON_SECRET": CRON_SECRET,
    }


def land(landing_dir: Path, stream: str, state: str, *, request_id: str | None = None) -> str:
    """One request of `stream` in `state`, its id returned; the file written and moved as in production."""
    request_id = request_id or new_request_id()
    path = LandingWriter(landing_dir).land(stream=stream, request_id=request_id, received_at=RECEIVED, payload={})
    zone = LandingZone(landing_dir)
    if state == "loaded":
        zone.archive(stream, [Loaded(path.name, 3, "run-42", LOADED_AT)])
    elif state == "quarantined":
        zone.quarantine(stream, path.name, REASON)
    return request_id


@pytest.fixture
def ids(landing_dir: Path) -> dict[tuple[str, str], str]:
    return {(stream, state): land(landing_dir, stream, state) for stream in STREAMS for state in STATES}


EXPECTED = {
    "landed": {},
    "loaded": {"loaded_at": LOADED_AT.isoformat(), "run_id": "run-42", "rows": 3},
    "quarantined": {"reason": REASON},
}


@pytest.mark.parametrize(
    ("credential", "stream", "state"),
    [(credential, stream, state) for credential, streams in SEES.items() for stream in streams for state in STATES],
    ids=lambda value: value,
)
def test_each_state_is_told_to_the_family_that_sent_it(client, ids, credential, stream, state) -> None:
    request_id = ids[stream, state]
    response = client.get(f"/ingest/receipts/{request_id}", headers=CREDENTIALS[credential])
    assert response.status_code == 200, response.json
    assert response.json == {
        "request_id": request_id,
        "stream": stream,
        "state": state,
        "received_at": RECEIVED.isoformat(),
        **EXPECTED[state],
    }


UNKNOWN = {"error": "not_found", "detail": "No request with this id is known to this credential.", "fields": []}


@pytest.mark.parametrize(
    ("credential", "stream"),
    [(credential, stream) for credential, streams in SEES.items() for stream in STREAMS if stream not in streams],
    ids=lambda value: value,
)
@pytest.mark.parametrize("state", STATES)
def test_another_familys_id_reads_as_unknown(client, ids, credential, stream, state) -> None:
    response = client.get(f"/ingest/receipts/{ids[stream, state]}", headers=CREDENTIALS[credential])
    assert (response.status_code, response.json) == (404, UNKNOWN)


@pytest.mark.parametrize(
    "request_id",
    ["0190f0a1b2c37abc8def0123456789ab", "5c1e0c0f2b5e4d8f9a7b6c5d4e3f2a1b", "..", "a" * 65, "not%20an%20id"],
    ids=["unknown-v7", "unknown-v4", "dots", "too-long", "spaces"],
)
def test_unknown_or_malformed_ids_are_404(client, ids, request_id) -> None:
    response = client.get(f"/ingest/receipts/{request_id}", headers=CREDENTIALS["bigtop"])
    assert (response.status_code, response.json) == (404, UNKNOWN)


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"Authorization": f"Basic {BIGTOP_TOKEN}"}, 401, "unauthorized"),
        ({"x-app-token": BIGTOP_TOKEN}, 401, "unauthorized"),  # the right secret in another family's header
        ({"x-cron-secret": APP_TOKEN}, 401, "unauthorized"),
    ],
    ids=["none", "wrong-bearer", "basic-scheme", "bigtop-token-as-app-token", "app-token-as-cron-secret"],
)
def test_a_missing_or_invalid_credential_is_401(client, ids, headers, status, error) -> None:
    response = client.get(f"/ingest/receipts/{ids['bigtop_events', 'landed']}", headers=headers)
    assert (response.status_code, response.json["error"]) == (status, error)
    assert BIGTOP_TOKEN not in response.get_data(as_text=True)


def test_no_credential_configured_disables_the_route(landing_dir) -> None:
    from webhook_app import create_app

    client = create_app({"TESTING": True, "LANDING_DIR": str(landing_dir), "BIGTOP_INGEST_TOKEN": ""}).test_client()
    response = client.get(f"/ingest/receipts/{new_request_id()}", headers=CREDENTIALS["bigtop"])
    assert (response.status_code, response.json["error"]) == (503, "receipts_disabled")


def test_a_pushed_batch_reads_landed_then_loaded(client, landing_dir) -> None:
    batch = {
        "run_id": "local-run-1",
        "sent_at": "2026-03-01T12:00:00Z",
        "events": [{"external_id": "uid-1", "title": "Trivia", "start_utc": "2026-03-05T23:00:00Z"}],
    }
    accepted = client.post("/api/ingest/bigtop/events", json=batch, headers=CREDENTIALS["bigtop"])
    request_id = accepted.json["request_id"]
    url = f"/ingest/receipts/{request_id}"
    assert client.get(url, headers=CREDENTIALS["bigtop"]).json["state"] == "landed"
    (name,) = LandingZone(landing_dir).pending("bigtop_events", limit=10)
    LandingZone(landing_dir).archive("bigtop_events", [Loaded(name, 1, "run-7", LOADED_AT)])
    receipt = client.get(url, headers=CREDENTIALS["bigtop"]).json
    assert (receipt["state"], receipt["rows"], receipt["run_id"]) == ("loaded", 1, "run-7")


def test_an_id_without_a_time_is_found_in_any_archived_day(client, landing_dir) -> None:
    request_id = land(landing_dir, "bigtop_events", "loaded", request_id=uuid.uuid4().hex)
    assert client.get(f"/ingest/receipts/{request_id}", headers=CREDENTIALS["bigtop"]).json["state"] == "loaded"


def test_a_receipt_whose_file_moved_on_is_no_evidence(client, landing_dir, ids) -> None:
    request_id = ids["bigtop_events", "loaded"]
    (archived,) = (landing_dir / "bigtop_events" / "loaded").glob(f"*/*-{request_id}.json")
    archived.unlink()
    assert client.get(f"/ingest/receipts/{request_id}", headers=CREDENTIALS["bigtop"]).status_code == 404


@pytest.mark.parametrize(
    ("drawn", "days"),
    [
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), ["2026-03-01"]),
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), ["2026-03-01", "2026-03-02"]),
    ],
    ids=["midday", "just-before-midnight"],
)
def test_the_id_names_the_days_its_file_can_be_in(drawn, days) -> None:
    milliseconds = int(drawn.timestamp() * 1000)
    request_id = f"{milliseconds:012x}7" + "0" * 19
    assert _days_of(request_id) == days


def test_request_ids_are_uuid7() -> None:
    parsed = uuid.UUID(new_request_id())
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
