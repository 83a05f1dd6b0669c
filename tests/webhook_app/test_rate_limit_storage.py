"""The limiter's windows: fixed windows that reset when they expire, without a thread per request; rate settings;
the in-memory fallback while Redis is down."""

import logging
import threading
from pathlib import Path

import pytest

from tests.webhook_app.intake_support import app_headers, events_body, make_app
from webhook_app.rate_limits import MemoryWindows, Rate, RateLimiter, RedisWindows, parse_rate


def _threads_created() -> int:
    # Every new thread (a Timer included) takes the next number of the standard library's default thread names.
    return int(threading.Thread(target=lambda: None).name.split("-")[1].split()[0])


def test_requests_start_no_threads(landing_dir: Path) -> None:
    client = make_app(landing_dir, APP_EVENTS_RATE_LIMIT="1000 per minute").test_client()
    body = events_body({"type": "SAVE", "ruleId": "r"})
    client.post("/ingest/events", json=body, headers=app_headers())

    before = _threads_created()
    statuses = {client.post("/ingest/events", json=body, headers=app_headers()).status_code for _ in range(50)}

    assert statuses == {202}
    assert _threads_created() == before + 1  # the probe itself


def test_expired_window_starts_again() -> None:
    windows = MemoryWindows()
    assert [windows.hit("live", 60)[0] for _ in range(3)] == [1, 2, 3]
    # A window of no length has expired by the next call, which counts from one again.
    assert [windows.hit("expired", 0)[0] for _ in range(3)] == [1, 1, 1]


def test_sweep_frees_windows_nobody_calls_again() -> None:
    windows = MemoryWindows(sweep_seconds=0)
    windows.hit("silent", 0)
    windows.hit("live", 60)
    assert windows.hit("live", 60)[0] == 2
    assert "silent" not in windows
    assert "live" in windows


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("60 per minute", Rate(60, 60)),
        ("100/hour", Rate(100, 3600)),
        ("10 per 5 seconds", Rate(10, 5)),
        (" 2 PER DAY ", Rate(2, 86400)),
    ],
    ids=["per-minute", "slash-hour", "multiple-seconds", "case-and-spaces"],
)
def test_rate_settings_in_the_limits_notation(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["60", "per minute", "60 per fortnight", "10/minute;100/hour"], ids=str)
def test_unreadable_rate_setting_stops_the_app(landing_dir: Path, text: str) -> None:
    with pytest.raises(ValueError, match="not a rate limit"):
        make_app(landing_dir, APP_EVENTS_RATE_LIMIT=text)


def test_unreachable_redis_counts_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(shared=RedisWindows("redis://127.0.0.1:1/0"), key_prefix="test")
    with caplog.at_level(logging.WARNING, logger="webhook_app.rate_limits"):
        counts = [limiter.hit("app_events", "client", Rate(5, 60))[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    # Said once, not once a request.
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        "rate-limit storage unavailable, counting in memory"
    ]
