"""Push Big Top events from the local warehouse to production's `POST /api/ingest/bigtop/events` (seed 000).

A push has one run id; its events go in batches of at most 500 (the endpoint's limit), each request stamped with its
own `sent_at`. A batch is serialised once and re-sent byte for byte: timeouts, transport errors, 5xx and 429 are
retried with exponential backoff (a `Retry-After` from the server wins), any other 4xx is the batch's own fault and is
never retried. Production upserts by (source_id, external_id), so a retried batch that had in fact landed duplicates
nothing. The token only ever travels in the `Authorization` header; every line this module reports is redacted.

Each accepted batch's request id is reported; `wait_until_loaded` then polls production's
`GET /ingest/receipts/<id>` until every batch is loaded (or quarantined, or the wait times out).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ingest_platform.http_retry import retry_after_seconds

# httpx and SQLAlchemy are imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import httpx
    import sqlalchemy as sa

BIGTOP_SOURCE_ID = 5
MAX_BATCH_SIZE = 500
DEFAULT_BATCH_SIZE = 250
ENDPOINT_PATH = "/api/ingest/bigtop/events"
RECEIPTS_PATH = "/ingest/receipts/"
EVENT_FIELDS = ("external_id", "title", "start_utc", "end_utc", "description", "location", "external_url", "categories")
# A wrong token, a wrong URL or a redirect fails every batch the same way: the push stops at the first one.
STOP_STATUSES = frozenset({401, 403, 404})

Report = Callable[[str], None]


class BridgeError(Exception):
    """The bridge cannot go on; the message says why and what to do."""


def refuse_in_production(environ: Mapping[str, str] | None = None) -> None:
    """Raise when `ENV=production`: production receives the pushes, it never runs the bridge (seed 000)."""
    env = (environ if environ is not None else os.environ).get("ENV", "")
    if env.strip().lower() == "production":
        raise BridgeError(
            "refusing to run with ENV=production: the Big Top bridge runs on a local machine and pushes to "
            "production; production itself only receives (POST /api/ingest/bigtop/events)"
        )


class PushConfigError(ValueError):
    """The push cannot start: a missing token or URL, a batch size outside 1..500."""


def validate_batch_size(batch_size: int) -> int:
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise PushConfigError(
            f"batch size must be between 1 and {MAX_BATCH_SIZE} (the endpoint's limit per request), got {batch_size}"
        )
    return batch_size


def endpoint_url(api_base: str) -> str:
    """The push endpoint under `api_base` (`https://host` or `https://host/prefix`)."""
    import httpx

    url = httpx.URL((api_base or "").strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise PushConfigError(f"the API base must be an http(s) URL such as https://example.org, got {api_base!r}")
    return str(url.copy_with(path=url.path.rstrip("/") + ENDPOINT_PATH, query=None, fragment=None))


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def select_local_events(
    connection: sa.Connection,
    *,
    source_id: int = BIGTOP_SOURCE_ID,
    future_only: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The source's events in the warehouse as the endpoint takes them, soonest first.

    `future_only` keeps events that have not ended yet (start or end at or after `now`), so one that is running
    still goes out with its latest details.
    """
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import events

    query = (
        sa.select(*(events.c[name] for name in EVENT_FIELDS))
        .where(events.c.source_id == source_id)
        .order_by(events.c.start_utc, events.c.external_id)
    )
    if future_only:
        moment = now or datetime.now(UTC)
        query = query.where(sa.or_(events.c.start_utc >= moment, events.c.end_utc >= moment))
    if limit is not None:
        query = query.limit(limit)
    return [event_payload(row) for row in connection.execute(query).mappings()]


def event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """One event in the endpoint's shape; absent optional fields are left out."""
    payload: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        value = row.get(name)
        if value is None:
            continue
        payload[name] = value.isoformat() if isinstance(value, datetime) else value
    return payload


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    # A server may ask for a pause; beyond this it is read as "down", not "busy".
    max_retry_after_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise PushConfigError(f"max attempts must be at least 1, got {self.max_attempts}")

    def backoff(self, failed_attempts: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (failed_attempts - 1))


