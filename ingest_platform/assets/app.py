"""The Ingest Service intake (seed 003): app events, Stripe donations, crawl items and the audit trail.

The webhook app lands one document per accepted request in the `app_events`, `stripe_events` and `crawl_items`
streams, each with the request's audit record inside; a rejected request's record lands alone in `app_audit`.
Each stream has a landing sensor and a raw asset partitioned by the day the files landed. The loaders are the last
line of every dedup the app does: a repeated idempotency key, a VIEW within the window of a stored one, a Stripe
event delivered twice, an older crawl of an item never overwrite what is stored.
"""

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict

from ingest_platform.loading import LandingBatchConfig, RowsFromDocument, WriteRows, load_landing_files
from ingest_platform.partitions import landed_daily
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import (
    app_events,
    audit_log,
    crawl_items,
    donations,
    landing_ledger,
    stripe_events,
)
from ingest_platform.warehouse.upsert import UpsertResult, upsert

EVENTS_STREAM = "app_events"
STRIPE_STREAM = "stripe_events"
CRAWL_STREAM = "crawl_items"
AUDIT_STREAM = "app_audit"
# Keep in step with the webhook app's APP_VIEW_DEDUP_SECONDS: stored VIEWs of one rule from one client IP are
# at least this far apart.
VIEW_WINDOW = timedelta(minutes=10)
# Bound on the values of one IN (...) list, far below SQLite's and PostgreSQL's limits.
_IN_CHUNK = 1_000


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


