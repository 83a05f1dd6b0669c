"""Vivenu tickets as seed 002 selects and sends them: partitions, the charity filter, rows and envelopes."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
