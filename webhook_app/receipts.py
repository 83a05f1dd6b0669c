"""`GET /ingest/receipts/<request_id>`: what became of an accepted request, read from the landing zone alone.

The state is where the request's file is (docs/landing.md, "Receipts", has the file contract the platform keeps):

- `<stream>/<ns>-<id>.json`, the inbox: landed, not loaded yet;
- `quarantine/<stream>/<ns>-<id>.json` with its `.reason`: quarantined;
- `<stream>/loaded/<day>/<id>.receipt.json` next to the archived file: loaded (the platform writes the receipt
  before it moves the file, after the rows' commit); in a compacted day, the row of `<day>.receipts.sqlite`.

A request id is a UUIDv7 (`audit.new_request_id`): its milliseconds name the archive day, so a lookup opens a receipt
by name in at most two day folders and lists only the inbox and the quarantine, which hold what is still owed a
load. An id without a time (one from an earlier release) is looked for in every uncompacted day folder.

A credential sees the streams of its family; an id of another family's stream, or none at all, is the same 404.
"""

import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from webhook_app.app_common import APP_CREDENTIAL_HEADER, APP_TOKEN
from webhook_app.app_events import STREAM as APP_EVENTS_STREAM
from webhook_app.auth import configured_secrets, matches_any
from webhook_app.bigtop import BIGTOP_BEARER
from webhook_app.bigtop import STREAM as BIGTOP_STREAM
from webhook_app.crawl import STREAM as CRAWL_STREAM
from webhook_app.cron import CRON_HEADER, CRON_SECRET
from webhook_app.cron import SECRET_ENV as CRON_SECRET_ENV
from webhook_app.errors import ApiError
from webhook_app.openapi import documented
from webhook_app.rules import STREAM as RULES_STREAM
from webhook_app.scheduler import SCHEDULER_BEARER
from webhook_app.scheduler import TOKEN_ENV as SCHEDULER_TOKEN_ENV
from webhook_app.stripe_webhook import STREAM as STRIPE_STREAM

LOADED_DIR = "loaded"
QUARANTINE_DIR = "quarantine"
RECEIPT_SUFFIX = ".receipt.json"
COMPACTED_INDEX_SUFFIX = ".receipts.sqlite"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RECEIVED_AT = re.compile(rb'"received_at"\s*:\s*"([^"]{1,64})"')
ENVELOPE_BYTES = 1024
# A request's file is named when it is renamed into place, after its id was drawn: at most a request's lifetime later.
LONGEST_REQUEST = timedelta(hours=1)

# (header, how the token is read, config key of its secrets) → the streams it sees.
AUTHORIZATION = "Authorization"
FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (AUTHORIZATION, "BIGTOP_INGEST_TOKEN", (BIGTOP_STREAM,)),
    (APP_CREDENTIAL_HEADER, "INGEST_APP_TOKEN", (APP_EVENTS_STREAM, CRAWL_STREAM, RULES_STREAM)),
    (AUTHORIZATION, SCHEDULER_TOKEN_ENV, (STRIPE_STREAM,)),
    (CRON_HEADER, CRON_SECRET_ENV, (STRIPE_STREAM,)),
)

bp = Blueprint("receipts", __name__, url_prefix="/ingest/receipts")


class Receipt(BaseModel):
    model_config = ConfigDict(defer_build=True)

    request_id: str
    stream: str
    state: Literal["landed", "loaded", "quarantined"]
    received_at: str | None = Field(description="When the request arrived (ISO 8601), as its landed file says.")
    loaded_at: str | None = Field(default=None, description="When its rows were committed (state `loaded`).")
    run_id: str | None = Field(default=None, description="The Dagster run that loaded it (state `loaded`).")
    rows: int | None = Field(default=None, description="Rows its file loaded (state `loaded`).")
    reason: str | None = Field(default=None, description="Why it was quarantined (state `quarantined`).")


@bp.get("/<request_id>")
@documented(
    summary="What became of an accepted request: landed, loaded or quarantined",
    description="Authorised by the credential family that accepted the request: the Big Top bearer sees "
    "`bigtop_events`; `x-app-token` sees `app_events`, `crawl_items` and `app_rules`; Stripe receipts need the "
    "scheduler bearer (`RTARF_API_TOKEN`) or `x-cron-secret`. An unknown id and another family's id are the same 404. "
    "Fields without a value are left out.",
    responses={200: ("The receipt", Receipt)},
    credential=(BIGTOP_BEARER, APP_TOKEN, SCHEDULER_BEARER, CRON_SECRET),
    errors=(401, 404, 503),
    tags=("receipts",),
)
def get_receipt(request_id: str):
    streams = _authorised_streams()
    receipt = (
        _find(Path(current_app.config["LANDING_DIR"]), request_id, streams) if _REQUEST_ID.match(request_id) else None
    )
    if receipt is None:
        raise ApiError(404, "not_found", "No request with this id is known to this credential.")
    return jsonify(receipt.model_dump(exclude_none=True))