def rejection_document(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [LandedRejection.model_validate(document["payload"]).audit.model_dump()]


# --- writing ----------------------------------------------------------------------------------------------------


def serialize_writers(connection: sa.Connection, name: str) -> None:
    """Make concurrent loads of `name` take turns until this transaction ends.

    The last-line dedups, the version check and the donation fold read what is stored and then write: two runs
    doing that at once would each miss the other's rows (a donation could even fold without its refund).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})
    else:
        # SQLite has one writer at a time, and a write statement takes that lock even when it changes nothing.
        connection.execute(sa.update(landing_ledger).where(sa.false()).values(rows=landing_ledger.c.rows))


def write_events(connection: sa.Connection, documents: list[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    serialize_writers(connection, EVENTS_STREAM)
    rows = _rows(documents)
    kept, repeated_keys = keep_first_claims(connection, app_events, rows, claim="idempotency_key", owner="event_id")
    kept, repeated_views = drop_repeated_views(connection, kept, window=VIEW_WINDOW)
    result = upsert(connection, app_events, kept, key=["event_id"]) if kept else UpsertResult()
    return result, {
        "rows": len(rows),
        "duplicates": repeated_keys + repeated_views,
        "duplicate_idempotency_keys": repeated_keys,
        "duplicate_views": repeated_views,
        **_write_audit(connection, documents),
    }


def write_stripe(connection: sa.Connection, documents: list[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    serialize_writers(connection, STRIPE_STREAM)
    rows = _rows(documents)
    kept, redelivered = keep_first_claims(connection, stripe_events, rows, claim="event_id", owner="request_id")
    stored = upsert(connection, stripe_events, kept, key=["event_id"]) if kept else UpsertResult()
    keys = {row["donation_key"] for row in kept if row["donation_key"]}
    donation_rows = derive_donations(connection, keys)
    result = upsert(connection, donations, donation_rows, key=["donation_key"]) if donation_rows else UpsertResult()
    unhandled = Counter(row["type"] for row in kept if not row["handled"])
    return result, {
        "rows": len(rows),
        "duplicates": redelivered,
        "stripe_events_inserted": stored.inserted,
        "stripe_events_unchanged": stored.unchanged,
        "unhandled_events": sum(unhandled.values()),
        "unhandled_types": dg.MetadataValue.json(dict(sorted(unhandled.items()))),
        **_write_audit(connection, documents),
    }


def write_crawl(connection: sa.Connection, documents: list[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    serialize_writers(connection, CRAWL_STREAM)
    rows = _rows(documents)
    fresh, stale = drop_older_versions(connection, crawl_items, rows, key=["source_id", "external_id"])
    result = upsert(connection, crawl_items, fresh, key=["source_id", "external_id"]) if fresh else UpsertResult()
    return result, {
        "rows": len(rows),
        # Items repeated in the batch collapse to the newest; an item older than the stored one is skipped.
        "duplicates": len(fresh) - result.rows + stale,
        "stale_items": stale,
        **_write_audit(connection, documents),
    }


def _rows(documents: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [row for document in documents for row in document["rows"]]


def _write_audit(connection: sa.Connection, documents: list[dict[str, Any]]) -> dict[str, int]:
    written = upsert(connection, audit_log, [document["audit"] for document in documents], key=["audit_id"])
    return {"audit_records": written.rows}


def keep_first_claims(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *, claim: str, owner: str
) -> tuple[list[dict[str, Any]], int]:
    """Rows whose `claim` value is new or already held by the same `owner`; the first claimant wins for good.

    A reloaded file keeps its rows (same owner: the upsert finds them unchanged); a repeat from another request is
    dropped. Returns the rows kept and how many were dropped.
    """
    values = sorted({row[claim] for row in rows if row[claim] is not None})
    holders: dict[Any, Any] = {}
    for chunk in _chunks(values):
        query = sa.select(table.c[claim], table.c[owner]).where(table.c[claim].in_(chunk))
        holders.update((value, holder) for value, holder in connection.execute(query))
    kept = [row for row in rows if row[claim] is None or holders.setdefault(row[claim], row[owner]) == row[owner]]
    return kept, len(rows) - len(kept)


def drop_repeated_views(
    connection: sa.Connection, rows: list[dict[str, Any]], *, window: timedelta
) -> tuple[list[dict[str, Any]], int]:
    """Drop VIEWs received within `window` of a stored (or earlier kept) VIEW of the same rule and client IP."""
    views = sorted((row for row in rows if row["type"] == "VIEW"), key=lambda row: row["received_at"])
    if not views:
        return rows, 0
    earliest = views[0]["received_at"] - window
    latest = views[-1]["received_at"] + window
    seen: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for chunk in _chunks(sorted({row["ip_hash"] for row in views})):
        query = sa.select(app_events.c.ip_hash, app_events.c.rule_id, app_events.c.received_at, app_events.c.event_id)
        query = query.where(
            app_events.c.type == "VIEW",
            app_events.c.ip_hash.in_(chunk),
            app_events.c.received_at > earliest,
            app_events.c.received_at < latest,
        )
        for ip_hash, rule_id, received_at, event_id in connection.execute(query):
            seen[(ip_hash, rule_id)].append((received_at, event_id))

    dropped: set[str] = set()
    for row in views:
        stored = seen[(row["ip_hash"], row["rule_id"])]
        if any(event_id == row["event_id"] for _, event_id in stored):
            continue  # a reload of this very event
        if any(abs(row["received_at"] - at) < window for at, _ in stored):
            dropped.add(row["event_id"])
            continue
        stored.append((row["received_at"], row["event_id"]))
    return [row for row in rows if row["event_id"] not in dropped], len(dropped)


def drop_older_versions(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *, key: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """Rows not older (by `received_at`) than the stored version of their key; how many were older."""

    def key_of(row: Mapping[str, Any]) -> tuple:
        return tuple(row[name] for name in key)

    wanted = {key_of(row) for row in rows}
    *leading, last = key
    stored: dict[tuple, datetime] = {}
    for chunk in _chunks(sorted({row[last] for row in rows})):
        query = sa.select(*(table.c[name] for name in key), table.c.received_at).where(
            table.c[last].in_(chunk), *(table.c[name].in_({row[name] for row in rows}) for name in leading)
        )
        for *values, received_at in connection.execute(query):
            if tuple(values) in wanted:
                stored[tuple(values)] = received_at
    fresh = [row for row in rows if row["received_at"] >= stored.get(key_of(row), row["received_at"])]
    return fresh, len(rows) - len(fresh)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


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


def derive_donations(connection: sa.Connection, keys: set[str]) -> list[dict[str, Any]]:
    """The donations of `keys`, each folded from all its stored events: the same rows whatever the arrival order."""
    events_by_key: dict[str, list[tuple[datetime, str, str, Mapping[str, Any]]]] = defaultdict(list)
    for chunk in _chunks(sorted(keys)):
        query = sa.select(
            stripe_events.c.donation_key,
            stripe_events.c.created,
            stripe_events.c.event_id,
            stripe_events.c.type,
            stripe_events.c.payload,
        ).where(stripe_events.c.handled.is_(True), stripe_events.c.donation_key.in_(chunk))
        for key, created, event_id, event_type, payload in connection.execute(query):
            events_by_key[key].append((created, event_id, event_type, payload))
    return [fold_donation(key, events) for key, events in sorted(events_by_key.items())]


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


# --- assets -----------------------------------------------------------------------------------------------------


def _record_load(
    warehouse: WarehouseResource, context: dg.AssetExecutionContext, stream: str, result: dg.MaterializeResult
) -> None:
    """The load's own audit record: which run loaded what, with its counts."""
    counts = {name: value for name, value in (result.metadata or {}).items() if isinstance(value, int)}
    warehouse.upsert(
        table=audit_log,
        rows=[
            {
                "audit_id": f"load:{stream}:{context.run.run_id}:{context.partition_key}",
                "at": datetime.now(UTC),
                "actor": "dagster",
                "action": f"load.{stream}",
                "outcome": "loaded",
                "status": None,
                "error": None,
                "ip_hash": None,
                "request_id": context.run.run_id,
                "details": {"partition": context.partition_key, **counts},
            }
        ],
        key=["audit_id"],
    )


def _landing_asset(
    *,
    name: str,
    stream: str,
    description: str,
    rows_from_document: RowsFromDocument,
    write_rows: WriteRows | None = None,
    table: sa.Table | None = None,
    key: Sequence[str] = (),
) -> dg.AssetsDefinition:
    @dg.asset(
        key=["app", "raw", name],
        group_name="app",
        partitions_def=landed_daily,
        kinds={"sql"},
        description=f"{description} Partitioned by the UTC day the files landed in the {stream!r} stream.",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: LandingBatchConfig,
        landing: LandingZoneResource,
        warehouse: WarehouseResource,
    ) -> dg.MaterializeResult:
        result = load_landing_files(
            context,
            config=config,
            stream=stream,
            landing=landing,
            warehouse=warehouse,
            rows_from_document=rows_from_document,
            write_rows=write_rows,
            table=table,
            key=key,
        )
        _record_load(warehouse, context, stream, result)
        return result

    return _asset


app_raw_events = _landing_asset(
    name="events",
    stream=EVENTS_STREAM,
    description="App events from POST /ingest/events into `app_events` (with their audit records), the first of "
    "each idempotency key kept and VIEWs within 10 minutes of a stored one from the same client dropped.",
    rows_from_document=event_document,
    write_rows=write_events,
)
app_raw_donations = _landing_asset(
    name="donations",
    stream=STRIPE_STREAM,
    description="Stripe events from POST /ingest/stripe/webhook into `stripe_events` (first delivery wins), and "
    "`donations` folded from every stored event of each donation, so its status never moves backwards.",
    rows_from_document=stripe_document,
    write_rows=write_stripe,
)
app_raw_crawl_items = _landing_asset(
    name="crawl_items",
    stream=CRAWL_STREAM,
    description="Crawled items from POST /ingest/crawl, upserted into `crawl_items` by (source_id, external_id); "
    "an older landed version never overwrites a newer one.",
    rows_from_document=crawl_document,
    write_rows=write_crawl,
)
app_raw_audit_log = _landing_asset(
    name="audit_log",
    stream=AUDIT_STREAM,
    description="Audit records of rejected intake requests into `audit_log` (accepted requests' records load "
    "with their data; loads record themselves).",
    rows_from_document=rejection_document,
    table=audit_log,
    key=["audit_id"],
)

APP_LANDING_ASSETS = {
    EVENTS_STREAM: app_raw_events,
    STRIPE_STREAM: app_raw_donations,
    CRAWL_STREAM: app_raw_crawl_items,
    AUDIT_STREAM: app_raw_audit_log,
}

app_load_jobs = {
    stream: dg.define_asset_job(
        f"app_{asset.key.path[-1]}_load_job",
        selection=[asset],
        description=f"Loads landed {stream!r} files; requested by its landing sensor.",
    )
    for stream, asset in APP_LANDING_ASSETS.items()
}


# --- checks -----------------------------------------------------------------------------------------------------


def _duplicates(warehouse: WarehouseResource, column: sa.Column) -> dg.AssetCheckResult:
    query = (
        sa.select(column, sa.func.count())
        .where(column.is_not(None))
        .group_by(column)
        .having(sa.func.count() > 1)
        .order_by(column)
    )
    with warehouse.engine.connect() as connection:
        repeated = connection.execute(query).all()
    return dg.AssetCheckResult(
        passed=not repeated,
        metadata={
            "duplicated_values": len(repeated),
            "examples": dg.MetadataValue.json({str(value): count for value, count in repeated[:20]}),
        },
    )


@dg.asset_check(asset=app_raw_events, description="No idempotency key is stored twice in `app_events`.")
def no_duplicate_idempotency_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _duplicates(warehouse, app_events.c.idempotency_key)


@dg.asset_check(asset=app_raw_donations, description="No Stripe event id is stored twice in `stripe_events`.")
def no_duplicate_stripe_event_ids(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    return _duplicates(warehouse, stripe_events.c.event_id)


@dg.asset_check(asset=app_raw_donations, description="Every donation amount and refunded amount is >= 0.")
def donation_amounts_non_negative(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    query = sa.select(donations.c.donation_key).where(sa.or_(donations.c.amount < 0, donations.c.amount_refunded < 0))
    with warehouse.engine.connect() as connection:
        negative = connection.scalars(query.order_by(donations.c.donation_key)).all()
    return dg.AssetCheckResult(
        passed=not negative,
        metadata={"negative_donations": len(negative), "examples": dg.MetadataValue.json(negative[:20])},
    )


APP_ASSET_CHECKS = [no_duplicate_idempotency_keys, no_duplicate_stripe_event_ids, donation_amounts_non_negative]
