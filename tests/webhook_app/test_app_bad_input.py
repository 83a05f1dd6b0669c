"""Bad input on the three intake endpoints: the right status and error code, the field named, nothing landed."""

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import (
    APP_TOKEN,
    STRIPE_SECRET,
    app_headers,
    landed,
    landed_data,
    make_app,
)

VIEW = {"type": "VIEW", "ruleId": "rule_1"}
CRAWLED = {"externalId": "p-1", "url": "https://partner.example/rule/1", "title": "A rule"}
RULE = {"ruleId": "rule_1", "authorId": "author_1", "title": "A rule", "updatedAt": "2026-01-02T03:04:05Z"}
NOTHING = {"app_events": 0, "stripe_events": 0, "crawl_items": 0, "app_rules": 0}


def _stripe_event(**changes: Any) -> dict[str, Any]:
    return {**fake_stripe.event("payment_intent.succeeded", fake_stripe.payment_intent("pi_1", amount=500)), **changes}


def _signed(payload: Any, **kwargs: Any) -> tuple[str, dict[str, str]]:
    return fake_stripe.signed(payload, kwargs.pop("secret", STRIPE_SECRET), **kwargs)


def _signed_when_sent(payload: Any, **kwargs: Any) -> Callable[[], tuple[str, dict[str, str]]]:
    """Signed when the test sends it: a signature made while the cases are collected can be older than Stripe's
    300 s tolerance by the time a long suite reaches the case."""
    return functools.partial(_signed, payload, **kwargs)


