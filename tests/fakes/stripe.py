"""Stripe as a webhook sender: events shaped like Stripe's, signed the way Stripe signs them.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the endpoint secret>`, computed by
the stripe library's own `generate_signature_header`; `timestamp=` backdates it to make a stale delivery.
"""

import itertools
import json
import time
from typing import Any

import httpx
import stripe

_sequence = itertools.count(1)


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None) -> dict:
    """A Stripe event envelope around `obj`, as the API version 2024-06-20 sends it."""
    return {
        "id": event_id or f"evt_test{next(_sequence):010d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": created if created is not None else int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_completed(session_id: str, intent_id: str | None, *, amount: int, paid: bool = True, **meta) -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount,
        "currency": "usd",
        "mode": "payment",
        "payment_intent": intent_id,
        "payment_status": "paid" if paid else "unpaid",
        "status": "complete",
        "metadata": meta,
    }


def payment_intent(intent_id: str, *, amount: int, succeeded: bool = True, **meta) -> dict:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if succeeded else 0,
        "currency": "usd",
        "status": "succeeded" if succeeded else "requires_payment_method",
        "last_payment_error": None if succeeded else {"code": "card_declined"},
        "metadata": meta,
    }


def refunded_charge(charge_id: str, intent_id: str, *, amount: int, refunded_amount: int) -> dict:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded_amount,
        "currency": "usd",
        "payment_intent": intent_id,
        "refunded": refunded_amount >= amount,
        "metadata": {},
    }


def signed(payload: dict | str, secret: str, *, timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    """The raw body and the headers Stripe sends with it."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"}


def deliver(endpoint: str, payload: dict, secret: str, *, timestamp: int | None = None) -> httpx.Response:
    """POST `payload` to `endpoint` over HTTP the way Stripe delivers a webhook."""
    body, headers = signed(payload, secret, timestamp=timestamp)
    headers["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    return httpx.post(endpoint, content=body.encode(), headers=headers, timeout=10)
