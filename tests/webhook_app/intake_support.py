"""Shared set-up of the Ingest Service intake tests: the real app on a private landing zone, and what it landed."""

import json
from pathlib import Path
from typing import Any

from flask import Flask

from webhook_app import create_app

APP_TOKEN = "app-token-for-tests"
IP_HASH_KEY = "ip-hash-key-for-tests"
STRIPE_SECRET = "whsec_secret_for_tests"
DATA_STREAMS = ("app_events", "stripe_events", "crawl_items")
AUDIT_STREAM = "app_audit"


def make_app(landing_dir: Path, **config: Any) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "LANDING_DIR": str(landing_dir),
            "INGEST_APP_TOKEN": APP_TOKEN,
            "INGEST_IP_HASH_SECRET": IP_HASH_KEY,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            **config,
        }
    )


def landed(landing_dir: Path, stream: str) -> list[dict[str, Any]]:
    """The documents waiting in `stream`'s inbox, oldest first."""
    inbox = Path(landing_dir) / stream
    if not inbox.is_dir():
        return []
    return [json.loads(path.read_bytes()) for path in sorted(inbox.glob("*.json"))]


def landed_data(landing_dir: Path) -> dict[str, int]:
    """How many documents each data stream holds (the audit stream aside)."""
    return {stream: len(landed(landing_dir, stream)) for stream in DATA_STREAMS}


def events_body(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


def app_headers(**extra: str) -> dict[str, str]:
    return {"x-app-token": APP_TOKEN, **extra}
