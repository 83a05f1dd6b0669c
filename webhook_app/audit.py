"""The audit trail of the intake routes, carried to the warehouse through the landing zone.

This app never writes the warehouse. An accepted request's audit record travels inside the document it lands (one
file, one fsync: the record cannot exist without the data nor the data without the record). A rejected request
lands nothing in its stream; its record lands alone in the `app_audit` stream. Both load into `audit_log`.
Records name the credential slot that matched and the keyed IP hash, never a secret, an IP or the payload.
"""

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, g, request

from webhook_app.client_ip import client_ip_hash
from webhook_app.landing import LandingUnavailable

log = logging.getLogger(__name__)

AUDIT_STREAM = "app_audit"
ANONYMOUS = "anonymous"


def request_id() -> str:
    """This request's id: the landed file's name, the audit record's key, the id the client sees."""
    if "request_id" not in g:
        g.request_id = new_request_id()
    return g.request_id


def new_request_id(at_ns: int | None = None) -> str:
    """A UUIDv7 in hex (RFC 9562): 48 bits of Unix milliseconds (now, or `at_ns`), then 74 random bits.

    The time tells `GET /ingest/receipts/<id>` which archive day to look in, without listing any.
    """
    value = ((time.time_ns() if at_ns is None else at_ns) // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC's variant
    return f"{value:032x}"


def received_at() -> datetime:
    if "received_at" not in g:
        g.received_at = datetime.now(UTC)
    return g.received_at


def set_actor(actor: str) -> None:
    g.audit_actor = actor


def accepted_record(action: str, status: int, details: dict[str, Any]) -> dict[str, Any]:
    """The record of an accepted request, to embed in the document it lands."""
    return _record(action, "accepted", status, None, details)


def init_app(app: Flask, actions: dict[str, str]) -> None:
    """Land the record of every rejection (4xx/5xx) by the endpoints in `actions` (endpoint → action name).

    Their 2xx responses carry theirs in the landed document already.
    """

    @app.before_request
    def _stamp_arrival() -> None:
        if request.endpoint in actions:
            received_at()

    @app.after_request
    def _audit_rejection(response: Response) -> Response:
        action = actions.get(request.endpoint or "")
        # 429s are the limiter shedding load: one file each would let a flood write as fast as it sends.
        if action is None or response.status_code < 400 or response.status_code == 429:
            return response
        body = response.get_json(silent=True) if response.is_json else None
        error = body.get("error") if isinstance(body, dict) else None
        record = _record(action, "rejected", response.status_code, error, {})
        try:
            current_app.extensions["landing"].land(
                stream=AUDIT_STREAM, request_id=request_id(), received_at=received_at(), payload={"audit": record}
            )
        except LandingUnavailable as error:
            # The client's answer stands (a 4xx, or the 503 of a full disk); a lost rejection record must not turn
            # it into a 500.
            log.error("could not land the audit record of request %s: %s", request_id(), error)
        return response


def _record(action: str, outcome: str, status: int, error: str | None, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "audit_id": request_id(),
        "at": received_at().isoformat(),
        "actor": g.get("audit_actor", ANONYMOUS),
        "action": action,
        "outcome": outcome,
        "status": status,
        "error": error,
        "ip_hash": client_ip_hash(),
        "request_id": request_id(),
        "details": details,
    }
