"""What the webhook app lands for the Ingest Service (seed 003) and the rows it becomes.

The streams, the schema of each landed document, its rows, and the donation folded from a payment's Stripe events.
No SQL, so the asset definitions can import it; the loaders' warehouse work is in loading.py.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

EVENTS_STREAM = "app_events"
STRIPE_STREAM = "stripe_events"
CRAWL_STREAM = "crawl_items"
RULES_STREAM = "app_rules"
AUDIT_STREAM = "app_audit"


class LandedAudit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    audit_id: str
    at: AwareDatetime
    actor: str
    action: str
    outcome: str
    status: int | None = None
    error: str | None = None
    ip_hash: str | None = None
    request_id: str | None = None
    details: dict[str, Any] | None = None


class LandedAppEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["VIEW", "COPY", "SAVE", "FORK", "VOTE"]
    rule_id: str
    user_id: str | None = None
    ts: AwareDatetime
    idempotency_key: str | None = None


class LandedEvents(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ip_hash: str
    events: list[LandedAppEvent]
    audit: LandedAudit


class LandedStripeEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    created: int
    livemode: bool
    data: dict[str, Any]


class LandedStripe(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event: LandedStripeEvent
    audit: LandedAudit


class LandedCrawlItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    external_id: str
    url: str
    title: str
    summary: str | None = None
    raw: dict[str, Any] | None = None


class LandedCrawl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source_id: str
    items: list[LandedCrawlItem]
    audit: LandedAudit


class LandedRule(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rule_id: str
    author_id: str
    title: str
    summary: str | None = None
    tags: list[str] | None = None
    model: str | None = None
    updated_at: AwareDatetime


class LandedRules(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[LandedRule]
    audit: LandedAudit


class LandedRejection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    audit: LandedAudit


# --- documents → rows -------------------------------------------------------------------------------------------


def _landing(document: Mapping[str, Any]) -> tuple[str, datetime]:
    received_at = datetime.fromisoformat(document["received_at"])
    if received_at.tzinfo is None:
        raise ValueError("received_at has no time zone")
    return document["request_id"], received_at


def event_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    landed = LandedEvents.model_validate(document["payload"])
    request_id, received_at = _landing(document)
    events = [
        {
            "event_id": f"{request_id}:{position}",
            "idempotency_key": event.idempotency_key,
            "type": event.type,
            "rule_id": event.rule_id,
            "user_id": event.user_id,
            "ts": event.ts,
            "received_at": received_at,
            "ip_hash": landed.ip_hash,
            "request_id": request_id,
        }
        for position, event in enumerate(landed.events)
    ]
    return [{"rows": events, "audit": landed.audit.model_dump()}]


def stripe_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    landed = LandedStripe.model_validate(document["payload"])
    request_id, received_at = _landing(document)
    event = landed.event
    handled = event.type in FACTS_BY_TYPE
    row = {
        "event_id": event.id,
        "type": event.type,
        "created": datetime.fromtimestamp(event.created, tz=UTC),
        "livemode": event.livemode,
        "handled": handled,
        "donation_key": donation_key(event.type, _stripe_object(event.model_dump())) if handled else None,
        "payload": event.model_dump(),
        "received_at": received_at,
        "request_id": request_id,
    }
    return [{"rows": [row], "audit": landed.audit.model_dump()}]


def crawl_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    landed = LandedCrawl.model_validate(document["payload"])
    _, received_at = _landing(document)
    items = [{"source_id": landed.source_id, **item.model_dump(), "received_at": received_at} for item in landed.items]
    return [{"rows": items, "audit": landed.audit.model_dump()}]


def rules_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The landed rules as `rules` rows, each with its tags (deduplicated, in order) for `rule_tags`."""
    landed = LandedRules.model_validate(document["payload"])
    request_id, received_at = _landing(document)
    rules = [
        {
            "rule_id": rule.rule_id,
            "author_id": rule.author_id,
            "title": rule.title,
            "summary": rule.summary,
            "model": rule.model,
            "updated_at": rule.updated_at,
            "received_at": received_at,
            "request_id": request_id,
            "tags": sorted(set(rule.tags or ())),
        }
        for rule in landed.items
    ]
    return [{"rows": rules, "audit": landed.audit.model_dump()}]


