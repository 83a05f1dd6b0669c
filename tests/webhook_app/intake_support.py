"""Shared set-up of the Ingest Service intake tests: the real app on a private landing zone, and what it landed."""

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from webhook_app import create_app

APP_TOKEN = "app-token-for-tests"
IP_HASH_KEY = "ip-hash-key-for-tests"
STRIPE_SECRET = "whsec_secret_for_tests"
DATA_STREAMS = ("app_events", "stripe_events", "crawl_items", "app_rules")
REDIS_URL = "redis://127.0.0.1:6379/0"


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


def ip_hash(ip: str) -> str:
    """The keyed hash the app stores for a client IP, computed independently of the app's code."""
    return hmac.new(IP_HASH_KEY.encode(), ip.encode(), hashlib.sha256).hexdigest()


def events_body(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


def app_headers(**extra: str) -> dict[str, str]:
    return {"x-app-token": APP_TOKEN, **extra}


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of its own in the local Redis (shared with other runs), its keys deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at 127.0.0.1:6379 is not reachable: {error}")
    prefix = f"test-{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(f"*{prefix}*"))
        if keys:
            client.delete(*keys)
