"""Every intake refuses, with a 422 naming the field, each value the warehouse cannot store (`ingest_limits`), and
lands nothing; the values at the limits are accepted."""

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest_limits import (
    BIGINT_MAX,
    BIGTOP_EXTERNAL_ID_CHARS,
    IDENTIFIER_CHARS,
    LATEST_EPOCH_SECONDS,
    STRIPE_ID_CHARS,
    ZONED_TIMESTAMP_PATTERN,
)
from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import STRIPE_SECRET, app_headers, landed_data, make_app
from tests.webhook_app.test_bigtop import batch as bigtop_batch
from tests.webhook_app.test_bigtop import event as bigtop_event

BIGTOP_TOKEN = "bigtop-limits-token"
# A character of four UTF-8 bytes: a key at its limit in these is the widest index row the edge lets through.
WIDE = "\U0001f3aa"
YEAR_10000_IN_UTC = "9999-12-31T23:59:59-14:00"


def bigtop(**event_changes: Any) -> tuple[str, str, dict[str, str]]:
    return (
        "/api/ingest/bigtop/events",
        json.dumps(bigtop_batch(events=[bigtop_event(**event_changes)])),
        {"Authorization": f"Bearer {BIGTOP_TOKEN}"},
    )


def bigtop_batch_with(**changes: Any) -> tuple[str, str, dict[str, str]]:
    return "/api/ingest/bigtop/events", json.dumps(bigtop_batch(**changes)), {"Authorization": f"Bearer {BIGTOP_TOKEN}"}


def app_event(**changes: Any) -> tuple[str, str, dict[str, str]]:
    return "/ingest/events", json.dumps({"events": [{"type": "COPY", "ruleId": "rule-1", **changes}]}), app_headers()


def crawl_item(**changes: Any) -> tuple[str, str, dict[str, str]]:
    item = {"externalId": "item-1", "url": "https://example.org/a", "title": "A title", **changes}
    return "/ingest/crawl", json.dumps({"sourceId": "partner", "items": [item]}), app_headers()


def stripe_event(obj: dict[str, Any], **envelope: Any) -> tuple[str, str, dict[str, str]]:
    event = fake_stripe.event("payment_intent.succeeded", obj) | envelope
    body, headers = fake_stripe.signed(event, STRIPE_SECRET)
    return "/ingest/stripe/webhook", body, headers


def intent(**changes: Any) -> dict[str, Any]:
    return fake_stripe.payment_intent("pi_1", amount=500, authorId="author-1") | changes


REFUSED: list[tuple[str, Callable[[], tuple[str, str, dict[str, str]]], str]] = [
    ("bigtop-nul-in-title", lambda: bigtop(title="Tri\x00via"), "events.0.title"),
    ("bigtop-nul-in-external-id", lambda: bigtop(external_id="uid\x00@bigtop"), "events.0.external_id"),
    ("bigtop-nul-in-category", lambda: bigtop(categories=["music", "\x00"]), "events.0.categories.1"),
    ("bigtop-lone-surrogate", lambda: bigtop(title="Tri\ud800via"), "events.0.title"),
    ("bigtop-year-10000-after-offset", lambda: bigtop(start_utc=YEAR_10000_IN_UTC), "events.0.start_utc"),
    ("bigtop-before-1900", lambda: bigtop(start_utc="1899-12-31T23:59:59Z"), "events.0.start_utc"),
    ("bigtop-end-after-2200", lambda: bigtop(end_utc="2201-01-01T00:00:00Z"), "events.0.end_utc"),
    ("bigtop-bare-number-start", lambda: bigtop(start_utc="1772751600"), "events.0.start_utc"),
    ("bigtop-bare-number-sent-at", lambda: bigtop_batch_with(sent_at="1772380800"), "sent_at"),
    ("bigtop-number-start", lambda: bigtop(start_utc=1772751600), "events.0.start_utc"),
    (
        "bigtop-external-id-too-long",
        lambda: bigtop(external_id=WIDE * (BIGTOP_EXTERNAL_ID_CHARS + 1)),
        "events.0.external_id",
    ),
    ("events-nul-in-rule-id", lambda: app_event(ruleId="rule\x00"), "events.0.ruleId"),
    ("events-lone-surrogate-in-user-id", lambda: app_event(userId="user\udfff"), "events.0.userId"),
    ("events-year-10000-after-offset", lambda: app_event(ts=YEAR_10000_IN_UTC), "events.0.ts"),
    ("events-bare-number-ts", lambda: app_event(ts="1772751600"), "events.0.ts"),
    ("events-rule-id-too-long", lambda: app_event(ruleId="r" * (IDENTIFIER_CHARS + 1)), "events.0.ruleId"),
    ("events-idempotency-key-too-long", lambda: app_event(idempotencyKey="k" * 201), "events.0.idempotencyKey"),
    ("crawl-raw-nan", lambda: crawl_item(raw={"a": {"b": float("nan")}}), "items.0.raw.a.b"),
    ("crawl-raw-infinity", lambda: crawl_item(raw={"a": [1, float("inf")]}), "items.0.raw.a.1"),
    ("crawl-raw-minus-infinity", lambda: crawl_item(raw={"x": float("-inf")}), "items.0.raw.x"),
    ("crawl-raw-nul-deep", lambda: crawl_item(raw={"a": {"b": "x\x00"}}), "items.0.raw.a.b"),
    ("crawl-raw-nul-in-key", lambda: crawl_item(raw={"a": {"b\x00": 1}}), "items.0.raw.a"),
    ("crawl-raw-lone-surrogate", lambda: crawl_item(raw={"a": {"b": "\ud83c"}}), "items.0.raw.a.b"),
    ("crawl-nul-in-title", lambda: crawl_item(title="A\x00title"), "items.0.title"),
    ("crawl-external-id-too-long", lambda: crawl_item(externalId="i" * (IDENTIFIER_CHARS + 1)), "items.0.externalId"),
    ("stripe-amount-2-to-the-70", lambda: stripe_event(intent(amount=2**70)), "data.object.amount"),
    ("stripe-amount-just-over-bigint", lambda: stripe_event(intent(amount=BIGINT_MAX + 1)), "data.object.amount"),
    ("stripe-amount-fraction", lambda: stripe_event(intent(amount=1.5)), "data.object.amount"),
    ("stripe-amount-nan", lambda: stripe_event(intent(amount_received=float("nan"))), "data.object.amount_received"),
    ("stripe-nan-in-free-field", lambda: stripe_event(intent(score=float("nan"))), "data.object.score"),
    ("stripe-nul-in-payload", lambda: stripe_event(intent(description="gift\x00")), "data.object.description"),
    (
        "stripe-lone-surrogate-in-metadata",
        lambda: stripe_event(intent(metadata={"note": "\udc00"})),
        "data.object.metadata.note",
    ),
    ("stripe-intent-id-too-long", lambda: stripe_event(intent(id="pi_" + "x" * STRIPE_ID_CHARS)), "data.object.id"),
    (
        "stripe-author-id-too-long",
        lambda: stripe_event(intent(metadata={"authorId": "a" * (IDENTIFIER_CHARS + 1)})),
        "data.object.metadata.authorId",
    ),
    ("stripe-created-after-2200", lambda: stripe_event(intent(), created=LATEST_EPOCH_SECONDS + 1), "created"),
]

