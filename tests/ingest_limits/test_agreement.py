"""The edge and the tables agree on every limit of `ingest_limits`: a value just over a limit is refused by the
webhook app (422) and by the table's constraint when inserted directly, on PostgreSQL and SQLite; the value at the
limit passes both. Values the column types refuse by themselves (NUL, NaN in JSON, integers beyond BIGINT) are
shown refused by the warehouse as well."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingest_limits import (
    BIGINT_MAX,
    BTREE_ROW_MAX_BYTES,
    EARLIEST_TIME,
    END_OF_TIME,
    KEY_COLUMN_CHARS,
    LATEST_EPOCH_SECONDS,
    TIME_COLUMNS,
    UTF8_MAX_BYTES_PER_CHARACTER,
)
from ingest_platform.warehouse import tables
from tests.webhook_app.intake_support import make_app
from tests.webhook_app.test_limits import WIDE, app_event, bigtop, crawl_item, intent, post, stripe_event

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ROWS: dict[str, dict[str, Any]] = {
    "events": {"source_id": 5, "external_id": "uid-1", "title": "Trivia", "start_utc": NOW},
    "app_events": {
        "event_id": "req:0",
        "type": "VIEW",
        "rule_id": "rule-1",
        "ts": NOW,
        "received_at": NOW,
        "ip_hash": "0" * 64,
        "request_id": "req",
    },
    "crawl_items": {
        "source_id": "partner",
        "external_id": "item-1",
        "url": "https://example.org/a",
        "title": "A",
        "received_at": NOW,
    },
    "stripe_events": {
        "event_id": "evt_1",
        "type": "payment_intent.succeeded",
        "created": NOW,
        "livemode": False,
        "handled": True,
        "payload": {},
        "received_at": NOW,
        "request_id": "req",
    },
    "donations": {
        "donation_key": "pi_1",
        "status": "succeeded",
        "amount_refunded": 0,
        "status_event_id": "evt_1",
        "last_event_id": "evt_1",
        "last_event_at": NOW,
    },
}


def crawl_source(value: str):
    url, body, headers = crawl_item()
    return url, json.dumps(json.loads(body) | {"sourceId": value}), headers


def stripe_event_id(value: str):
    return stripe_event(intent(), id=value)


# How a value reaches each limited column through the edge.
KEY_INTAKES: dict[tuple[str, str], Callable[[str], tuple[str, str, dict[str, str]]]] = {
    ("events", "external_id"): lambda value: bigtop(external_id=value),
    ("app_events", "rule_id"): lambda value: app_event(ruleId=value),
    ("app_events", "user_id"): lambda value: app_event(userId=value),
    ("app_events", "idempotency_key"): lambda value: app_event(idempotencyKey=value),
    ("crawl_items", "source_id"): crawl_source,
    ("crawl_items", "external_id"): lambda value: crawl_item(externalId=value),
    ("stripe_events", "event_id"): stripe_event_id,
    ("stripe_events", "donation_key"): lambda value: stripe_event(intent(id=value)),
    ("donations", "donation_key"): lambda value: stripe_event(intent(id=value)),
    ("donations", "author_id"): lambda value: stripe_event(intent(metadata={"authorId": value})),
}
KEY_CASES = [(table, column, chars) for table, columns in KEY_COLUMN_CHARS.items() for column, chars in columns.items()]

# Each time column, the bound checked and a value on each side of it, as the edge receives it and as the table.
JUST_BEFORE_END = END_OF_TIME - timedelta(seconds=1)
JUST_BEFORE_START = EARLIEST_TIME - timedelta(seconds=1)
TIME_CASES = [
    ("events", "start_utc", JUST_BEFORE_END, END_OF_TIME, lambda at: bigtop(start_utc=at.isoformat())),
    (
        "events",
        "end_utc",
        JUST_BEFORE_END,
        END_OF_TIME,
        lambda at: bigtop(start_utc="2026-03-05T23:00:00Z", end_utc=at.isoformat()),
    ),
    ("events", "start_utc", EARLIEST_TIME, JUST_BEFORE_START, lambda at: bigtop(start_utc=at.isoformat())),
    # An app event from the future is refused for being early, so its column shows the lower bound.
    ("app_events", "ts", EARLIEST_TIME, JUST_BEFORE_START, lambda at: app_event(ts=at.isoformat())),
    (
        "stripe_events",
        "created",
        datetime.fromtimestamp(LATEST_EPOCH_SECONDS, UTC),
        END_OF_TIME,
        lambda at: stripe_event(intent(), created=int(at.timestamp())),
    ),
]


def test_every_limited_column_has_an_intake_case_and_a_table_constraint() -> None:
    assert set(KEY_INTAKES) == {(table, column) for table, column, _ in KEY_CASES}
    assert {(table, column) for table, column, *_ in TIME_CASES} == {
        (table, column) for table, columns in TIME_COLUMNS.items() for column in columns
    }
    for table, columns in KEY_COLUMN_CHARS.items():
        names = {constraint.name for constraint in tables.metadata.tables[table].constraints}
        assert {f"ck_{table}_{column}_length" for column in columns} <= names


def test_the_widest_index_row_of_every_limited_table_fits_postgresql_btree() -> None:
    for table_name, limits in KEY_COLUMN_CHARS.items():
        table = tables.metadata.tables[table_name]
        indexes = [list(table.primary_key.columns), *(list(index.columns) for index in table.indexes)]
        for columns in indexes:
            text_columns = [column for column in columns if isinstance(column.type, sa.Text)]
            if not any(column.name in limits for column in text_columns):
                continue
            # Every text column of an index that holds a limited one is itself limited (or written by the platform).
            widest = sum(
                limits.get(column.name, 64) * UTF8_MAX_BYTES_PER_CHARACTER + 8 for column in text_columns
            ) + 8 * (len(columns) - len(text_columns))
            assert widest < BTREE_ROW_MAX_BYTES, (table_name, [column.name for column in columns], widest)


def insert(warehouse, table: str, **changes: Any) -> None:
    with warehouse.engine.begin() as connection:
        connection.execute(tables.metadata.tables[table].insert().values({**ROWS[table], **changes}))


def edge_status(data_dir: Path, request) -> int:
    client = make_app(data_dir / "landing", BIGTOP_INGEST_TOKEN="bigtop-limits-token").test_client()
    return post(client, request).status_code


@pytest.mark.parametrize(("table", "column", "chars"), KEY_CASES, ids=[f"{t}.{c}" for t, c, _ in KEY_CASES])
def test_a_key_one_character_over_its_limit_is_refused_by_the_edge_and_the_table(
    warehouse, data_dir: Path, table: str, column: str, chars: int
) -> None:
    # Stripe's ids are ASCII by their pattern; every other key is filled with four-byte characters.
    filler = "x" if (table, column) == ("stripe_events", "event_id") else WIDE
    at_limit = ("evt_" if filler == "x" else "") + filler * (chars - (4 if filler == "x" else 0))
    over = at_limit + filler

    assert edge_status(data_dir, KEY_INTAKES[(table, column)](over)) == 422
    with pytest.raises(sa.exc.IntegrityError):
        insert(warehouse, table, **{column: over})

    assert edge_status(data_dir, KEY_INTAKES[(table, column)](at_limit)) in (200, 202)
    insert(warehouse, table, **{column: at_limit})


@pytest.mark.parametrize(
    ("table", "column", "inside", "outside", "request_at"),
    TIME_CASES,
    ids=[f"{case[0]}.{case[1]}-{'upper' if case[3] == END_OF_TIME else 'lower'}" for case in TIME_CASES],
)
def test_a_time_just_outside_the_range_is_refused_by_the_edge_and_the_table(
    warehouse, data_dir: Path, table: str, column: str, inside: datetime, outside: datetime, request_at
) -> None:
    assert edge_status(data_dir, request_at(outside)) == 422
    with pytest.raises(sa.exc.IntegrityError):
        insert(warehouse, table, **{column: outside})

    assert edge_status(data_dir, request_at(inside)) in (200, 202)
    insert(warehouse, table, **{column: inside})


@pytest.mark.parametrize(
    ("table", "changes", "backends"),
    [
        ("donations", {"amount": BIGINT_MAX + 1}, {"sqlite", "postgresql"}),
        ("events", {"title": "Tri\x00via"}, {"postgresql"}),
        ("crawl_items", {"raw": {"a": "x\x00"}}, {"postgresql"}),
        ("crawl_items", {"raw": {"a": float("nan")}}, {"postgresql"}),
        ("events", {"title": "Tri\ud800via"}, {"sqlite", "postgresql"}),
    ],
    ids=["bigint-overflow", "nul-in-text", "nul-in-json", "nan-in-json", "lone-surrogate"],
)
def test_what_the_column_types_refuse_by_themselves(warehouse, table: str, changes: dict, backends: set[str]) -> None:
    """Why these limits need no constraint; on SQLite a NUL or a NaN would be stored, the edge refuses them for
    PostgreSQL's sake (the production backend)."""
    backend = warehouse.engine.dialect.name
    if backend not in backends:
        insert(warehouse, table, **changes)
        return
    with pytest.raises((sa.exc.StatementError, ValueError, OverflowError, UnicodeEncodeError)):
        insert(warehouse, table, **changes)
