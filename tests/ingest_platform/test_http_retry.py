from datetime import UTC, datetime

import httpx
import pytest

from ingest_platform.http_retry import backoff_seconds, is_retryable_status, retry_after_seconds

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("7", 7.0, id="delta-seconds"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("Sun, 01 Mar 2026 12:00:30 GMT", 30.0, id="http-date"),
        pytest.param("Sun, 01 Mar 2026 11:00:00 GMT", 0.0, id="date-in-the-past"),
        pytest.param("-3", 0.0, id="negative"),
        pytest.param("soon", None, id="unreadable"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, seconds: float | None) -> None:
    response = httpx.Response(429, headers={} if header is None else {"Retry-After": header})
    assert retry_after_seconds(response, now=NOW) == seconds


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(408, True), (429, True), (500, True), (503, True), (400, False), (401, False), (404, False), (422, False)],
)
def test_only_later_statuses_are_retried(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


def test_backoff_grows_within_the_cap_and_retry_after_wins() -> None:
    assert all(0 <= backoff_seconds(attempt, base=1, cap=8) <= min(8, 2 ** (attempt - 1)) for attempt in range(1, 8))
    assert backoff_seconds(3, base=1, cap=8, retry_after=5) == 5
    assert backoff_seconds(3, base=1, cap=8, retry_after=50) == 8