@dataclass(frozen=True)
class BatchResult:
    number: int
    events: int
    attempts: int
    status: int | None
    accepted: int = 0
    error: str | None = None
    stops_push: bool = False
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PushSummary:
    run_id: str
    endpoint: str
    batches_planned: int
    results: list[BatchResult] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(result.events for result in self.results)

    @property
    def accepted(self) -> int:
        return sum(result.accepted for result in self.results)

    @property
    def failed_batches(self) -> int:
        return sum(not result.ok for result in self.results)

    @property
    def unsent_batches(self) -> int:
        return self.batches_planned - len(self.results)

    @property
    def ok(self) -> bool:
        return self.failed_batches == 0 and self.unsent_batches == 0

    def line(self) -> str:
        outcome = "ok" if self.ok else "FAILED"
        return (
            f"push {self.run_id} {outcome}: {self.sent} events sent, {self.accepted} accepted; "
            f"{self.batches_planned} batches, {self.failed_batches} failed, {self.unsent_batches} not sent"
        )

    def as_metadata(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "endpoint": self.endpoint,
            "sent": self.sent,
            "accepted": self.accepted,
            "batches": self.batches_planned,
            "failed_batches": self.failed_batches,
            "unsent_batches": self.unsent_batches,
            "failures": [
                {"batch": result.number, "status": result.status, "error": result.error}
                for result in self.results
                if not result.ok
            ],
        }


def new_run_id(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return f"bigtop-push-{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def push_events(
    events_to_send: Sequence[Mapping[str, Any]],
    *,
    api_base: str,
    token: str,
    source_id: int = BIGTOP_SOURCE_ID,
    batch_size: int = DEFAULT_BATCH_SIZE,
    delay: float = 0.0,
    timeout_seconds: float = 30.0,
    retry: RetryPolicy = RetryPolicy(),
    run_id: str | None = None,
    report: Report = print,
    sleep: Callable[[float], None] = time.sleep,
) -> PushSummary:
    """Post `events_to_send` in batches; returns what was sent and accepted. Never raises for an HTTP failure."""
    import httpx

    validate_batch_size(batch_size)
    if not token or not token.strip():
        raise PushConfigError("no token: set BIGTOP_INGEST_TOKEN (or pass --token)")
    if delay < 0:
        raise PushConfigError(f"delay must be zero or more seconds, got {delay}")
    url = endpoint_url(api_base)
    token = token.strip()

    def say(message: str) -> None:
        report(redact(message, token))

    if httpx.URL(url).scheme == "http" and not _is_loopback(httpx.URL(url).host):
        say(f"warning: {url} is plain http; the token crosses the network unencrypted")
    batches = [events_to_send[start : start + batch_size] for start in range(0, len(events_to_send), batch_size)]
    # The summary ends up in run metadata: keep the token out of it even when it was pasted into the URL.
    summary = PushSummary(run_id=run_id or new_run_id(), endpoint=redact(url, token), batches_planned=len(batches))
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "User-Agent": "ingest-platform-bigtop-push",
    }
    with httpx.Client(headers=headers, timeout=timeout_seconds, follow_redirects=False) as client:
        for number, batch in enumerate(batches, start=1):
            if number > 1 and delay:
                sleep(delay)
            body = serialise_batch(batch, source_id=source_id, run_id=summary.run_id)
            result = _post_batch(
                client, url, body, number=number, total=len(batches), size=len(batch), retry=retry, say=say, sleep=sleep
            )
            if result.error:
                result = dataclasses.replace(result, error=redact(result.error, token))
            summary.results.append(result)
            say(_progress_line(result, total=len(batches)))
            if result.stops_push and number < len(batches):
                say(f"stopping: the {len(batches) - number} remaining batches are not sent (rerun the push)")
                break
    say(summary.line())
    return summary


