"""Write landing files the way the webhook app does, for tests of the Dagster side."""

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest_platform.landing import Loaded
from webhook_app.audit import new_request_id


def land(root: Path, stream: str, payload: Any, *, at_ns: int | None = None, raw: bytes | None = None) -> str:
    """Put one landing document (or `raw` bytes) into `stream`'s inbox and return its file name."""
    ns = at_ns if at_ns is not None else time.time_ns() - 10_000_000_000
    request_id = new_request_id(ns)
    name = f"{ns:020d}-{request_id}.json"
    inbox = root / stream
    inbox.mkdir(parents=True, exist_ok=True)
    document = {
        "stream": stream,
        "request_id": request_id,
        "received_at": datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(),
        "payload": payload,
    }
    (inbox / name).write_bytes(raw if raw is not None else json.dumps(document).encode())
    return name


def loaded(*names: str, rows: int = 0, run_id: str = "test-run") -> list[Loaded]:
    """What a run's commit of `names` tells `LandingZone.archive`."""
    return [Loaded(name, rows, run_id, datetime.now(UTC)) for name in names]


def bigtop_batch(*events: dict, run_id: str = "run-1") -> dict:
    return {"source_id": 5, "run_id": run_id, "sent_at": "2026-03-01T12:00:00+00:00", "events": list(events)}


def bigtop_event(external_id: str, title: str = "Trivia night", start: str = "2026-03-05T23:00:00+00:00") -> dict:
    return {"external_id": external_id, "title": title, "start_utc": start}


def audit_record(action: str = "stripe.webhook") -> dict:
    return {
        "audit_id": uuid.uuid4().hex,
        "at": "2026-03-01T12:00:00+00:00",
        "actor": "stripe",
        "action": action,
        "outcome": "accepted",
        "status": 200,
    }


def stripe_succeeded(intent_id: str, amount: Any, *, created: int = 1_772_366_400, **meta: Any) -> dict:
    """The landed payload of a `payment_intent.succeeded` delivery, as the webhook app writes it."""
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "metadata": meta,
    }
    event = {
        "id": f"evt_{intent_id}",
        "object": "event",
        "created": created,
        "data": {"object": intent},
        "livemode": False,
        "type": "payment_intent.succeeded",
    }
    return {"event": event, "audit": audit_record()}
