"""Big Top's production intake (seed 000): the local runner pushes batches of up to 500 events."""

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal, NotRequired

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, with_config
from typing_extensions import TypedDict

from ingest_limits import BIGTOP_EXTERNAL_ID_CHARS
from webhook_app import audit
from webhook_app.auth import require_bearer
from webhook_app.errors import ApiError
from webhook_app.landing import RawJson
from webhook_app.openapi import Credential, documented
from webhook_app.validation import ZonedTimestamp, json_request_bytes, parse_json

log = logging.getLogger(__name__)

STREAM = "bigtop_events"
MAX_EVENTS = 500

bp = Blueprint("bigtop", __name__, url_prefix="/api/ingest/bigtop")
BIGTOP_BEARER = Credential("bigtopBearer", {"type": "http", "scheme": "bearer"})

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Categories = Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=100)]
HttpUrlText = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^(?i:https?)://"), Field(description="An http(s) URL.")
]


# A TypedDict, not a model: a batch is 500 of these and the handler only needs them checked, not as objects. A
# model instance and Python validators per event cost 0.5 ms a batch, most of what parsing the JSON costs.
@with_config(ConfigDict(extra="forbid", strict=True))
class PushedEvent(TypedDict):
    external_id: Annotated[
        NonEmpty, StringConstraints(max_length=BIGTOP_EXTERNAL_ID_CHARS), Field(description="The iCal UID.")
    ]
    title: Annotated[NonEmpty, StringConstraints(max_length=1000)]
    start_utc: ZonedTimestamp
    end_utc: NotRequired[ZonedTimestamp | None]
    description: NotRequired[Annotated[str, StringConstraints(max_length=50_000)] | None]
    location: NotRequired[Annotated[str, StringConstraints(max_length=1000)] | None]
    external_url: NotRequired[HttpUrlText | None]
    categories: NotRequired[Categories | None]


def ends_before_start(events: list[PushedEvent]) -> list[dict[str, str]]:
    """A 422 field problem for each event whose end_utc is before its start_utc.

    Checked after validation in one loop: a validator per event would cost a tenth of the validation.
    """
    return [
        {"field": f"events.{position}.end_utc", "problem": "end_utc is before start_utc"}
        for position, event in enumerate(events)
        if event.get("end_utc") is not None and event["end_utc"] < event["start_utc"]
    ]


class PushBatch(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)

    source_id: Literal[5] = Field(default=5, description="Big Top's source id; no other source is accepted here.")
    run_id: Annotated[NonEmpty, StringConstraints(max_length=200)]
    sent_at: ZonedTimestamp
    events: Annotated[list[PushedEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class PushAccepted(BaseModel):
    model_config = ConfigDict(defer_build=True)

    accepted: int
    request_id: str


@bp.post("/events")
@documented(
    summary="Push a batch of Big Top events",
    body=PushBatch,
    responses={202: ("Durably landed", PushAccepted)},
    credential=BIGTOP_BEARER,
    errors=(400, 401, 403, 413, 415, 422, 503),
    tags=("bigtop",),
)
def push_events():
    require_bearer("BIGTOP_INGEST_TOKEN", disabled_error="ingest_disabled")
    received_at = datetime.now(UTC)
    body = json_request_bytes()
    run_id, accepted = _validate(body)
    request_id = audit.request_id()
    # The client's own bytes, once they validate: no re-serialisation, and the raw layer keeps exactly what was sent.
    # The loader applies the model's normalisation (stripped ids and titles, source_id's default) when it reads them.
    current_app.extensions["landing"].land(
        stream=STREAM, request_id=request_id, received_at=received_at, payload=RawJson(body)
    )
    log.info("landed bigtop batch run_id=%s events=%d", run_id, accepted)
    return jsonify({"accepted": accepted, "request_id": request_id}), 202


def _validate(body: bytes) -> tuple[str, int]:
    """The batch's run_id and size, or a 4xx. The parsed batch is not kept: it would sit in memory through the
    fsyncs while the worker's other threads parse theirs."""
    batch = parse_json(PushBatch, body)
    if problems := ends_before_start(batch.events):
        raise ApiError(422, "validation_failed", "The body does not match the schema.", problems)
    return batch.run_id, len(batch.events)