ACCEPTED: list[tuple[str, Callable[[], tuple[str, str, dict[str, str]]]]] = [
    ("bigtop-external-id-at-limit-of-wide-chars", lambda: bigtop(external_id=WIDE * BIGTOP_EXTERNAL_ID_CHARS)),
    ("bigtop-last-instant-of-2200", lambda: bigtop(start_utc="2200-12-31T23:59:59.999999Z")),
    ("bigtop-first-instant-of-1900-after-offset", lambda: bigtop(start_utc="1899-12-31T23:00:00-01:00")),
    ("bigtop-escaped-backslash-before-u0000", lambda: bigtop(title="C:\\u0000")),
    ("bigtop-surrogate-pair", lambda: bigtop(title="Circus " + WIDE)),
    ("events-rule-id-at-limit", lambda: app_event(ruleId="r" * IDENTIFIER_CHARS)),
    ("crawl-raw-big-integer", lambda: crawl_item(raw={"views": 2**70, "ratio": 0.5})),
    ("stripe-amount-bigint-max", lambda: stripe_event(intent(amount=BIGINT_MAX))),
    ("stripe-fraction-in-free-field", lambda: stripe_event(intent(application_fee_percent=1.5))),
]


@pytest.fixture
def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


@pytest.fixture
def client(landing_dir: Path):
    return make_app(landing_dir, BIGTOP_INGEST_TOKEN=BIGTOP_TOKEN).test_client()


def post(client, request: tuple[str, str, dict[str, str]]):
    url, body, headers = request
    return client.post(url, data=body.encode(), headers={**headers, "Content-Type": "application/json"})


def bigtop_landed(landing_dir: Path) -> int:
    return len(list((landing_dir / "bigtop_events").glob("*.json")))


@pytest.mark.parametrize(("make", "field"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_a_value_the_warehouse_cannot_store_is_refused_naming_its_field(client, landing_dir, make, field) -> None:
    response = post(client, make())

    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert field in [problem["field"] for problem in body["fields"]], body
    assert set(landed_data(landing_dir).values()) == {0}
    assert bigtop_landed(landing_dir) == 0


@pytest.mark.parametrize("make", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_a_value_at_the_limit_is_accepted(client, landing_dir, make) -> None:
    response = post(client, make())

    assert response.status_code in (200, 202), response.get_data(as_text=True)
    assert sum(landed_data(landing_dir).values()) + bigtop_landed(landing_dir) == 1


def test_no_problem_quotes_the_refused_value(client) -> None:
    response = post(client, crawl_item(raw={"email": "someone@example.org\x00"}))
    assert response.status_code == 422
    assert "someone@example.org" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("ahead", "accepted"), [(290, True), (400, False), (86_400, False)], ids=["within-tolerance", "beyond", "a-day"]
)
def test_a_stripe_signature_from_the_future_beyond_the_tolerance_is_refused(client, landing_dir, ahead, accepted):
    body, headers = fake_stripe.signed(
        fake_stripe.event("charge.refunded", {}), STRIPE_SECRET, timestamp=int(time.time()) + ahead
    )
    response = client.post("/ingest/stripe/webhook", data=body, headers=headers)

    if accepted:
        assert response.status_code == 200
        assert landed_data(landing_dir)["stripe_events"] == 1
    else:
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_signature"
        assert "future" in response.get_json()["fields"][0]["problem"]
        assert landed_data(landing_dir)["stripe_events"] == 0


def test_the_openapi_document_states_the_limits(client) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    [ts] = [option for option in schemas["AppEvent"]["properties"]["ts"]["anyOf"] if option.get("type") == "string"]
    assert (ts["format"], ts["pattern"]) == ("date-time", ZONED_TIMESTAMP_PATTERN)
    [amount] = [option for option in schemas["StripeObject"]["properties"]["amount"]["anyOf"] if "maximum" in option]
    assert (amount["type"], amount["minimum"], amount["maximum"]) == ("integer", -(2**63), BIGINT_MAX)
    assert schemas["StripeEvent"]["properties"]["created"]["maximum"] == LATEST_EPOCH_SECONDS