def rejection_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [LandedRejection.model_validate(document["payload"]).audit.model_dump()]


# --- donations --------------------------------------------------------------------------------------------------

# A donation's status only moves up this ladder, whatever order its events arrive in: a late `succeeded` never
# undoes a refund, a late failed attempt never undoes a success.
STATUS_RANK = {"pending": 1, "failed": 2, "succeeded": 3, "partially_refunded": 4, "refunded": 5}


def _object_id(value: Any) -> str | None:
    """A Stripe reference, sent as an id or as the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _checkout_facts(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "succeeded" if obj.get("payment_status") in ("paid", "no_payment_required") else "pending",
        "amount": obj.get("amount_total"),
        "checkout_session_id": _object_id(obj.get("id")),
        "payment_intent_id": _object_id(obj.get("payment_intent")),
    }


def _intent_succeeded_facts(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "amount": obj.get("amount_received") or obj.get("amount"),
        "payment_intent_id": _object_id(obj.get("id")),
    }


def _intent_failed_facts(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "failed", "amount": obj.get("amount"), "payment_intent_id": _object_id(obj.get("id"))}


def _refund_facts(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "refunded" if obj.get("refunded") else "partially_refunded",
        "amount": obj.get("amount"),
        "amount_refunded": obj.get("amount_refunded"),
        "charge_id": _object_id(obj.get("id")),
        "payment_intent_id": _object_id(obj.get("payment_intent")),
    }


FACTS_BY_TYPE = {
    "checkout.session.completed": _checkout_facts,
    "payment_intent.succeeded": _intent_succeeded_facts,
    "payment_intent.payment_failed": _intent_failed_facts,
    "charge.refunded": _refund_facts,
}


def _stripe_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    obj = (event.get("data") or {}).get("object")
    return obj if isinstance(obj, dict) else {}


def donation_key(event_type: str, obj: Mapping[str, Any]) -> str | None:
    """The payment intent when the event names one (every handled type can), else the session's or charge's id."""
    facts = FACTS_BY_TYPE[event_type](obj)
    return facts.get("payment_intent_id") or facts.get("checkout_session_id") or facts.get("charge_id")


def fold_donation(key: str, events: list[tuple[datetime, str, str, Mapping[str, Any]]]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "donation_key": key,
        "amount": None,
        "amount_refunded": 0,
        "currency": None,
        "author_id": None,
        "rule_id": None,
        "donor_user_id": None,
        "checkout_session_id": None,
        "payment_intent_id": None,
        "charge_id": None,
    }
    best: tuple[int, datetime, str] | None = None
    for created, event_id, event_type, payload in sorted(events, key=lambda event: (event[0], event[1])):
        obj = _stripe_object(payload)
        facts = FACTS_BY_TYPE[event_type](obj)
        status = facts.pop("status")
        refunded = facts.pop("amount_refunded", None)
        if isinstance(refunded, int):
            row["amount_refunded"] = max(row["amount_refunded"], refunded)
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        facts |= {
            "currency": obj.get("currency"),
            "author_id": metadata.get("authorId") or metadata.get("toUserId"),
            "rule_id": metadata.get("ruleId"),
            "donor_user_id": metadata.get("userId") or metadata.get("fromUserId"),
        }
        # Later events refine what earlier ones said; a field an event does not carry keeps its value.
        row |= {name: value for name, value in facts.items() if value is not None}
        rank = (STATUS_RANK[status], created, event_id)
        if best is None or rank > best:
            best = rank
            row["status"] = status
            row["status_event_id"] = event_id
        row["last_event_id"] = event_id
        row["last_event_at"] = created
    return row
