"""Per-client-IP rate limits, fixed windows: in memory by default, shared through Redis for several instances.

`WEBHOOK_RATELIMIT_STORAGE_URI=redis://host:6379/0` makes every worker and replica count together; while that
storage fails, requests are counted in the process's memory rather than refused.

The app's own limiter, not Flask-Limiter: that extension and the `limits` package behind it import asyncio, wrapt,
`deprecated` and a module for every storage backend at start-up (a quarter of the app's cold start over
`import flask`), and resolve each request's limits through several layers of per-request work.
"""

import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from flask import Blueprint, Flask, Response, current_app, g, request

from webhook_app.client_ip import client_ip, client_ip_hash
from webhook_app.errors import ApiError

log = logging.getLogger(__name__)

DEFAULTS = {
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "ingest",
}
# Expired windows of clients that stopped calling are dropped this often (a window a client calls again is reset on
# that call, whatever the sweep).
SWEEP_SECONDS = 10.0
# The key layout Flask-Limiter's Redis storage used, so a rolling upgrade keeps counting the same windows' clients.
REDIS_KEY = "LIMITS:LIMITER/{prefix}/{scope}/{client}/{amount}/{seconds}"

_GRANULARITY_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400, "year": 365 * 86400}
# The `limits` notation the settings have always used: "60 per minute", "100/hour", "10 per 5 seconds".
_RATE = re.compile(r"^\s*(\d+)\s*(?:per\s+|/\s*)(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE)
# INCR and the window's expiry in one atomic round trip; the remaining time tells the window's end.
_HIT_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount} per {self.seconds} seconds"


@cache
def parse_rate(text: str) -> Rate:
    """`60 per minute` → Rate(60, 60); a ValueError names a setting the limiter cannot read."""
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"not a rate limit: {text!r} (expected e.g. '60 per minute' or '100/hour')")
    amount, multiple, granularity = match.groups()
    return Rate(int(amount), int(multiple or 1) * _GRANULARITY_SECONDS[granularity.lower()])


class MemoryWindows:
    """Fixed windows counted in this process. No timer: a call resets its own expired window, and a sweep every
    `sweep_seconds` frees the windows nobody calls again."""

    def __init__(self, *, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._sweep_seconds = sweep_seconds
        self._next_sweep = time.time() + sweep_seconds

    def hit(self, key: str, seconds: int) -> tuple[int, float]:
        """This call's count in `key`'s window, and when the window ends (epoch seconds)."""
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._windows = {key: window for key, window in self._windows.items() if window[1] > now}
                self._next_sweep = now + self._sweep_seconds
            count, ends = self._windows.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + seconds
            self._windows[key] = (count + 1, ends)
        return count + 1, ends

    def __contains__(self, key: str) -> bool:
        return key in self._windows


class RedisWindows:
    """Fixed windows in Redis, counted by every worker and replica that shares it."""

    def __init__(self, url: str) -> None:
        # Imported here: only a deployment that names a Redis storage pays for the client library.
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = client.register_script(_HIT_LUA)
        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def hit(self, key: str, seconds: int) -> tuple[int, float]:
        count, remaining_ms = self._script(keys=[key], args=[seconds])
        return int(count), time.time() + max(int(remaining_ms), 0) / 1000


class RateLimiter:
    """Counts a request in its client's window of its route family's limit."""

    def __init__(self, *, shared: RedisWindows | None, key_prefix: str) -> None:
        self.memory = MemoryWindows()
        self.shared = shared
        self._key_prefix = key_prefix
        self._shared_failing = False

    def hit(self, scope: str, client: str, rate: Rate) -> tuple[int, float]:
        key = REDIS_KEY.format(
            prefix=self._key_prefix, scope=scope, client=client, amount=rate.amount, seconds=rate.seconds
        )
        if self.shared is not None:
            try:
                hit = self.shared.hit(key, rate.seconds)
            except self.shared.errors as error:
                if not self._shared_failing:
                    log.warning("rate-limit storage unavailable, counting in memory: %s", type(error).__name__)
                self._shared_failing = True
            else:
                if self._shared_failing:
                    log.info("rate-limit storage reachable again")
                self._shared_failing = False
                return hit
        return self.memory.hit(key, rate.seconds)


def init_app(app: Flask, limits: Mapping[Blueprint, str]) -> RateLimiter:
    """Limit each blueprint of `limits` by the rate string in its config key (e.g. "60 per minute")."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    for config_key in limits.values():
        parse_rate(app.config[config_key])  # a setting it cannot read stops the app here, not at the first request
    uri = app.config["RATELIMIT_STORAGE_URI"]
    if uri.startswith(("redis://", "rediss://", "unix://")):
        shared = RedisWindows(uri)
    elif uri == "memory://":
        shared = None
    else:
        raise ValueError(f"RATELIMIT_STORAGE_URI must be memory:// or a redis:// URL, got {uri.split(':', 1)[0]!r}")
    limiter = RateLimiter(shared=shared, key_prefix=app.config["RATELIMIT_KEY_PREFIX"])
    config_keys = {blueprint.name: config_key for blueprint, config_key in limits.items()}

    @app.before_request
    def _count_request() -> None:
        config_key = config_keys.get(request.blueprint or "")
        if config_key is None:
            return
        rate = parse_rate(current_app.config[config_key])
        # The keyed hash when there is a key, so the limiter's storage (Redis included) holds no client IPs either.
        count, ends = limiter.hit(request.blueprint, client_ip_hash() or client_ip(), rate)
        g.rate_limit = (rate, count, ends)
        if count > rate.amount:
            raise ApiError(
                429,
                "too_many_requests",
                f"Rate limit exceeded: {rate}.",
                headers={"Retry-After": str(max(1, math.ceil(ends - time.time())))},
            )

    @app.after_request
    def _rate_limit_headers(response: Response) -> Response:
        # The IETF RateLimit fields, the reset in seconds from now.
        if (state := g.get("rate_limit")) is not None:
            rate, count, ends = state
            response.headers["RateLimit-Limit"] = str(rate.amount)
            response.headers["RateLimit-Remaining"] = str(max(0, rate.amount - count))
            response.headers["RateLimit-Reset"] = str(max(0, math.ceil(ends - time.time())))
        return response

    app.extensions["rate_limiter"] = limiter
    return limiter
