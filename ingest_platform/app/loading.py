"""The Ingest Service loaders' warehouse work: the writes with their last-line dedups, the donations, the checks.

The assets and checks (assets/app.py) import it when they run: it brings SQLAlchemy, which loading the code
location does without.
"""

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ingest_platform.app.documents import (
    AUDIT_STREAM,
    CRAWL_STREAM,
    EVENTS_STREAM,
    RULES_STREAM,
    STRIPE_STREAM,
    crawl_document,
    event_document,
    fold_donation,
    rejection_document,
    rules_document,
    stripe_document,
)
from ingest_platform.app.rollups import note_donation_days, note_event_days, note_rules_changed
from ingest_platform.warehouse.result import UpsertResult
from ingest_platform.warehouse.tables import (
    app_events,
    audit_log,
    crawl_items,
    donations,
    landing_ledger,
    rule_tags,
    rules,
    stripe_events,
)
from ingest_platform.warehouse.upsert import upsert

# Keep in step with the webhook app's APP_VIEW_DEDUP_SECONDS: stored VIEWs of one rule from one client IP are
# at least this far apart.
VIEW_WINDOW = timedelta(minutes=10)
# Bound on the values of one IN (...) list, far below SQLite's and PostgreSQL's limits.
_IN_CHUNK = 1_000


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