def _json(body: Any, headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    return json.dumps(body), {"Content-Type": "application/json", **(headers or {})}


# (method, path, (body, headers), config, status, error, field)
CASES = {
    # POST /ingest/events
    "events-no-token": ("POST", "/ingest/events", _json({"events": [VIEW]}), {}, 401, "unauthorized", None),
    "events-wrong-token": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW]}, {"x-app-token": "nope"}),
        {},
        401,
        "unauthorized",
        None,
    ),
    "events-token-unset": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW]}, app_headers()),
        {"INGEST_APP_TOKEN": None},
        503,
        "ingest_disabled",
        None,
    ),
    "events-ip-hash-key-unset": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW]}, app_headers()),
        {"INGEST_IP_HASH_SECRET": ""},
        503,
        "ingest_disabled",
        None,
    ),
    "events-not-json-content-type": (
        "POST",
        "/ingest/events",
        ("events", {"Content-Type": "text/plain", **app_headers()}),
        {},
        415,
        "unsupported_media_type",
        None,
    ),
    "events-malformed-json": (
        "POST",
        "/ingest/events",
        ('{"events": [', {"Content-Type": "application/json", **app_headers()}),
        {},
        400,
        "malformed_json",
        None,
    ),
    "events-body-not-object": (
        "POST",
        "/ingest/events",
        _json([VIEW], app_headers()),
        {},
        422,
        "validation_failed",
        "(body)",
    ),
    "events-missing-events": (
        "POST",
        "/ingest/events",
        _json({}, app_headers()),
        {},
        422,
        "validation_failed",
        "events",
    ),
    "events-empty-batch": (
        "POST",
        "/ingest/events",
        _json({"events": []}, app_headers()),
        {},
        422,
        "validation_failed",
        "events",
    ),
    "events-batch-too-large": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW] * 501}, app_headers()),
        {},
        422,
        "validation_failed",
        "events",
    ),
    "events-unknown-type": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "type": "CLICK"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.type",
    ),
    "events-missing-rule": (
        "POST",
        "/ingest/events",
        _json({"events": [{"type": "SAVE"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ruleId",
    ),
    "events-blank-rule": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ruleId": "  "}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ruleId",
    ),
    "events-rule-with-space": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ruleId": "a b"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ruleId",
    ),
    "events-user-not-string": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "userId": 5}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.userId",
    ),
    "events-naive-ts": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ts": "2025-01-01T00:00:00"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ts",
    ),
    "events-ts-not-a-time": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ts": "yesterday"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ts",
    ),
    "events-ts-in-future": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ts": "2999-01-01T00:00:00Z"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ts",
    ),
    "events-blank-idempotency-key": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "idempotencyKey": ""}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.idempotencyKey",
    ),
    "events-unknown-field": (
        "POST",
        "/ingest/events",
        _json({"events": [{**VIEW, "ip": "1.2.3.4"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "events.0.ip",
    ),
    "events-body-too-large": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW] * 100}, app_headers()),
        {"MAX_CONTENT_LENGTH": 1024},
        413,
        "request_entity_too_large",
        None,
    ),
    "events-from-browser": (
        "POST",
        "/ingest/events",
        _json({"events": [VIEW]}, app_headers(Origin="https://app.example")),
        {},
        403,
        "cross_origin_refused",
        None,
    ),
    "events-preflight": (
        "OPTIONS",
        "/ingest/events",
        ("", {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}),
        {},
        403,
        "cross_origin_refused",
        None,
    ),
    "events-wrong-method": ("GET", "/ingest/events", ("", app_headers()), {}, 405, "method_not_allowed", None),
    # POST /ingest/crawl
    "crawl-no-token": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [CRAWLED]}),
        {},
        401,
        "unauthorized",
        None,
    ),
    "crawl-token-unset": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [CRAWLED]}, app_headers()),
        {"INGEST_APP_TOKEN": ""},
        503,
        "ingest_disabled",
        None,
    ),
    "crawl-ftp-url": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [{**CRAWLED, "url": "ftp://x.example/a"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.url",
    ),
    "crawl-relative-url": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [{**CRAWLED, "url": "/rule/1"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.url",
    ),
    "crawl-url-without-host": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [{**CRAWLED, "url": "https:///x"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.url",
    ),
    "crawl-missing-title": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [{"externalId": "p", "url": "https://x.example"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.title",
    ),
    "crawl-missing-source": (
        "POST",
        "/ingest/crawl",
        _json({"items": [CRAWLED]}, app_headers()),
        {},
        422,
        "validation_failed",
        "sourceId",
    ),
    "crawl-no-items": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": []}, app_headers()),
        {},
        422,
        "validation_failed",
        "items",
    ),
    "crawl-too-many-items": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [CRAWLED] * 501}, app_headers()),
        {},
        422,
        "validation_failed",
        "items",
    ),
    "crawl-raw-not-object": (
        "POST",
        "/ingest/crawl",
        _json({"sourceId": "s", "items": [{**CRAWLED, "raw": [1, 2]}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.raw",
    ),
    "crawl-not-json-content-type": (
        "POST",
        "/ingest/crawl",
        ("x", {"Content-Type": "text/csv", **app_headers()}),
        {},
        415,
        "unsupported_media_type",
        None,
    ),
    # POST /ingest/rules
    "rules-no-token": ("POST", "/ingest/rules", _json({"items": [RULE]}), {}, 401, "unauthorized", None),
    "rules-token-unset": (
        "POST",
        "/ingest/rules",
        _json({"items": [RULE]}, app_headers()),
        {"INGEST_APP_TOKEN": None},
        503,
        "ingest_disabled",
        None,
    ),
    "rules-no-items": (
        "POST",
        "/ingest/rules",
        _json({"items": []}, app_headers()),
        {},
        422,
        "validation_failed",
        "items",
    ),
    "rules-too-many-items": (
        "POST",
        "/ingest/rules",
        _json({"items": [RULE] * 501}, app_headers()),
        {},
        422,
        "validation_failed",
        "items",
    ),
    "rules-missing-author": (
        "POST",
        "/ingest/rules",
        _json({"items": [{k: v for k, v in RULE.items() if k != "authorId"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.authorId",
    ),
    "rules-missing-updated-at": (
        "POST",
        "/ingest/rules",
        _json({"items": [{k: v for k, v in RULE.items() if k != "updatedAt"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.updatedAt",
    ),
    "rules-updated-at-without-zone": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "updatedAt": "2026-01-02T03:04:05"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.updatedAt",
    ),
    "rules-updated-at-not-a-time": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "updatedAt": "yesterday"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.updatedAt",
    ),
    "rules-tags-not-a-list": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "tags": "sql,python"}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.tags",
    ),
    "rules-empty-tag": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "tags": ["sql", " "]}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.tags.1",
    ),
    "rules-blank-title": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "title": "  "}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.title",
    ),
    "rules-unknown-field": (
        "POST",
        "/ingest/rules",
        _json({"items": [{**RULE, "stars": 5}]}, app_headers()),
        {},
        422,
        "validation_failed",
        "items.0.stars",
    ),
    "rules-not-json-content-type": (
        "POST",
        "/ingest/rules",
        ("x", {"Content-Type": "text/plain", **app_headers()}),
        {},
        415,
        "unsupported_media_type",
        None,
    ),
    # POST /ingest/stripe/webhook
    "stripe-secret-unset": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent(_stripe_event()),
        {"STRIPE_WEBHOOK_SECRET": None},
        503,
        "stripe_disabled",
        None,
    ),
    "stripe-no-signature": (
        "POST",
        "/ingest/stripe/webhook",
        _json(_stripe_event()),
        {},
        400,
        "invalid_signature",
        "Stripe-Signature",
    ),
    "stripe-wrong-secret": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent(_stripe_event(), secret="whsec_other"),
        {},
        400,
        "invalid_signature",
        "Stripe-Signature",
    ),
    "stripe-stale-signature": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent(_stripe_event(), timestamp=1_700_000_000),
        {},
        400,
        "invalid_signature",
        "Stripe-Signature",
    ),
    "stripe-tampered-body": (
        "POST",
        "/ingest/stripe/webhook",
        (json.dumps(_stripe_event(type="charge.refunded")), _signed(_stripe_event())[1]),
        {},
        400,
        "invalid_signature",
        "Stripe-Signature",
    ),
    "stripe-garbled-header": (
        "POST",
        "/ingest/stripe/webhook",
        (json.dumps(_stripe_event()), {"Stripe-Signature": "v1", "Content-Type": "application/json"}),
        {},
        400,
        "invalid_signature",
        "Stripe-Signature",
    ),
    "stripe-signed-malformed-json": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent('{"id": "evt_1",'),
        {},
        400,
        "malformed_json",
        None,
    ),
    "stripe-signed-not-an-event": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent({"id": "evt_1", "type": "x"}),
        {},
        422,
        "validation_failed",
        "object",
    ),
    "stripe-signed-bad-event-id": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent(_stripe_event(id="pi_123")),
        {},
        422,
        "validation_failed",
        "id",
    ),
    "stripe-not-json-content-type": (
        "POST",
        "/ingest/stripe/webhook",
        (json.dumps(_stripe_event()), {**_signed(_stripe_event())[1], "Content-Type": "text/plain"}),
        {},
        415,
        "unsupported_media_type",
        None,
    ),
    "stripe-body-too-large": (
        "POST",
        "/ingest/stripe/webhook",
        _signed_when_sent(_stripe_event(padding="x" * 4096)),
        {"MAX_CONTENT_LENGTH": 1024},
        413,
        "request_entity_too_large",
        None,
    ),
}


