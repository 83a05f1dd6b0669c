"""When to try an HTTP request again, and how long to wait first: shared by every outbound client."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

# httpx is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import httpx

# Statuses that say "later", not "never": request timeout, too many requests, and every server error.
RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def is_retryable_error(error: Exception) -> bool:
    """Timeouts and failed connections are worth another try; a malformed request or URL is not."""
    import httpx

    return isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def retry_after_seconds(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The server's `Retry-After` (seconds or an HTTP date) in seconds, or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        # RFC 9110 says whole seconds; a fractional value is read as meant rather than ignored.
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Wait before retry number `attempt` (1-based): the server's Retry-After when given, else exponential
    backoff with full jitter, so clients that failed together do not come back together."""
    if retry_after is not None:
        return min(retry_after, cap)
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not a secret
