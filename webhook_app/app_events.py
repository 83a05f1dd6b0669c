"""`POST /ingest/events`: the app's analytics events (seed 003), deduplicated before they land.

An event whose idempotency key was seen, or a VIEW of the same rule from the same client IP within the dedup
window (10 minutes), is accepted but not stored. Both decisions are claims in the shared claim store, so they
hold across workers and restarts; the warehouse loader enforces both again as the last line.
"""

import logging
from datetime import datetime, timedelta
from typing import Annotated, Literal

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ingest_limits import IDEMPOTENCY_KEY_CHARS
from webhook_app import audit, metrics
from webhook_app.app_common import APP_TOKEN, CAMEL_MODEL, Identifier, land_accepted, require_app_token
from webhook_app.claims import ClaimStore, ClaimStoreUnavailable, claimed_keys
from webhook_app.client_ip import client_ip_hash, ip_hash_secret
from webhook_app.errors import ApiError
from webhook_app.openapi import documented
from webhook_app.validation import ZonedTimestamp, json_body

log = logging.getLogger(__name__)

STREAM = "app_events"
ACTION = "ingest.events"
MAX_EVENTS = 500
EVENT_TYPES = ("VIEW", "COPY", "SAVE", "FORK", "VOTE")
# Clocks of the app's servers drift; an event further in the future than this is a bug, not skew.
MAX_FUTURE_SKEW = timedelta(minutes=5)

bp = Blueprint("app_events", __name__, url_prefix="/ingest")


class AppEvent(BaseModel):
    model_config = CAMEL_MODEL

    type: Literal["VIEW", "COPY", "SAVE", "FORK", "VOTE"]
    rule_id: Identifier
    user_id: Identifier | None = Field(default=None, description="Absent for anonymous visitors.")
    ts: ZonedTimestamp | None = Field(default=None, description="When it happened; defaults to the receive time.")
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_CHARS)] | None = Field(
        default=None, description="An event repeating a key already seen is accepted and not stored again."
    )


class EventBatch(BaseModel):
    model_config = CAMEL_MODEL

    events: Annotated[list[AppEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class EventsAccepted(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    accepted: int = Field(description="Events in the request.")
    stored: int = Field(description="Events landed for loading.")
    duplicates: int = Field(description="Events dropped as repeated idempotency keys or VIEWs within the window.")
    request_id: str


@bp.post("/events")
@documented(
    summary="Ingest app events",
    description=f"Up to {MAX_EVENTS} events per request; types {', '.join(EVENT_TYPES)}. Rate limited per client "
    "IP (60 requests/minute by default).",
    body=EventBatch,
    responses={202: ("Durably landed", EventsAccepted)},
    credential=APP_TOKEN,
    errors=(400, 401, 403, 413, 415, 422, 429, 503),
    tags=("app",),
)
def ingest_events():
    require_app_token()
    ip_hash_secret(required=True)  # 503 while the key is unset: no event lands without its IP hash
    batch = json_body(EventBatch)
    received_at = audit.received_at()
    _refuse_future_events(batch.events, received_at)
    ip_hash = client_ip_hash()
    store = current_app.extensions["claims"]

    try:
        kept, claimed = _dedupe(batch.events, ip_hash, store)
    except ClaimStoreUnavailable as error:
        metrics.claim_store_error("claim")
        log.error("claim store unavailable: %s", error)
        raise ApiError(
            503, "dedup_unavailable", "The dedup store is unavailable; retry later.", headers={"Retry-After": "5"}
        ) from None
    duplicates = len(batch.events) - len(kept)
    events = batch.model_dump(mode="json")["events"]
    stored = [events[position] for position in kept]
    received = received_at.isoformat()
    for event in stored:
        if event["ts"] is None:
            event["ts"] = received
    try:
        land_accepted(
            stream=STREAM,
            action=ACTION,
            status=202,
            payload={"ip_hash": ip_hash, "events": stored},
            details={"events": len(batch.events), "stored": len(kept), "duplicates": duplicates},
        )
    except BaseException:
        # Not stored, so not seen: the client's retry must not be dropped as a duplicate.
        try:
            store.release(claimed)
        except ClaimStoreUnavailable:
            metrics.claim_store_error("release")
            log.exception("could not give back the claims of request %s", audit.request_id())
        raise
    return jsonify(
        EventsAccepted(
            accepted=len(batch.events), stored=len(kept), duplicates=duplicates, request_id=audit.request_id()
        ).model_dump()
    ), 202


def _refuse_future_events(events: list[AppEvent], received_at: datetime) -> None:
    latest = received_at + MAX_FUTURE_SKEW
    fields = [
        {
            "field": f"events.{position}.ts",
            "problem": f"is more than {int(MAX_FUTURE_SKEW.total_seconds())} seconds in the future",
        }
        for position, event in enumerate(events)
        if event.ts is not None and event.ts > latest
    ]
    if fields:
        raise ApiError(422, "validation_failed", "The body does not match the schema.", fields)


def _dedupe(events: list[AppEvent], ip_hash: str, store: ClaimStore) -> tuple[list[int], list[str]]:
    """The positions of the events to store, and the claims taken (to give back if landing fails).

    One call to the store: each event's idempotency key in the first stage, its VIEW window in the second, so a
    VIEW window is only taken by an event that passed its key and a repeated event never holds a window another
    VIEW of the batch needed.
    """
    config = current_app.config
    key_seconds = float(config["APP_IDEMPOTENCY_TTL_SECONDS"])
    view_seconds = float(config["APP_VIEW_DEDUP_SECONDS"])
    rows = [
        (
            (f"idem:{event.idempotency_key}", key_seconds) if event.idempotency_key else None,
            (f"view:{ip_hash}:{event.rule_id}", view_seconds) if event.type == "VIEW" else None,
        )
        for event in events
    ]
    passed = store.claim_in_stages(rows)
    kept = [position for position, count in enumerate(passed) if count == len(rows[position])]
    return kept, claimed_keys(rows, passed)
