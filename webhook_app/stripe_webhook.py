"""`POST /ingest/stripe/webhook`: Stripe events, verified with the `stripe` library and landed as received.

Nothing is interpreted here: the loader derives donations from every stored event, so a retried or late event
changes nothing it should not. A bad or stale signature is a 400 and lands nothing.
"""

import json
import logging
from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from webhook_app import audit
from webhook_app.app_common import land_accepted
from webhook_app.auth import required_secrets
from webhook_app.errors import ApiError
from webhook_app.openapi import Credential, documented
from webhook_app.validation import json_request_bytes, parse_json

log = logging.getLogger(__name__)

STREAM = "stripe_events"
ACTION = "stripe.webhook"
SIGNING_KEY_VARIABLE = "STRIPE_WEBHOOK_SECRET"
SIGNATURE_HEADER = "Stripe-Signature"
# The types the loader turns into donations; any other type is stored raw and counted.
HANDLED_TYPES = (
    "checkout.session.completed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
)
STRIPE_SIGNATURE = Credential(
    "stripeSignature",
    {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>' under the endpoint's signing secret>",
    },
)

bp = Blueprint("stripe_webhook", __name__, url_prefix="/ingest/stripe")


class StripeEventData(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    object: dict[str, Any]


class StripeEvent(BaseModel):
    """The envelope of a Stripe event; the rest of it is kept as Stripe sent it."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: Annotated[str, StringConstraints(pattern=r"^evt_[A-Za-z0-9_]+$", max_length=255)]
    object: Literal["event"]
    type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    created: Annotated[int, Field(ge=0)]
    livemode: bool
    data: StripeEventData


class StripeReceived(BaseModel):
    model_config = ConfigDict(extra="forbid")

    received: bool
    event_id: str
    handled: bool = Field(description="Whether the type feeds donations; other types are kept raw.")
    request_id: str


@bp.post("/webhook")
@documented(
    summary="Receive a Stripe webhook event",
    description="Verified against STRIPE_WEBHOOK_SECRET with a 5-minute tolerance. Not rate limited.",
    body=StripeEvent,
    responses={200: ("Durably landed", StripeReceived)},
    credential=STRIPE_SIGNATURE,
    errors=(400, 403, 413, 415, 422, 503),
    tags=("app",),
)
def stripe_webhook():
    secrets = required_secrets(SIGNING_KEY_VARIABLE, disabled_error="stripe_disabled")
    body = json_request_bytes()
    audit.set_actor(_verified_signer(body, secrets))
    event = parse_json(StripeEvent, body)
    handled = event.type in HANDLED_TYPES
    land_accepted(
        stream=STREAM,
        action=ACTION,
        status=200,
        payload={"event": json.loads(body)},
        details={"event_id": event.id, "type": event.type, "handled": handled, "livemode": event.livemode},
    )
    log.info("landed stripe event %s (%s)", event.id, event.type)
    return jsonify(
        StripeReceived(received=True, event_id=event.id, handled=handled, request_id=audit.request_id()).model_dump()
    )


def _verified_signer(body: bytes, secrets: list[str]) -> str:
    """Which secret slot signed `body`, or a 400 naming what is wrong with the signature."""
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        raise ApiError(
            400,
            "invalid_signature",
            f"Missing {SIGNATURE_HEADER} header.",
            [{"field": SIGNATURE_HEADER, "problem": "missing"}],
        )
    tolerance = int(current_app.config["STRIPE_TOLERANCE_SECONDS"])
    problem = "no signing secret configured"
    # Imported on first use: the stripe package costs every worker ~0.1 s at start-up.
    import stripe

    for slot, secret in enumerate(secrets):
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
        except stripe.SignatureVerificationError as error:
            problem = error.user_message or str(error)
            continue
        except UnicodeDecodeError:
            raise ApiError(400, "malformed_json", "The body is not UTF-8 text.") from None
        return f"{SIGNING_KEY_VARIABLE}#{slot}"
    raise ApiError(
        400,
        "invalid_signature",
        "The Stripe signature does not verify.",
        [{"field": SIGNATURE_HEADER, "problem": problem}],
    )
