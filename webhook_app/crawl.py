"""`POST /ingest/crawl`: items partners and curators crawled, upserted by (sourceId, externalId) once loaded."""

from typing import Annotated, Any

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ingest_limits import json_problems
from webhook_app import audit
from webhook_app.app_common import APP_TOKEN, CAMEL_MODEL, Identifier, land_accepted, require_app_token
from webhook_app.openapi import documented
from webhook_app.validation import json_body, problem_fields, refuse_unstorable

STREAM = "crawl_items"
ACTION = "ingest.crawl"
MAX_ITEMS = 500
# What the validator below accepts, for the OpenAPI document (the validator words the error better than a regex).
HTTP_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]"

bp = Blueprint("crawl", __name__, url_prefix="/ingest")


class CrawlItem(BaseModel):
    model_config = CAMEL_MODEL

    external_id: Identifier
    url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)] = Field(
        description="An absolute http(s) URL.", json_schema_extra={"pattern": HTTP_URL_PATTERN}
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    summary: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    raw: dict[str, Any] | None = Field(default=None, description="The partner's record, kept as sent.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        scheme, separator, rest = value.partition("://")
        if not separator or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
            raise ValueError("must be an absolute http(s) URL")
        return value


class CrawlBatch(BaseModel):
    model_config = CAMEL_MODEL

    source_id: Identifier
    items: Annotated[list[CrawlItem], Field(min_length=1, max_length=MAX_ITEMS)]


class CrawlAccepted(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    accepted: int
    request_id: str


@bp.post("/crawl")
@documented(
    summary="Ingest crawled items",
    description=f"Up to {MAX_ITEMS} items per request. Rate limited per client IP (30 requests/minute by default).",
    body=CrawlBatch,
    responses={202: ("Durably landed", CrawlAccepted)},
    credential=APP_TOKEN,
    errors=(400, 401, 403, 413, 415, 422, 429, 503),
    tags=("app",),
)
def ingest_crawl():
    require_app_token()
    batch = json_body(CrawlBatch)
    # `raw` is free-form, so no field type holds it to the limits: a NaN would otherwise land as null.
    refuse_unstorable(
        problem_fields(
            [
                problem
                for position, item in enumerate(batch.items)
                if item.raw is not None
                for problem in json_problems(item.raw, f"items.{position}.raw")
            ]
        )
    )
    land_accepted(
        stream=STREAM,
        action=ACTION,
        status=202,
        payload=batch.model_dump(mode="json"),
        details={"source_id": batch.source_id, "items": len(batch.items)},
    )
    return jsonify(CrawlAccepted(accepted=len(batch.items), request_id=audit.request_id()).model_dump()), 202
