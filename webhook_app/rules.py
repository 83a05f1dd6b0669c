"""`POST /ingest/rules`: the app's rules (author, title, tags, model), stored by ruleId once loaded, newest wins."""

from typing import Annotated

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from webhook_app import audit
from webhook_app.app_common import APP_TOKEN, CAMEL_MODEL, Identifier, land_accepted, require_app_token
from webhook_app.openapi import documented
from webhook_app.validation import ZonedTimestamp, json_body

STREAM = "app_rules"
ACTION = "ingest.rules"
MAX_ITEMS = 500
MAX_TAGS = 50

bp = Blueprint("rules", __name__, url_prefix="/ingest")

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Rule(BaseModel):
    model_config = CAMEL_MODEL

    rule_id: Identifier
    author_id: Identifier
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    summary: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] | None = Field(
        default=None, description="The rule's tags; repeats collapse. Omitted or null: the rule has no tags."
    )
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=191)] | None = None
    updated_at: ZonedTimestamp = Field(
        description="When the app last changed the rule, with a time zone; the newest version of a rule wins."
    )


class RuleBatch(BaseModel):
    model_config = CAMEL_MODEL

    items: Annotated[list[Rule], Field(min_length=1, max_length=MAX_ITEMS)]


class RulesAccepted(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    accepted: int
    request_id: str


@bp.post("/rules")
@documented(
    summary="Ingest the app's rules (the rules dimension of the rollups and the search index)",
    description=f"Up to {MAX_ITEMS} rules per request. A rule older (by updatedAt) than the stored version is "
    "skipped when loaded. Rate limited per client IP (30 requests/minute by default).",
    body=RuleBatch,
    responses={202: ("Durably landed", RulesAccepted)},
    credential=APP_TOKEN,
    errors=(400, 401, 403, 413, 415, 422, 429, 503),
    tags=("app",),
)
def ingest_rules():
    require_app_token()
    batch = json_body(RuleBatch)
    land_accepted(
        stream=STREAM,
        action=ACTION,
        status=202,
        payload=batch.model_dump(mode="json"),
        details={"items": len(batch.items)},
    )
    return jsonify(RulesAccepted(accepted=len(batch.items), request_id=audit.request_id()).model_dump()), 202