def serialise_batch(batch: Sequence[Mapping[str, Any]], *, source_id: int, run_id: str) -> bytes:
    document = {"source_id": source_id, "run_id": run_id, "sent_at": datetime.now(UTC).isoformat(), "events": batch}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _post_batch(
    client: httpx.Client,
    url: str,
    body: bytes,
    *,
    number: int,
    total: int,
    size: int,
    retry: RetryPolicy,
    say: Report,
    sleep: Callable[[float], None],
) -> BatchResult:
    import httpx

    status: int | None = None
    for attempt in range(1, retry.max_attempts + 1):
        try:
            response = client.post(url, content=body)
        except httpx.TimeoutException as error:
            status, problem, wait = None, f"timed out ({type(error).__name__})", retry.backoff(attempt)
        except httpx.TransportError as error:
            status, problem, wait = None, f"{type(error).__name__}: {error}", retry.backoff(attempt)
        else:
            status = response.status_code
            if response.is_success:
                accepted, request_id = _accepted(response, size)
                return BatchResult(number, size, attempt, status, accepted=accepted, request_id=request_id)
            problem = _describe(response)
            if status != 429 and status < 500:
                stops = status in STOP_STATUSES or response.is_redirect
                return BatchResult(number, size, attempt, status, error=problem, stops_push=stops)
            asked = _retry_after(response, retry)
            wait = retry.backoff(attempt) if asked is None else asked
        if attempt == retry.max_attempts:
            break
        say(f"batch {number}/{total}: attempt {attempt} {problem}; retrying in {wait:.2f} s")
        sleep(wait)
    return BatchResult(
        number,
        size,
        retry.max_attempts,
        status,
        error=f"{problem}; gave up after {retry.max_attempts} attempts",
        stops_push=True,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _accepted(response: httpx.Response, size: int) -> tuple[int, str | None]:
    """The batch's accepted count and request id, as far as the answer tells them."""
    try:
        body = response.json()
        accepted, request_id = body.get("accepted"), body.get("request_id")
    except (ValueError, AttributeError):
        return size, None
    return (accepted if isinstance(accepted, int) else size), (request_id if isinstance(request_id, str) else None)


def _describe(response: httpx.Response) -> str:
    text = f"HTTP {response.status_code}"
    if response.is_redirect:
        return f"{text} redirect to {response.headers.get('Location')!r}: use that address as the API base"
    try:
        body = response.json()
    except ValueError:
        return f"{text}: {response.text[:200]}".rstrip(": ")
    if not isinstance(body, dict):
        return text
    text += f" {body.get('error', '')}: {body.get('detail', '')}"
    problems = [
        f"{item.get('field')}: {item.get('problem')}" for item in body.get("fields") or [] if isinstance(item, dict)
    ]
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        text += " [" + "; ".join(problems[:5]) + more + "]"
    return text[:1000]


def _retry_after(response: httpx.Response, retry: RetryPolicy) -> float | None:
    seconds = retry_after_seconds(response)
    return None if seconds is None else min(seconds, retry.max_retry_after_seconds)


def _progress_line(result: BatchResult, *, total: int) -> str:
    head = f"batch {result.number}/{total}: {result.events} events"
    if result.ok:
        request = f", request {result.request_id}" if result.request_id else ""
        return f"{head} -> HTTP {result.status}, {result.accepted} accepted{request} (attempts: {result.attempts})"
    return f"{head} FAILED after {result.attempts} attempt(s): {result.error}"


@dataclass(frozen=True)
class WaitOutcome:
    """The last receipt state of every batch a wait followed (`unknown` when production never told one)."""

    states: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(state == "loaded" for state in self.states.values())

    def line(self) -> str:
        counts = {state: list(self.states.values()).count(state) for state in sorted(set(self.states.values()))}
        told = ", ".join(f"{count} {state}" for state, count in counts.items())
        return f"wait {'ok' if self.ok else 'FAILED'}: {len(self.states)} batches: {told or 'none'}"


def wait_until_loaded(
    request_ids: Sequence[str],
    *,
    api_base: str,
    token: str,
    timeout_seconds: float,
    poll_seconds: float = 1.0,
    request_timeout_seconds: float = 30.0,
    report: Report = print,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WaitOutcome:
    """Poll each request's receipt until it is loaded or quarantined, or `timeout_seconds` have passed."""
    import httpx

    base = endpoint_url(api_base).removesuffix(ENDPOINT_PATH)
    token = token.strip()
    states = dict.fromkeys(request_ids, "unknown")
    reasons: dict[str, str] = {}
    deadline = clock() + timeout_seconds
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "ingest-platform-bigtop-push"}
    with httpx.Client(headers=headers, timeout=request_timeout_seconds, follow_redirects=False) as client:
        while True:
            for request_id in [rid for rid, state in states.items() if state not in ("loaded", "quarantined")]:
                state, reason = _receipt_state(client, f"{base}{RECEIPTS_PATH}{request_id}")
                if state != states[request_id]:
                    report(redact(f"request {request_id}: {state}" + (f" ({reason})" if reason else ""), token))
                states[request_id] = state
                if reason:
                    reasons[request_id] = reason
            if all(state in ("loaded", "quarantined") for state in states.values()) or clock() >= deadline:
                break
            sleep(min(poll_seconds, max(0.0, deadline - clock())))
    outcome = WaitOutcome(states, reasons)
    report(outcome.line())
    return outcome


def _receipt_state(client: httpx.Client, url: str) -> tuple[str, str | None]:
    """The receipt's state and reason; a failed poll reads as `unknown` and is asked again."""
    import httpx

    try:
        response = client.get(url)
    except httpx.TransportError as error:
        return "unknown", f"{type(error).__name__}"
    if not response.is_success:
        return "unknown", _describe(response)
    try:
        body = response.json()
    except ValueError:
        return "unknown", "the receipt is not JSON"
    return str(body.get("state", "unknown")), body.get("reason")
