"""The charity-ticket sync of seed 002 without Dagster: filters, envelopes and the sender.

The sender resumes from the delivery ledger (vivenu_ledger.py), the record of what each endpoint acknowledged.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest_platform.http_retry import backoff_seconds, is_retryable_error, is_retryable_status, retry_after_seconds
from ingest_platform.ratelimit import RateLimiter

# httpx is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import httpx

    from ingest_platform.vivenu_ledger import DeliveryLedger

SENDABLE_STATUSES = ("VALID", "DETAILSREQUIRED")
CHARITY_MARKER = "CHARITY"
EVENT_TYPE = "ticket.created"
TICKET_KEY = ["region", "ticket_id"]

# Envelope ids are uuid5 in this namespace of (ticket, endpoint): the same ticket to the same endpoint always
# carries the same id, so a receiver can drop a resend.
ENVELOPE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ingest-platform:vivenu:ticket.created")


def partition_key(region: str, event_id: str) -> str:
    return f"{region}:{event_id}"


def split_partition_key(key: str) -> tuple[str, str]:
    region, separator, event_id = key.partition(":")
    if not separator or not region or not event_id:
        raise ValueError(f"partition key {key!r} is not REGION:EVENT_ID")
    return region, event_id


# ---------------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterCounts:
    total: int
    rejected_status: int
    rejected_not_charity: int
    to_send: int

    def as_metadata(self) -> dict[str, int]:
        return {
            "total_tickets": self.total,
            "rejected_wrong_status": self.rejected_status,
            "rejected_not_charity": self.rejected_not_charity,
            "tickets_to_send": self.to_send,
        }

    def report_lines(self) -> list[str]:
        """The seed's own wording of the filter results."""
        return [
            f"Found {self.total} total tickets",
            "Filtering results:",
            f"  - Total tickets: {self.total}",
            f"  - Rejected (wrong status): {self.rejected_status}",
            f"  - Rejected (not charity): {self.rejected_not_charity}",
            f"  - ✅ Tickets to send: {self.to_send}",
        ]


def is_sendable_status(status: str | None) -> bool:
    return status in SENDABLE_STATUSES


def is_charity(ticket_name: str | None) -> bool:
    return CHARITY_MARKER in (ticket_name or "")


def select_tickets(tickets: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], FilterCounts]:
    """The seed's two filters in its order: status first, then "CHARITY" in the ticket name."""
    status_ok = [ticket for ticket in tickets if is_sendable_status(ticket.get("status"))]
    selected = [ticket for ticket in status_ok if is_charity(ticket.get("ticketName"))]
    counts = FilterCounts(
        total=len(tickets),
        rejected_status=len(tickets) - len(status_ok),
        rejected_not_charity=len(status_ok) - len(selected),
        to_send=len(selected),
    )
    return selected, counts


# ---------------------------------------------------------------------------------------------------- tickets


def ticket_row(region: str, event_id: str, ticket: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "region": region,
        "ticket_id": str(ticket["_id"]),
        "event_id": event_id,
        "seller_id": _text(ticket.get("sellerId")),
        "status": _text(ticket.get("status")),
        "ticket_name": _text(ticket.get("ticketName")),
        "ticket_type_id": _text(ticket.get("ticketTypeId")),
        "ticket": dict(ticket),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------------- envelopes


def envelope_id(ticket_id: str, endpoint: str) -> str:
    return str(uuid.uuid5(ENVELOPE_NAMESPACE, f"{ticket_id}@{endpoint}"))


def build_envelope(ticket: Mapping[str, Any], *, endpoint: str, mode: str) -> dict[str, Any]:
    """The `ticket.created` webhook Vivenu would have sent, as the seed builds it."""
    return {
        "id": envelope_id(str(ticket["_id"]), endpoint),
        "sellerId": ticket.get("sellerId"),
        "type": EVENT_TYPE,
        "mode": mode,
        "data": {"ticket": dict(ticket)},
    }


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
    second (retries included) and `max_in_flight` requests at once. One ticket's failure never stops the others.
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
        ledger.mark_sending(ticket_id)
        retry_after = None
        try:
            with limiter.request():
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


# ---------------------------------------------------------------------------------------------------- pull files

# Anything but word characters, spaces, '-' and single dots; ".." never survives, nor does a separator.
_UNSAFE_FILE_CHARACTERS = re.compile(r"(?:[^\w .-]|\.{2,})+")


def safe_file_part(text: str, *, limit: int = 80) -> str:
    """A piece of a file name that cannot leave its directory or hide: no separators, no leading dots."""
    cleaned = " ".join(_UNSAFE_FILE_CHARACTERS.sub("_", text).split()).strip(" ._")
    return cleaned[:limit].rstrip(" ._") or "unnamed"


def holder_name(ticket: Mapping[str, Any]) -> str:
    parts = [str(ticket.get(name) or "").strip() for name in ("firstname", "lastname")]
    return " ".join(part for part in parts if part) or str(ticket.get("name") or "").strip()


def write_pull_files(
    tickets: Sequence[Mapping[str, Any]], *, region: str, event_id: str, root: Path
) -> tuple[Path, FilterCounts]:
    """The seed's pull layout, readable by the owner only (the files hold ticket holders' personal data):
    `<root>/<event_id>/all_tickets.json`, `metadata.json` and `individual/<id>_<name>.json`."""
    event_dir = root / safe_file_part(event_id)
    individual_dir = event_dir / "individual"
    for directory in (root, event_dir, individual_dir):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    _, counts = select_tickets(tickets)
    _write_private_json(event_dir / "all_tickets.json", list(tickets))
    _write_private_json(
        event_dir / "metadata.json",
        {
            "region": region,
            "event_id": event_id,
            "pulled_at": datetime.now(UTC).isoformat(),
            "total_tickets": len(tickets),
            "by_status": dict(Counter(str(ticket.get("status")) for ticket in tickets).most_common()),
            "by_ticket_name": dict(Counter(str(ticket.get("ticketName")) for ticket in tickets).most_common()),
            "filter": counts.as_metadata(),
        },
    )
    for ticket in tickets:
        name = f"{safe_file_part(str(ticket['_id']))}_{safe_file_part(holder_name(ticket))}.json"
        _write_private_json(individual_dir / name, ticket)
    return event_dir, counts


def _write_private_json(path: Path, document: Any) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2, ensure_ascii=False)
