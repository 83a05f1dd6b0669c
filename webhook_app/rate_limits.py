"""Per-client-IP rate limits with Flask-Limiter: in memory by default, shared through Redis for several instances.

`WEBHOOK_RATELIMIT_STORAGE_URI=redis://host:6379/0` makes every worker and replica count together; when that
storage fails the limiter falls back to per-process memory rather than refusing traffic.
"""

import threading
import time
from collections.abc import Mapping

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import HeaderNames, Limiter
from limits.storage import MemoryStorage

from webhook_app.client_ip import client_ip, client_ip_hash

DEFAULTS = {
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": "ingest",
}
# The IETF RateLimit header fields, not the legacy X-RateLimit-* ones.
HEADER_NAMES = {
    HeaderNames.LIMIT: "RateLimit-Limit",
    HeaderNames.REMAINING: "RateLimit-Remaining",
    HeaderNames.RESET: "RateLimit-Reset",
    HeaderNames.RETRY_AFTER: "Retry-After",
}


# Expired windows of clients that stopped calling are dropped this often (a window a client calls again is reset on
# that call, whatever the sweep).
SWEEP_SECONDS = 10.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage for the fixed-window strategy, with its expiry done inline.

    The stock one starts a thread on an increment whenever its last 10 ms expiry timer has finished, so under steady
    traffic nearly every request paid for a thread start (a measurable share of a single-event intake). Counting
    needs no timer: `get` resets an expired window; the sweep only frees the memory of windows nobody calls again.
    """

    STORAGE_SCHEME = ["ingest-memory"]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, *, sweep_seconds: float = SWEEP_SECONDS, **options
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._sweep_seconds = sweep_seconds
        self._sweep_lock = threading.Lock()
        self._next_sweep = time.monotonic() + sweep_seconds

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self.get(key)
        self._sweep_when_due()
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = time.time() + expiry
        return self.storage.get(key, 0)

    def _sweep_when_due(self) -> None:
        if time.monotonic() < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = time.monotonic() + self._sweep_seconds
            now = time.time()
            for key, expires_at in list(self.expirations.items()):
                if expires_at <= now:
                    self.storage.pop(key, None)
                    self.expirations.pop(key, None)
                    self.locks.pop(key, None)
        finally:
            self._sweep_lock.release()


def init_app(app: Flask, limits: Mapping[Blueprint, str]) -> Limiter:
    """Limit each blueprint of `limits` by the rate string in its config key (e.g. "60 per minute")."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    in_memory = app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    limiter = Limiter(
        key_func=_client_key,
        header_name_mapping=HEADER_NAMES,
        # The constructor's URI wins over the config's: memory:// (the default) is served without the expiry thread.
        storage_uri="ingest-memory://" if in_memory else None,
    )
    for blueprint, config_key in limits.items():
        limiter.limit(_configured(config_key))(blueprint)
    limited = frozenset(blueprint.name for blueprint in limits)

    # Other routes skip the limiter's per-request work (resolving limits costs a measurable share of an intake).
    @limiter.request_filter
    def _not_limited() -> bool:
        return request.blueprint not in limited

    # after_request hooks run last-registered first: registering before the limiter makes this one see its headers.
    app.after_request(_ietf_headers)
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter
    return limiter


def _client_key() -> str:
    # The keyed hash when there is a key, so the limiter's storage (Redis included) holds no client IPs either.
    return client_ip_hash() or client_ip()


def _configured(config_key: str):
    return lambda: current_app.config[config_key]


def _ietf_headers(response: Response) -> Response:
    # Flask-Limiter sends the reset as an epoch timestamp and Retry-After on every limited response; the IETF
    # fields want seconds until the reset, and Retry-After belongs to refusals alone.
    reset = response.headers.get("RateLimit-Reset")
    if reset is not None and reset.isdigit():
        response.headers["RateLimit-Reset"] = str(max(0, int(reset) - int(time.time())))
    if response.status_code < 400:
        response.headers.pop("Retry-After", None)
    return response