def _authorised_streams() -> list[str]:
    """The streams the request's credentials see; 401 when none matches, 503 when no family is configured."""
    scheme, _, bearer = request.headers.get(AUTHORIZATION, "").partition(" ")
    presented = {
        AUTHORIZATION: bearer.strip() if scheme.lower() == "bearer" else "",
        APP_CREDENTIAL_HEADER: request.headers.get(APP_CREDENTIAL_HEADER, "").strip(),
        CRON_HEADER: request.headers.get(CRON_HEADER, "").strip(),
    }
    configured = False
    streams: list[str] = []
    for header, config_key, family_streams in FAMILIES:
        secrets = configured_secrets(config_key)
        configured = configured or bool(secrets)
        if secrets and presented[header] and matches_any(presented[header], secrets):
            streams += [stream for stream in family_streams if stream not in streams]
    if not configured:
        raise ApiError(503, "receipts_disabled", "This endpoint is disabled: no credential is set on the server.")
    if not streams:
        detail = "The credential is not valid." if any(presented.values()) else "Missing credential."
        raise ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="ingest"'})
    return streams


def _find(root: Path, request_id: str, streams: list[str]) -> Receipt | None:
    days = _days_of(request_id)
    for stream in streams:
        receipt = (
            _in_inbox(root, stream, request_id)
            or _in_quarantine(root, stream, request_id)
            or _in_archive(root, stream, request_id, days)
        )
        if receipt is not None:
            return receipt
    return None


def _days_of(request_id: str) -> list[str] | None:
    """The archive days a UUIDv7's file can be in; None when the id carries no time."""
    if not re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{19}", request_id):
        return None
    drawn = datetime.fromtimestamp(int(request_id[:12], 16) / 1000, tz=UTC)
    return sorted({drawn.strftime("%Y-%m-%d"), (drawn + LONGEST_REQUEST).strftime("%Y-%m-%d")})


def _named(folder: Path, request_id: str) -> str | None:
    suffix = f"-{request_id}.json"
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(suffix) and len(entry.name) == 20 + len(suffix):
                    return entry.name
    except FileNotFoundError:
        return None
    return None


def _in_inbox(root: Path, stream: str, request_id: str) -> Receipt | None:
    name = _named(root / stream, request_id)
    if name is None:
        return None
    return Receipt(
        request_id=request_id, stream=stream, state="landed", received_at=_received_at(root / stream / name, name)
    )


def _in_quarantine(root: Path, stream: str, request_id: str) -> Receipt | None:
    folder = root / QUARANTINE_DIR / stream
    name = _named(folder, request_id)
    if name is None:
        return None
    try:
        reason = (folder / f"{name}.reason").read_text().strip() or None
    except FileNotFoundError:
        reason = None
    return Receipt(
        request_id=request_id,
        stream=stream,
        state="quarantined",
        received_at=_received_at(folder / name, name),
        reason=reason,
    )


def _in_archive(root: Path, stream: str, request_id: str, days: list[str] | None) -> Receipt | None:
    archive = root / stream / LOADED_DIR
    if days is None:
        try:
            days = sorted(entry.name for entry in os.scandir(archive) if entry.is_dir())
        except FileNotFoundError:
            return None
    for day in days:
        receipt = _receipt_file(archive / day, stream, request_id)
        if receipt is None:
            receipt = _compacted_receipt(archive / f"{day}{COMPACTED_INDEX_SUFFIX}", stream, request_id)
        if receipt is not None:
            return receipt
    return None


def _receipt_file(folder: Path, stream: str, request_id: str) -> Receipt | None:
    try:
        document = json.loads((folder / f"{request_id}{RECEIPT_SUFFIX}").read_bytes())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if not isinstance(document, dict) or not (folder / str(document.get("name", ""))).is_file():
        return None  # the file moved on (compacted, or taken out by hand): its receipt alone is no evidence
    return _loaded(document, stream, request_id)


def _compacted_receipt(index: Path, stream: str, request_id: str) -> Receipt | None:
    if not index.is_file():
        return None
    connection = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)
    try:
        row = connection.execute(
            "SELECT received_at, loaded_at, run_id, rows FROM receipts WHERE request_id = ?", (request_id,)
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    if row is None:
        return None
    return _loaded(dict(zip(("received_at", "loaded_at", "run_id", "rows"), row, strict=True)), stream, request_id)


def _loaded(document: dict, stream: str, request_id: str) -> Receipt:
    return Receipt(
        request_id=request_id,
        stream=stream,
        state="loaded",
        received_at=document.get("received_at"),
        loaded_at=document.get("loaded_at"),
        run_id=document.get("run_id"),
        rows=document.get("rows"),
    )


def _received_at(path: Path, name: str) -> str | None:
    try:
        with path.open("rb") as file:
            match = _RECEIVED_AT.search(file.read(ENVELOPE_BYTES))
    except FileNotFoundError:
        match = None  # loaded or quarantined between the listing and the read
    if match:
        return match.group(1).decode()
    return datetime.fromtimestamp(int(name[:20]) / 1e9, tz=UTC).isoformat()
