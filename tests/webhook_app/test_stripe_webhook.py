"""POST /ingest/stripe/webhook with events signed exactly as Stripe signs them."""

import json
import time
from pathlib import Path

import pytest

from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import STRIPE_SECRET, landed, make_app


@pytest.fixture
def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


@pytest.mark.parametrize(
    ("event_type", "handled"),
    [
        ("checkout.session.completed", True),
        ("payment_intent.succeeded", True),
        ("payment_intent.payment_failed", True),
        ("charge.refunded", True),
        ("customer.created", False),
    ],
    ids=["checkout", "succeeded", "failed", "refunded", "unknown-type"],
)
def test_verified_event_lands_raw(landing_dir: Path, event_type: str, handled: bool) -> None:
    event = fake_stripe.event(event_type, {"id": "obj_1", "object": "x", "metadata": {"authorId": "a1"}})
    body, headers = fake_stripe.signed(event, STRIPE_SECRET)

    response = make_app(landing_dir).test_client().post("/ingest/stripe/webhook", data=body, headers=headers)

    assert response.status_code == 200
    assert response.get_json() | {"request_id": None} == {
        "received": True,
        "event_id": event["id"],
        "handled": handled,
        "request_id": None,
    }
    [document] = landed(landing_dir, "stripe_events")
    assert document["payload"]["event"] == json.loads(body)
    audit = document["payload"]["audit"]
    assert (audit["actor"], audit["action"], audit["outcome"], audit["details"]["type"]) == (
        "STRIPE_WEBHOOK_SECRET#0",
        "stripe.webhook",
        "accepted",
        event_type,
    )


def test_signature_within_tolerance_is_accepted(landing_dir: Path) -> None:
    body, headers = fake_stripe.signed(
        fake_stripe.event("charge.refunded", {}), STRIPE_SECRET, timestamp=int(time.time()) - 290
    )
    response = make_app(landing_dir).test_client().post("/ingest/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 200


def test_tolerance_is_configurable(landing_dir: Path) -> None:
    body, headers = fake_stripe.signed(
        fake_stripe.event("charge.refunded", {}), STRIPE_SECRET, timestamp=int(time.time()) - 60
    )
    response = (
        make_app(landing_dir, STRIPE_TOLERANCE_SECONDS=30)
        .test_client()
        .post("/ingest/stripe/webhook", data=body, headers=headers)
    )
    assert response.status_code == 400
    assert "tolerance" in response.get_json()["fields"][0]["problem"]
    assert landed(landing_dir, "stripe_events") == []


def test_rotated_signing_secret(landing_dir: Path) -> None:
    body, headers = fake_stripe.signed(fake_stripe.event("charge.refunded", {}), "whsec_new")
    client = make_app(landing_dir, STRIPE_WEBHOOK_SECRET=f"{STRIPE_SECRET},whsec_new").test_client()
    assert client.post("/ingest/stripe/webhook", data=body, headers=headers).status_code == 200
    assert landed(landing_dir, "stripe_events")[0]["payload"]["audit"]["actor"] == "STRIPE_WEBHOOK_SECRET#1"


def test_redelivery_lands_again_for_the_loader_to_collapse(landing_dir: Path) -> None:
    client = make_app(landing_dir).test_client()
    event = fake_stripe.event("payment_intent.succeeded", fake_stripe.payment_intent("pi_1", amount=500))
    for _ in range(2):
        body, headers = fake_stripe.signed(event, STRIPE_SECRET)
        assert client.post("/ingest/stripe/webhook", data=body, headers=headers).status_code == 200
    assert [document["payload"]["event"]["id"] for document in landed(landing_dir, "stripe_events")] == [
        event["id"]
    ] * 2


def test_stripe_is_not_rate_limited(landing_dir: Path) -> None:
    client = make_app(
        landing_dir, APP_EVENTS_RATE_LIMIT="1 per minute", APP_CRAWL_RATE_LIMIT="1 per minute"
    ).test_client()
    statuses = set()
    for _ in range(5):
        body, headers = fake_stripe.signed(fake_stripe.event("charge.refunded", {}), STRIPE_SECRET)
        response = client.post("/ingest/stripe/webhook", data=body, headers=headers)
        statuses.add(response.status_code)
        assert "RateLimit-Limit" not in response.headers
    assert statuses == {200}
