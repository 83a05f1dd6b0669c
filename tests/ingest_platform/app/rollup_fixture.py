"""A small hand-computed world for the rollups: four rules, two authors, three keyed IPs, events over a month.

Loaded through the real loader step (`write_events`), so its last-line dedups drop the fixture's duplicates; the
rules dimension and the donations are inserted directly. The expected tables are in test_rollups.py.

Settings: default weights (VIEW 1, COPY 2, SAVE 3, FORK 5, VOTE 4), cap 5, half-life 1 day over 3 days (decay 1,
0.5, 0.25), top 3. The board day is 2026-03-31: its week starts 03-25 (03-24 is outside), its month 03-02 (03-01
is outside, all-time includes it).
"""

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import sqlalchemy as sa

from ingest_platform.app.loading import write_events
from ingest_platform.app.rollups import (
    RollupSettings,
    compute_author_metrics,
    compute_leaderboards,
    compute_rule_metrics,
    record_day,
)
from ingest_platform.warehouse.tables import donations, rule_tags, rules, stripe_events

SETTINGS = RollupSettings(trending_half_life_days=1.0, trending_days=3, top_n=3)
FIRST_DAY = date(2026, 3, 1)
BOARD_DAY = date(2026, 3, 31)
RULES = [
    # rule_id, author_id, model, tags
    ("r1", "a1", "gpt", ["t1", "t2"]),
    ("r2", "a1", "claude", ["t1"]),
    ("r3", "a2", "gpt", ["t2"]),
    # r4 is not in the dimension: it has global rule boards only, and no author.
]
_ids = count()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def event(
    ts: datetime, rule_id: str, ip: str, kind: str, *, key: str | None = None, received_at: datetime | None = None
) -> dict[str, Any]:
    return {
        "event_id": f"req:{next(_ids)}",
        "idempotency_key": key,
        "type": kind,
        "rule_id": rule_id,
        "user_id": None,
        "ts": ts,
        "received_at": received_at or ts,
        "ip_hash": f"hash-{ip}",
        "request_id": "req",
    }


def fixture_events() -> list[dict[str, Any]]:
    d = date
    march30, march31 = d(2026, 3, 30), d(2026, 3, 31)
    rows = [
        event(at(d(2026, 3, 1), 9), "r3", "C", "COPY"),
        event(at(d(2026, 3, 2), 9), "r2", "C", "VOTE"),
        event(at(d(2026, 3, 24), 23, 59), "r1", "A", "FORK"),  # one minute outside the board day's week
        event(at(d(2026, 3, 25), 0, 0), "r2", "B", "SAVE"),  # the first minute of it
    ]
    # 03-30: seven VIEWs of r1 from IP A, 15 minutes apart (all stored; the cap keeps 5), two from B.
    rows += [event(at(march30, 0) + timedelta(minutes=15 * i), "r1", "A", "VIEW") for i in range(7)]
    rows += [
        event(at(march30, 12), "r1", "B", "VIEW"),
        event(at(march30, 12, 2), "r1", "B", "VIEW"),  # within 10 minutes of the last: the loader drops it
        event(at(march30, 13), "r1", "B", "VIEW"),
        event(at(march30, 14), "r3", "A", "VOTE"),
        event(at(march30, 15), "r4", "B", "COPY", key="copy-1"),
        event(at(march30, 16), "r4", "B", "COPY", key="copy-1"),  # a repeated idempotency key: dropped
    ]
    rows += [
        event(at(march31, 8), "r1", "A", "VIEW"),
        event(at(march31, 9), "r2", "A", "FORK"),
        event(at(march31, 10), "r3", "C", "FORK"),
        event(at(march31, 11), "r4", "C", "VOTE"),
    ]
    return rows


def audit_record(name: str) -> dict[str, Any]:
    return {
        "audit_id": f"test:{name}",
        "at": datetime(2026, 4, 1, tzinfo=UTC),
        "actor": "test",
        "action": "ingest.events",
        "outcome": "accepted",
        "status": 202,
        "error": None,
        "ip_hash": None,
        "request_id": name,
        "details": {},
    }


def load_events(connection: sa.Connection, rows: list[dict[str, Any]], name: str = "fixture") -> dict[str, Any]:
    _, figures = write_events(connection, [{"rows": rows, "audit": audit_record(name)}])
    return figures


def insert_rules(connection: sa.Connection) -> None:
    for rule_id, author_id, model, tags in RULES:
        connection.execute(
            sa.insert(rules).values(
                rule_id=rule_id,
                author_id=author_id,
                title=f"Rule {rule_id}",
                model=model,
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                received_at=datetime(2026, 1, 1, tzinfo=UTC),
                request_id="rules",
            )
        )
        connection.execute(sa.insert(rule_tags), [{"rule_id": rule_id, "tag": tag} for tag in tags])


def insert_donation(
    connection: sa.Connection,
    key: str,
    *,
    made: datetime,
    status: str,
    amount: int,
    currency: str,
    refunded: int = 0,
    author_id: str | None = None,
    rule_id: str | None = None,
) -> None:
    """A donation as the loader folds it, with the Stripe event that made it (its day is that event's)."""
    connection.execute(
        sa.insert(stripe_events).values(
            event_id=f"evt_{key}",
            type="payment_intent.succeeded",
            created=made,
            livemode=False,
            handled=True,
            donation_key=key,
            payload={},
            received_at=made,
            request_id="stripe",
        )
    )
    connection.execute(
        sa.insert(donations).values(
            donation_key=key,
            status=status,
            amount=amount,
            amount_refunded=refunded,
            currency=currency,
            author_id=author_id,
            rule_id=rule_id,
            status_event_id=f"evt_{key}",
            last_event_id=f"evt_{key}",
            last_event_at=made,
        )
    )


def insert_fixture_donations(connection: sa.Connection) -> None:
    march30, march31 = date(2026, 3, 30), date(2026, 3, 31)
    # To a1 through r1; refunded in part later (test_a_refund_days_later…), succeeded for now.
    insert_donation(
        connection, "pi_1", made=at(march30, 10), status="succeeded", amount=1000, currency="usd", rule_id="r1"
    )
    # To a2 directly (no rule), in another currency.
    insert_donation(
        connection, "pi_2", made=at(march31, 10), status="succeeded", amount=500, currency="eur", author_id="a2"
    )
    # Wholly refunded and failed: neither counts.
    insert_donation(
        connection,
        "pi_3",
        made=at(march31, 11),
        status="refunded",
        amount=200,
        refunded=200,
        currency="usd",
        rule_id="r2",
    )
    insert_donation(connection, "pi_4", made=at(march31, 12), status="failed", amount=900, currency="usd", rule_id="r2")


def roll_up(connection: sa.Connection, days: list[date], settings: RollupSettings = SETTINGS) -> None:
    """What one app_rollup_job run does for `days`, in order."""
    for day in days:
        compute_rule_metrics(connection, day, settings)
    for day in days:
        compute_author_metrics(connection, day)
    for day in days:
        compute_leaderboards(connection, day, settings)
        record_day(connection, day)


def all_days(first: date = FIRST_DAY, last: date = BOARD_DAY) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
