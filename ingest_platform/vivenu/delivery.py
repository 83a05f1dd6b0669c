"""The charity-webhook sender of seed 002 without Dagster: bounded rate, retries, resumable from the ledger.

The sender resumes from the delivery ledger (ledger.py), the record of what each endpoint acknowledged.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest_platform.http_retry import backoff_seconds, is_retryable_error, is_retryable_status, retry_after_seconds
from ingest_platform.vivenu.ratelimit import RateLimiter
from ingest_platform.vivenu.tickets import build_envelope

# httpx is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import httpx

    from ingest_platform.vivenu.ledger import DeliveryLedger

# ---------------------------------------------------------------------------------------------------- sender


@dataclass(frozen=True)
class DeliverySettings:
    endpoint: str
    mode: str
    requests_per_second: float
    max_in_flight: int
    max_attempts: int
    timeout_seconds: float
    backoff_base_seconds: float
    backoff_cap_seconds: float
    headroom: float
    lease_seconds: float
    limit: int | None = None


@dataclass
class DeliveryOutcome:
    selected: int
    already_acknowledged: int
    attempted: int = 0
    acknowledged: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, int]:
        return {
            "selected": self.selected,
            "already_acknowledged": self.already_acknowledged,
            "attempted": self.attempted,
            "acknowledged_this_run": self.acknowledged,
            "failed": len(self.failed),
        }


ProgressCallback = Callable[[DeliveryOutcome], None]


def deliver(
    *,
    ledger: DeliveryLedger,
    tickets: Sequence[Mapping[str, Any]],
    settings: DeliverySettings,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 50,
    sleep: Callable[[float], None] | None = None,
) -> DeliveryOutcome:
    """Send every ticket the ledger has not seen acknowledged, at most `requests_per_second` request starts per
    second (retries included) and `max_in_flight` requests at once. One ticket's failure never stops the others,
    and one request waiting for its answer (up to `timeout_seconds`) holds one sender and one slot of the rate
    limit, not the whole delivery.
    """
    import httpx

    sleep = sleep or time.sleep
    ledger.acquire_lease(seconds=settings.lease_seconds, wait_seconds=settings.lease_seconds * 1.5, sleep=sleep)
    stop_heartbeat = threading.Event()
    heartbeat = threading.Thread(
        target=_keep_lease, args=(ledger, settings.lease_seconds, stop_heartbeat), name="vivenu-lease", daemon=True
    )
    heartbeat.start()
    try:
        ids = [str(ticket["_id"]) for ticket in tickets]
        ledger.register(ids)
        done = ledger.acknowledged(ids)
        todo = [ticket for ticket in tickets if str(ticket["_id"]) not in done]
        if settings.limit is not None:
            todo = todo[: settings.limit]
        outcome = DeliveryOutcome(selected=len(tickets), already_acknowledged=len(done), attempted=len(todo))
        limiter = RateLimiter(settings.requests_per_second, headroom=settings.headroom, sleep=sleep)
        timeout = httpx.Timeout(settings.timeout_seconds)
        limits = httpx.Limits(max_connections=settings.max_in_flight, max_keepalive_connections=settings.max_in_flight)
        with (
            ledger.writing_in_background(),
            httpx.Client(timeout=timeout, limits=limits) as client,
            ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="vivenu-send") as pool,
        ):
            futures = {
                pool.submit(_send_one, client, ledger, limiter, settings, ticket, sleep): str(ticket["_id"])
                for ticket in todo
            }
            for finished, future in enumerate(as_completed(futures), start=1):
                error = future.result()
                if error is None:
                    outcome.acknowledged += 1
                else:
                    outcome.failed[futures[future]] = error
                if on_progress is not None and (finished % progress_every == 0 or finished == len(todo)):
                    on_progress(outcome)
    finally:
        stop_heartbeat.set()
        heartbeat.join()
        ledger.release_lease(selected=len(tickets))
    return outcome


def _keep_lease(ledger: DeliveryLedger, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(seconds / 3):
        ledger.renew_lease(seconds=seconds)


def _send_one(
    client: httpx.Client,
    ledger: DeliveryLedger,
    limiter: RateLimiter,
    settings: DeliverySettings,
    ticket: Mapping[str, Any],
    sleep: Callable[[float], None],
) -> str | None:
    """Deliver one ticket; None once acknowledged, else the error recorded in the ledger."""
    import httpx

    ticket_id = str(ticket["_id"])
    envelope = build_envelope(ticket, endpoint=settings.endpoint, mode=settings.mode)
    body = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": envelope["id"]}
    error, status_code = "not attempted", None
    for attempt in range(1, settings.max_attempts + 1):
        retry_after = None
        try:
            with limiter.request():
                # Counted once the limiter has let it go: a run killed while its senders wait for their turn
                # leaves every count at what was really sent.
                ledger.mark_sending(ticket_id)
                response = client.post(settings.endpoint, content=body, headers=headers)
        except httpx.HTTPError as failure:
            status_code, error = None, type(failure).__name__
            if not is_retryable_error(failure):
                ledger.mark_failed(ticket_id, None, error)
                return error
        else:
            status_code = response.status_code
            if response.is_success:
                ledger.mark_acknowledged(ticket_id, status_code)
                return None
            error = f"HTTP {status_code}: {receiver_message(response)}"
            if not is_retryable_status(status_code):
                ledger.mark_failed(ticket_id, status_code, error)
                return error
            retry_after = retry_after_seconds(response)
        if attempt < settings.max_attempts:
            ledger.note_error(ticket_id, status_code, error)
            sleep(
                backoff_seconds(
                    attempt,
                    base=settings.backoff_base_seconds,
                    cap=settings.backoff_cap_seconds,
                    retry_after=retry_after,
                )
            )
    error = f"{error} (gave up after {settings.max_attempts} attempts)"
    ledger.mark_failed(ticket_id, status_code, error)
    return error


def receiver_message(response: httpx.Response, limit: int = 300) -> str:
    """The receiver's own explanation (e.g. "ticketTypeId not found in KV store"), shortened."""
    text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for name in ("error", "message", "detail"):
            if isinstance(body.get(name), str):
                text = body[name]
                break
    text = " ".join(text.split()) or response.reason_phrase
    return text if len(text) <= limit else text[:limit] + "…"
