"""What the Ingest Service endpoints (seed 003) share: the app token, identifier fields, landing with the audit."""

from typing import Annotated, Any

from flask import current_app
from pydantic import ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel
from pydantic_core import to_json

from ingest_limits import IDENTIFIER_CHARS
from webhook_app import audit
from webhook_app.auth import require_header_token
from webhook_app.landing import RawJson
from webhook_app.openapi import Credential

APP_CREDENTIAL_HEADER = "x-app-token"
APP_TOKEN = Credential("appToken", {"type": "apiKey", "in": "header", "name": APP_CREDENTIAL_HEADER})

# The app speaks camelCase JSON; problems are reported under the names the client sent.
CAMEL_MODEL = ConfigDict(defer_build=True, extra="forbid", strict=True, alias_generator=to_camel)

# Ids of the app's database (cuids) and partners' ids: non-empty, printable, bounded as the warehouse's keys are.
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=IDENTIFIER_CHARS, pattern=r"^\S+$")
]


def require_app_token() -> None:
    audit.set_actor(require_header_token(APP_CREDENTIAL_HEADER, "INGEST_APP_TOKEN", disabled_error="ingest_disabled"))


def land_accepted(*, stream: str, action: str, status: int, payload: dict[str, Any], details: dict[str, Any]) -> None:
    """Land `payload` with its audit record; returns once both are durable."""
    # pydantic-core's encoder: a third of json.dumps's time for a 500-event batch, the same JSON.
    document = to_json({**payload, "audit": audit.accepted_record(action, status, details)})
    current_app.extensions["landing"].land(
        stream=stream, request_id=audit.request_id(), received_at=audit.received_at(), payload=RawJson(document)
    )
