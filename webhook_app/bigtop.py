"""Big Top's production intake (seed 000): the local runner pushes batches of up to 500 events."""

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from flask import Blueprint, current_app, jsonify
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from webhook_app.auth import require_bearer
from webhook_app.openapi import Credential, documented
from webhook_app.validation import json_body

log = logging.getLogger(__name__)

STREAM = "bigtop_events"
MAX_EVENTS = 500

bp = Blueprint("bigtop", __name__, url_prefix="/api/ingest/bigtop")
BIGTOP_BEARER = Credential("bigtopBearer", {"type": "http", "scheme": "bearer"})

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class PushedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    external_id: Annotated[NonEmpty, StringConstraints(max_length=512)] = Field(description="The iCal UID.")
    title: Annotated[NonEmpty, StringConstraints(max_length=1000)]
    start_utc: AwareDatetime
    end_utc: AwareDatetime | None = None
    description: Annotated[str, StringConstraints(max_length=50_000)] | None = None
    location: Annotated[str, StringConstraints(max_length=1000)] | None = None
    external_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    categories: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=100)] | None = None

    @field_validator("external_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> "PushedEvent":
        if self.end_utc is not None and self.end_utc < self.start_utc:
            raise ValueError("end_utc is before start_utc")
        return self


class PushBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source_id: Literal[5] = Field(default=5, description="Big Top's source id; no other source is accepted here.")
    run_id: Annotated[NonEmpty, StringConstraints(max_length=200)]
    sent_at: AwareDatetime
    events: Annotated[list[PushedEvent], Field(min_length=1, max_length=MAX_EVENTS)]


class PushAccepted(BaseModel):
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
    batch = json_body(PushBatch)
    request_id = uuid.uuid4().hex
    current_app.extensions["landing"].land(stream=STREAM, request_id=request_id, received_at=received_at, payload=batch)
    log.info("landed bigtop batch run_id=%s events=%d request_id=%s", batch.run_id, len(batch.events), request_id)
    return jsonify({"accepted": len(batch.events), "request_id": request_id}), 202