def write_events(connection: sa.Connection, batch: Iterable[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    documents = list(batch)  # read several times below: the dedups need the batch's rows together
    serialize_writers(connection, EVENTS_STREAM)
    rows = _rows(documents)
    kept, repeated_keys = keep_first_claims(connection, app_events, rows, claim="idempotency_key", owner="event_id")
    kept, repeated_views = drop_repeated_views(connection, kept, window=VIEW_WINDOW)
    result = upsert(connection, app_events, kept, key=["event_id"]) if kept else UpsertResult()
    # In the load's transaction: the rollups of these event days are redone exactly when these rows are stored.
    dirty_days = note_event_days(connection, kept)
    return result, {
        "rows": len(rows),
        "duplicates": repeated_keys + repeated_views,
        "duplicate_idempotency_keys": repeated_keys,
        "duplicate_views": repeated_views,
        "rollup_days_noted": dirty_days,
        **_write_audit(connection, documents),
    }


def write_stripe(connection: sa.Connection, batch: Iterable[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    documents = list(batch)  # read several times below: the dedups need the batch's rows together
    serialize_writers(connection, STRIPE_STREAM)
    rows = _rows(documents)
    kept, redelivered = keep_first_claims(connection, stripe_events, rows, claim="event_id", owner="request_id")
    stored = upsert(connection, stripe_events, kept, key=["event_id"]) if kept else UpsertResult()
    keys = {row["donation_key"] for row in kept if row["donation_key"]}
    donation_rows = derive_donations(connection, keys)
    result = upsert(connection, donations, donation_rows, key=["donation_key"]) if donation_rows else UpsertResult()
    # A refund (or any later event) changes the figures of the day the donation was made.
    dirty_days = note_donation_days(connection, keys)
    unhandled = Counter(row["type"] for row in kept if not row["handled"])
    return result, {
        "rows": len(rows),
        "duplicates": redelivered,
        "stripe_events_inserted": stored.inserted,
        "stripe_events_unchanged": stored.unchanged,
        "unhandled_events": sum(unhandled.values()),
        "unhandled_types": dict(sorted(unhandled.items())),  # metadata turns a dict into JSON
        "rollup_days_noted": dirty_days,
        **_write_audit(connection, documents),
    }


def write_crawl(connection: sa.Connection, batch: Iterable[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    documents = list(batch)  # read several times below: the dedups need the batch's rows together
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


def write_rules(connection: sa.Connection, batch: Iterable[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
    """Store each rule's newest version (by `updated_at`, then arrival) and replace its tags with that version's."""
    documents = list(batch)
    serialize_writers(connection, RULES_STREAM)
    landed = _rows(documents)
    newest: dict[str, dict[str, Any]] = {}
    for row in landed:
        held = newest.get(row["rule_id"])
        if held is None or (row["updated_at"], row["received_at"]) >= (held["updated_at"], held["received_at"]):
            newest[row["rule_id"]] = row
    fresh, stale = drop_older_versions(
        connection, rules, list(newest.values()), key=["rule_id"], version=["updated_at", "received_at"]
    )
    rule_rows = [{name: value for name, value in row.items() if name != "tags"} for row in fresh]
    fresh_ids = sorted(row["rule_id"] for row in fresh)
    # The rollups keep each day's author and the boards' tag and model scopes: a change of those (or a rule first
    # seen, whose events may have arrived before it) recomputes the rule's days, in this transaction.
    regrouped = sorted(set(fresh_ids) - _unchanged_grouping(connection, fresh))
    rules_noted = note_rules_changed(connection, regrouped) if regrouped else 0
    result = upsert(connection, rules, rule_rows, key=["rule_id"]) if rule_rows else UpsertResult()
    for chunk in _chunks(fresh_ids):
        connection.execute(sa.delete(rule_tags).where(rule_tags.c.rule_id.in_(chunk)))
    tag_rows = [{"rule_id": row["rule_id"], "tag": tag} for row in fresh for tag in row["tags"]]
    if tag_rows:
        connection.execute(sa.insert(rule_tags), tag_rows)
    return result, {
        "rows": len(landed),
        # Versions repeated in the batch collapse to the newest; a version older than the stored one is skipped.
        "duplicates": len(landed) - len(newest) + stale,
        "stale_rules": stale,
        "tags": len(tag_rows),
        "rollup_days_noted": rules_noted,
        **_write_audit(connection, documents),
    }


def _unchanged_grouping(connection: sa.Connection, fresh: list[dict[str, Any]]) -> set[str]:
    """The rules of `fresh` already stored with the same author, model and tags."""
    ids = [row["rule_id"] for row in fresh]
    stored: dict[str, tuple[Any, ...]] = {}
    tags: defaultdict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(ids):
        for rule_id, author_id, model in connection.execute(
            sa.select(rules.c.rule_id, rules.c.author_id, rules.c.model).where(rules.c.rule_id.in_(chunk))
        ):
            stored[rule_id] = (author_id, model)
        for rule_id, tag in connection.execute(
            sa.select(rule_tags.c.rule_id, rule_tags.c.tag).where(rule_tags.c.rule_id.in_(chunk))
        ):
            tags[rule_id].add(tag)
    return {
        row["rule_id"]
        for row in fresh
        if stored.get(row["rule_id"]) == (row["author_id"], row["model"]) and tags[row["rule_id"]] == set(row["tags"])
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
    connection: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    *,
    key: Sequence[str],
    version: Sequence[str] = ("received_at",),
) -> tuple[list[dict[str, Any]], int]:
    """Rows not older (by the `version` columns, compared in order) than the stored version of their key; how
    many were older."""

    def key_of(row: Mapping[str, Any]) -> tuple:
        return tuple(row[name] for name in key)

    def version_of(row: Mapping[str, Any]) -> tuple:
        return tuple(row[name] for name in version)

    wanted = {key_of(row) for row in rows}
    *leading, last = key
    stored: dict[tuple, tuple] = {}
    for chunk in _chunks(sorted({row[last] for row in rows})):
        query = sa.select(*(table.c[name] for name in key), *(table.c[name] for name in version)).where(
            table.c[last].in_(chunk), *(table.c[name].in_({row[name] for row in rows}) for name in leading)
        )
        for values in connection.execute(query):
            if tuple(values[: len(key)]) in wanted:
                stored[tuple(values[: len(key)])] = tuple(values[len(key) :])
    fresh = [row for row in rows if version_of(row) >= stored.get(key_of(row), version_of(row))]
    return fresh, len(rows) - len(fresh)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


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


# How each stream's documents become rows and reach the warehouse: the arguments of load_landing_files.
LOADS: dict[str, dict[str, Any]] = {
    EVENTS_STREAM: {"rows_from_document": event_document, "write_rows": write_events},
    STRIPE_STREAM: {"rows_from_document": stripe_document, "write_rows": write_stripe},
    CRAWL_STREAM: {"rows_from_document": crawl_document, "write_rows": write_crawl},
    RULES_STREAM: {"rows_from_document": rules_document, "write_rows": write_rules},
    AUDIT_STREAM: {"rows_from_document": rejection_document, "table": audit_log, "key": ["audit_id"]},
}


# --- checks -----------------------------------------------------------------------------------------------------


def repeated_values(connection: sa.Connection, column: sa.Column) -> list[tuple[Any, int]]:
    """Every non-null value stored more than once in `column`, with its count, in order."""
    query = (
        sa.select(column, sa.func.count())
        .where(column.is_not(None))
        .group_by(column)
        .having(sa.func.count() > 1)
        .order_by(column)
    )
    return [(value, count) for value, count in connection.execute(query)]


def negative_donation_keys(connection: sa.Connection) -> list[str]:
    query = sa.select(donations.c.donation_key).where(sa.or_(donations.c.amount < 0, donations.c.amount_refunded < 0))
    return list(connection.scalars(query.order_by(donations.c.donation_key)))
