"""`POST /ingest/stripe/webhook`: Stripe events, verified with the `stripe` library and landed as received.

Nothing is interpreted here: the loader derives donations from every stored event, so a retried or late event
changes nothing it should not. A bad or stale signature is a 400 and lands nothing.
"""

import json
import logging
import time
from typing import Annotated, Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ingest_limits import IDENTIFIER_CHARS, LATEST_EPOCH_SECONDS, STRIPE_ID_CHARS, json_problems
from webhook_app import audit
from webhook_app.app_common import land_accepted
from webhook_app.auth import required_secrets
from webhook_app.errors import ApiError
from webhook_app.openapi import Credential, documented
from webhook_app.validation import BigInt, json_request_bytes, parse_json, problem_fields, refuse_unstorable

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


StripeId = Annotated[str, StringConstraints(min_length=1, max_length=STRIPE_ID_CHARS)]
MetadataId = Annotated[str, StringConstraints(max_length=IDENTIFIER_CHARS)]


class StripeReference(BaseModel):
    """An expanded object where Stripe usually sends its id."""

    model_config = ConfigDict(defer_build=True, extra="allow", strict=True)

    id: StripeId


class StripeMetadata(BaseModel):
    """The metadata keys (Stripe's, in camelCase) the donations loader reads into indexed columns."""

    model_config = ConfigDict(defer_build=True, extra="allow", strict=True)

    authorId: MetadataId | None = None
    toUserId: MetadataId | None = None


class StripeObject(BaseModel):
    """The fields of `data.object` the loader stores in typed columns, held to what those columns take; the rest is
    kept as sent."""

    model_config = ConfigDict(defer_build=True, extra="allow", strict=True)

    id: StripeId | None = None
    payment_intent: StripeId | StripeReference | None = None
    amount: BigInt | None = None
    amount_total: BigInt | None = None
    amount_received: BigInt | None = None
    amount_refunded: BigInt | None = None
    metadata: StripeMetadata | None = None


class StripeEventData(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow", strict=True)

    object: StripeObject


class StripeEvent(BaseModel):
    """The envelope of a Stripe event; the rest of it is kept as Stripe sent it."""

    model_config = ConfigDict(defer_build=True, extra="allow", strict=True)

    id: Annotated[str, StringConstraints(pattern=r"^evt_[A-Za-z0-9_]+$", max_length=STRIPE_ID_CHARS)]
    object: Literal["event"]
    type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    created: Annotated[int, Field(ge=0, le=LATEST_EPOCH_SECONDS)]
    livemode: bool
    data: StripeEventData


class StripeReceived(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

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
    document = json.loads(body)
    # Stored whole as JSON: every string and number in it must be storable, not only the typed fields.
    refuse_unstorable(problem_fields(json_problems(document)))
    handled = event.type in HANDLED_TYPES
    land_accepted(
        stream=STREAM,
        action=ACTION,
        status=200,
        payload={"event": document},
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
        _refuse_future_timestamp(header, tolerance)
        return f"{SIGNING_KEY_VARIABLE}#{slot}"
    raise ApiError(
        400,
        "invalid_signature",
        "The Stripe signature does not verify.",
        [{"field": SIGNATURE_HEADER, "problem": problem}],
    )


def _refuse_future_timestamp(header: str, tolerance: int) -> None:
    """The stripe library refuses a signature older than the tolerance, not one from the future; a signed time
    further ahead than the tolerance is a replay prepared in advance or a signer's broken clock."""
    signed_at = next((value for key, _, value in (item.partition("=") for item in header.split(",")) if key == "t"), "")
    if signed_at.isdigit() and int(signed_at) > time.time() + tolerance:
        raise ApiError(
            400,
            "invalid_signature",
            "The Stripe signature does not verify.",
            [{"field": SIGNATURE_HEADER, "problem": f"timestamp is more than {tolerance} seconds in the future"}],
        )
