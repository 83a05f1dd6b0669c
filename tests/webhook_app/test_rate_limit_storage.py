"""The limiter's default in-memory storage: fixed windows that reset when they expire, without a thread per request."""

import threading
from pathlib import Path

from tests.webhook_app.intake_support import app_headers, events_body, make_app
from webhook_app.rate_limits import SweptMemoryStorage


def _threads_created() -> int:
    # Every new thread (a Timer included) takes the next number of the standard library's default thread names.
    return int(threading.Thread(target=lambda: None).name.split("-")[1].split()[0])


def test_requests_start_no_threads(landing_dir: Path) -> None:
    client = make_app(landing_dir, APP_EVENTS_RATE_LIMIT="1000 per minute").test_client()
    assert isinstance(client.application.extensions["rate_limiter"].storage, SweptMemoryStorage)
    body = events_body({"type": "SAVE", "ruleId": "r"})
    client.post("/ingest/events", json=body, headers=app_headers())

    before = _threads_created()
    statuses = {client.post("/ingest/events", json=body, headers=app_headers()).status_code for _ in range(50)}

    assert statuses == {202}
    assert _threads_created() == before + 1  # the probe itself


def test_expired_window_starts_again() -> None:
    storage = SweptMemoryStorage()
    assert [storage.incr("live", 60) for _ in range(3)] == [1, 2, 3]
    # A window of no length has expired by the next call, which counts from one again.
    assert [storage.incr("expired", 0) for _ in range(3)] == [1, 1, 1]


def test_sweep_frees_windows_nobody_calls_again() -> None:
    storage = SweptMemoryStorage(sweep_seconds=0)
    storage.incr("silent", 0)
    storage.incr("live", 60)
    storage.incr("live", 60)
    assert "silent" not in storage.expirations
    assert "silent" not in storage.storage
    assert storage.get("live") == 2