@pytest.mark.parametrize(
    ("method", "path", "request_parts", "config", "status", "error", "field"), CASES.values(), ids=CASES.keys()
)
def test_bad_input_is_refused_and_lands_nothing(
    data_dir: Path, method, path, request_parts, config, status, error, field
) -> None:
    landing_dir = data_dir / "landing"
    body, headers = request_parts() if callable(request_parts) else request_parts
    client = make_app(landing_dir, **config).test_client()

    response = client.open(path, method=method, data=body, headers=headers)

    assert response.status_code == status, response.get_data(as_text=True)
    payload = response.get_json()
    assert payload["error"] == error
    assert payload["detail"]
    if field is not None:
        assert field in [problem["field"] for problem in payload["fields"]], payload["fields"]
    assert landed_data(landing_dir) == NOTHING
    assert not any(name.startswith("Access-Control-") for name, _ in response.headers.items())
    assert APP_TOKEN not in response.get_data(as_text=True)
    assert STRIPE_SECRET not in response.get_data(as_text=True)


def test_rejections_are_audited_without_secrets_or_payload(data_dir: Path) -> None:
    landing_dir = data_dir / "landing"
    client = make_app(landing_dir).test_client()

    client.post(
        "/ingest/events",
        json={"events": [{**VIEW, "userId": "user_secret_7"}]},
        headers={"x-app-token": "wrong-token-value"},
    )
    body, headers = _signed(_stripe_event(), timestamp=1_700_000_000)
    client.post("/ingest/stripe/webhook", data=body, headers=headers)
    client.post("/ingest/crawl", json={"sourceId": "s", "items": []}, headers=app_headers())

    records = [document["payload"]["audit"] for document in landed(landing_dir, "app_audit")]
    assert [(r["action"], r["outcome"], r["status"], r["error"], r["actor"]) for r in records] == [
        ("ingest.events", "rejected", 401, "unauthorized", "anonymous"),
        ("stripe.webhook", "rejected", 400, "invalid_signature", "anonymous"),
        ("ingest.crawl", "rejected", 422, "validation_failed", "INGEST_APP_TOKEN#0"),
    ]
    assert all(len(record["ip_hash"]) == 64 for record in records)
    text = json.dumps(records)
    for secret_or_personal in (APP_TOKEN, STRIPE_SECRET, "user_secret_7", "127.0.0.1", "wrong-token-value"):
        assert secret_or_personal not in text
