"""The rollups' SQL on both backends, against tables computed by hand (rollup_fixture.py says how)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from ingest_platform.app import rollups
from ingest_platform.warehouse.tables import (
    author_donation_daily,
    author_metric_daily,
    donations,
    leaderboard_entries,
    rollup_dirty_days,
    rule_donation_daily,
    rule_metric_cumulative,
    rule_metric_daily,
    rule_tags,
    rules,
)
from tests.ingest_platform.app.rollup_fixture import (
    BOARD_DAY,
    SETTINGS,
    all_days,
    at,
    event,
    fixture_events,
    insert_fixture_donations,
    insert_rules,
    load_events,
    roll_up,
)
from tests.landing_files import audit_record

D = date

# (day, rule, author, views, copies, saves, forks, votes, events, score, raw_views, unique_viewers, donations, trending)
EXPECTED_RULE_METRICS = [
    (D(2026, 3, 1), "r3", "a2", 0, 1, 0, 0, 0, 1, 2.0, 0, 0, 0, 2.0),
    (D(2026, 3, 2), "r2", "a1", 0, 0, 0, 0, 1, 1, 4.0, 0, 0, 0, 4.0),
    (D(2026, 3, 2), "r3", "a2", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 1.0),  # trending carried: 2 · 2^-1
    (D(2026, 3, 3), "r2", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 2.0),
    (D(2026, 3, 3), "r3", "a2", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0.5),
    (D(2026, 3, 4), "r2", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 1.0),  # r3 is out of its 3-day window
    (D(2026, 3, 24), "r1", "a1", 0, 0, 0, 1, 0, 1, 5.0, 0, 0, 0, 5.0),
    (D(2026, 3, 25), "r1", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 2.5),
    (D(2026, 3, 25), "r2", "a1", 0, 0, 1, 0, 0, 1, 3.0, 0, 0, 0, 3.0),
    (D(2026, 3, 26), "r1", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 1.25),
    (D(2026, 3, 26), "r2", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 1.5),
    (D(2026, 3, 27), "r2", "a1", 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0.75),
    # IP A's 7 views capped at 5, plus B's 2 (its third, 2 minutes after one, never stored); pi_1 made that day.
    (D(2026, 3, 30), "r1", "a1", 7, 0, 0, 0, 0, 7, 7.0, 9, 2, 1, 7.0),
    (D(2026, 3, 30), "r3", "a2", 0, 0, 0, 0, 1, 1, 4.0, 0, 0, 0, 4.0),
    (D(2026, 3, 30), "r4", None, 0, 1, 0, 0, 0, 1, 2.0, 0, 0, 0, 2.0),  # its repeated idempotency key dropped
    (D(2026, 3, 31), "r1", "a1", 1, 0, 0, 0, 0, 1, 1.0, 1, 1, 0, 4.5),
    (D(2026, 3, 31), "r2", "a1", 0, 0, 0, 1, 0, 1, 5.0, 0, 0, 0, 5.0),  # pi_3 wholly refunded, pi_4 failed
    (D(2026, 3, 31), "r3", "a2", 0, 0, 0, 1, 0, 1, 5.0, 0, 0, 0, 7.0),
    (D(2026, 3, 31), "r4", None, 0, 0, 0, 0, 1, 1, 4.0, 0, 0, 0, 5.0),
]

# (day, author, rules, views, copies, saves, forks, votes, events, score, raw_views, donations, trending)
EXPECTED_AUTHOR_METRICS = [
    (D(2026, 3, 1), "a2", 1, 0, 1, 0, 0, 0, 1, 2.0, 0, 0, 2.0),
    (D(2026, 3, 2), "a1", 1, 0, 0, 0, 0, 1, 1, 4.0, 0, 0, 4.0),
    (D(2026, 3, 2), "a2", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 1.0),
    (D(2026, 3, 3), "a1", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 2.0),
    (D(2026, 3, 3), "a2", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0.5),
    (D(2026, 3, 4), "a1", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 1.0),
    (D(2026, 3, 24), "a1", 1, 0, 0, 0, 1, 0, 1, 5.0, 0, 0, 5.0),
    (D(2026, 3, 25), "a1", 1, 0, 0, 1, 0, 0, 1, 3.0, 0, 0, 5.5),
    (D(2026, 3, 26), "a1", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 2.75),
    (D(2026, 3, 27), "a1", 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, 0.75),
    (D(2026, 3, 30), "a1", 1, 7, 0, 0, 0, 0, 7, 7.0, 9, 1, 7.0),
    (D(2026, 3, 30), "a2", 1, 0, 0, 0, 0, 1, 1, 4.0, 0, 0, 4.0),
    (D(2026, 3, 31), "a1", 2, 1, 0, 0, 1, 0, 2, 6.0, 1, 0, 9.5),
    (D(2026, 3, 31), "a2", 1, 0, 0, 0, 1, 0, 1, 5.0, 0, 1, 7.0),
]

# (day, author, currency, donations, gross, refunded, net) and (day, rule, currency, donations, net)
EXPECTED_AUTHOR_DONATIONS = [
    (D(2026, 3, 30), "a1", "usd", 1, 1000, 0, 1000),
    (D(2026, 3, 31), "a2", "eur", 1, 500, 0, 500),
]
EXPECTED_RULE_DONATIONS = [(D(2026, 3, 30), "r1", "usd", 1, 1000)]

# The boards of 2026-03-31, top 3 (RANK(): ties share a rank, the next rank skips): (period, id, rank, score, events)
EXPECTED_GLOBAL_BOARDS = {
    "rule": [
        ("all_time", "r1", 1, 13.0, 9),
        ("all_time", "r2", 2, 12.0, 3),
        ("all_time", "r3", 3, 11.0, 3),  # its 03-01 copy counts here only
        ("daily", "r2", 1, 5.0, 1),
        ("daily", "r3", 1, 5.0, 1),
        ("daily", "r4", 3, 4.0, 1),  # r1 (rank 4) is cut
        ("monthly", "r1", 1, 13.0, 9),
        ("monthly", "r2", 2, 12.0, 3),
        ("monthly", "r3", 3, 9.0, 2),
        ("weekly", "r3", 1, 9.0, 2),
        ("weekly", "r1", 2, 8.0, 8),  # its 03-24 fork is a minute outside the week
        ("weekly", "r2", 2, 8.0, 2),
    ],
    "author": [
        ("all_time", "a1", 1, 25.0, 12),
        ("all_time", "a2", 2, 11.0, 3),
        ("daily", "a1", 1, 6.0, 2),
        ("daily", "a2", 2, 5.0, 1),
        ("monthly", "a1", 1, 25.0, 12),
        ("monthly", "a2", 2, 9.0, 2),
        ("weekly", "a1", 1, 16.0, 10),
        ("weekly", "a2", 2, 9.0, 2),
    ],
}
# The weekly boards of the tag and model scopes: (subject, scope, value, id, rank, score, events)
EXPECTED_WEEKLY_SCOPED_BOARDS = [
    ("author", "model", "claude", "a1", 1, 8.0, 2),
    ("author", "model", "gpt", "a2", 1, 9.0, 2),
    ("author", "model", "gpt", "a1", 2, 8.0, 8),
    ("author", "tag", "t1", "a1", 1, 16.0, 10),
    ("author", "tag", "t2", "a2", 1, 9.0, 2),
    ("author", "tag", "t2", "a1", 2, 8.0, 8),
    ("rule", "model", "claude", "r2", 1, 8.0, 2),
    ("rule", "model", "gpt", "r3", 1, 9.0, 2),
    ("rule", "model", "gpt", "r1", 2, 8.0, 8),
    ("rule", "tag", "t1", "r1", 1, 8.0, 8),
    ("rule", "tag", "t1", "r2", 1, 8.0, 2),
    ("rule", "tag", "t2", "r3", 1, 9.0, 2),
    ("rule", "tag", "t2", "r1", 2, 8.0, 8),
]


def select_rows(connection: sa.Connection, table: sa.Table, *columns: str, where=None, order_by=()) -> list[tuple]:
    query = sa.select(*(table.c[name] for name in columns))
    if where is not None:
        query = query.where(where)
    return [tuple(row) for row in connection.execute(query.order_by(*(table.c[name] for name in order_by)))]


RULE_COLUMNS = [
    "day",
    "rule_id",
    "author_id",
    "views",
    "copies",
    "saves",
    "forks",
    "votes",
    "events",
    "score",
    "raw_views",
    "unique_viewers",
    "donations",
    "trending",
]
AUTHOR_COLUMNS = [
    "day",
    "author_id",
    "rules",
    "views",
    "copies",
    "saves",
    "forks",
    "votes",
    "events",
    "score",
    "raw_views",
    "donations",
    "trending",
]


def rule_metrics(connection) -> list[tuple]:
    return select_rows(connection, rule_metric_daily, *RULE_COLUMNS, order_by=("day", "rule_id"))


def author_metrics(connection) -> list[tuple]:
    return select_rows(connection, author_metric_daily, *AUTHOR_COLUMNS, order_by=("day", "author_id"))


def global_boards(connection, subject: str, day: date = BOARD_DAY) -> list[tuple]:
    t = leaderboard_entries
    return select_rows(
        connection,
        t,
        "period",
        "subject_id",
        "rank",
        "score",
        "events",
        where=sa.and_(t.c.day == day, t.c.subject == subject, t.c.scope == "global"),
        order_by=("period", "rank", "subject_id"),
    )


def weekly_scoped_boards(connection) -> list[tuple]:
    t = leaderboard_entries
    return select_rows(
        connection,
        t,
        "subject",
        "scope",
        "scope_value",
        "subject_id",
        "rank",
        "score",
        "events",
        where=sa.and_(t.c.day == BOARD_DAY, t.c.period == "weekly", t.c.scope != "global"),
        order_by=("subject", "scope", "scope_value", "rank", "subject_id"),
    )


@pytest.fixture
def world(warehouse):
    """The fixture loaded and rolled up from its first day to the board day."""
    with warehouse.begin() as connection:
        insert_rules(connection)
        insert_fixture_donations(connection)
        figures = load_events(connection, fixture_events())
    assert (figures["duplicate_idempotency_keys"], figures["duplicate_views"]) == (1, 1)
    with warehouse.begin() as connection:
        roll_up(connection, all_days())
        connection.execute(sa.delete(rollup_dirty_days))  # what the run that covered them does
    return warehouse


def test_the_rollups_match_the_hand_computed_tables(world) -> None:
    with world.engine.connect() as connection:
        assert rule_metrics(connection) == EXPECTED_RULE_METRICS
        assert author_metrics(connection) == EXPECTED_AUTHOR_METRICS
        assert (
            select_rows(
                connection,
                author_donation_daily,
                *["day", "author_id", "currency", "donations", "amount_gross", "amount_refunded", "amount"],
                order_by=("day", "author_id", "currency"),
            )
            == EXPECTED_AUTHOR_DONATIONS
        )
        assert (
            select_rows(
                connection,
                rule_donation_daily,
                "day",
                "rule_id",
                "currency",
                "donations",
                "amount",
                order_by=("day", "rule_id"),
            )
            == EXPECTED_RULE_DONATIONS
        )
        assert global_boards(connection, "rule") == EXPECTED_GLOBAL_BOARDS["rule"]
        assert global_boards(connection, "author") == EXPECTED_GLOBAL_BOARDS["author"]
        assert weekly_scoped_boards(connection) == EXPECTED_WEEKLY_SCOPED_BOARDS


def test_recomputing_converges(world) -> None:
    with world.engine.connect() as connection:
        before = (rule_metrics(connection), author_metrics(connection), global_boards(connection, "rule"))
    with world.begin() as connection:
        rollups_days = [BOARD_DAY - timedelta(days=1), BOARD_DAY]
        roll_up(connection, rollups_days)
        roll_up(connection, rollups_days)
    with world.engine.connect() as connection:
        assert (rule_metrics(connection), author_metrics(connection), global_boards(connection, "rule")) == before
        assert (
            connection.scalar(
                sa.select(sa.func.count())
                .select_from(rule_metric_cumulative)
                .where(rule_metric_cumulative.c.day == BOARD_DAY)
            )
            == 4
        )


def test_all_time_comes_from_the_previous_snapshot_not_from_history(world) -> None:
    """Deleting the daily rows before yesterday changes nothing: the all-time board reads yesterday's snapshot."""
    with world.begin() as connection:
        connection.execute(sa.delete(rule_metric_daily).where(rule_metric_daily.c.day < BOARD_DAY - timedelta(days=1)))
        rollups.compute_rule_metrics(
            connection, BOARD_DAY, rollups.RollupSettings(trending_days=1, top_n=3, trending_half_life_days=1.0)
        )
        rollups.compute_leaderboards(connection, BOARD_DAY, SETTINGS)
    with world.engine.connect() as connection:
        all_time = [row for row in global_boards(connection, "rule") if row[0] == "all_time"]
    assert all_time == [row for row in EXPECTED_GLOBAL_BOARDS["rule"] if row[0] == "all_time"]


def test_a_refund_days_later_updates_the_day_the_donation_was_made(world) -> None:
    with world.begin() as connection:
        connection.execute(
            sa.update(donations)
            .where(donations.c.donation_key == "pi_1")
            .values(status="partially_refunded", amount_refunded=300)
        )
        assert rollups.note_donation_days(connection, ["pi_1"]) == 1
        pending = rollups.pending(connection)
        assert pending.first_day == D(2026, 3, 30)
        roll_up(connection, all_days(pending.first_day))
        assert select_rows(
            connection,
            author_donation_daily,
            "day",
            "author_id",
            "currency",
            "donations",
            "amount_gross",
            "amount_refunded",
            "amount",
            order_by=("day", "author_id"),
        ) == [
            (D(2026, 3, 30), "a1", "usd", 1, 1000, 300, 700),
            (D(2026, 3, 31), "a2", "eur", 1, 500, 0, 500),
        ]
        assert select_rows(connection, rule_donation_daily, "day", "rule_id", "currency", "donations", "amount") == [
            (D(2026, 3, 30), "r1", "usd", 1, 700)
        ]


def test_a_rule_changing_author_and_tags_marks_its_days(world) -> None:
    with world.begin() as connection:
        connection.execute(sa.update(rules).where(rules.c.rule_id == "r2").values(author_id="a2"))
        connection.execute(sa.delete(rule_tags).where(rule_tags.c.rule_id == "r2"))
        connection.execute(sa.insert(rule_tags).values(rule_id="r2", tag="t2"))
        assert rollups.note_rules_changed(connection, ["r2"]) == 1
        pending = rollups.pending(connection)
        assert pending.first_day == D(2026, 3, 2)  # r2's first metric day
        roll_up(connection, all_days(pending.first_day))
        boards = {(row[0], row[1]): row[2:] for row in global_boards(connection, "author")}
        assert boards[("all_time", "a2")] == (1, 23.0, 6)  # r3's 11 + r2's 12
        assert boards[("all_time", "a1")] == (2, 13.0, 9)
        t = leaderboard_entries
        t1 = select_rows(
            connection,
            t,
            "subject_id",
            where=sa.and_(
                t.c.day == BOARD_DAY,
                t.c.period == "weekly",
                t.c.subject == "rule",
                t.c.scope == "tag",
                t.c.scope_value == "t1",
            ),
        )
        assert t1 == [("r1",)]


def test_preview_reads_the_raw_tables_and_writes_nothing(warehouse) -> None:
    with warehouse.begin() as connection:
        insert_rules(connection)
        load_events(connection, fixture_events())
        connection.execute(sa.delete(rollup_dirty_days))
    with warehouse.engine.connect() as connection:
        figures = rollups.preview(connection, days=[D(2026, 3, 30), D(2026, 3, 31), D(2026, 3, 5)])
        assert figures == [
            {"day": "2026-03-30", "events": 9, "rules": 3, "authors": 2},
            {"day": "2026-03-31", "events": 4, "rules": 4, "authors": 2},
            {"day": "2026-03-05", "events": 0, "rules": 0, "authors": 0},
        ]
        assert connection.scalar(sa.select(sa.func.count()).select_from(rule_metric_daily)) == 0
        assert connection.scalar(sa.select(sa.func.count()).select_from(rollup_dirty_days)) == 0


def test_loads_note_the_event_days_they_touch(warehouse) -> None:
    late = event(at(D(2026, 3, 20), 9), "r1", "A", "COPY", received_at=at(D(2026, 3, 31), 9))
    with warehouse.begin() as connection:
        figures = load_events(connection, [late, event(at(D(2026, 3, 31), 9), "r2", "A", "COPY")], name="late")
        assert figures["rollup_days_noted"] == 2
        assert rollups.pending(connection).first_day == D(2026, 3, 20)


@pytest.mark.parametrize(
    ("weights", "cap", "days", "top"),
    [
        ({"VIEW": 1.0}, 5, 7, 100),
        (rollups.DEFAULT_WEIGHTS, 0, 7, 100),
        (rollups.DEFAULT_WEIGHTS, 5, 0, 100),
        (rollups.DEFAULT_WEIGHTS | {"FORK": -1.0}, 5, 7, 100),
    ],
    ids=["weights-missing-types", "cap-zero", "window-zero", "negative-weight"],
)
def test_settings_refuse_nonsense(weights, cap, days, top) -> None:
    with pytest.raises(ValueError):
        rollups.RollupSettings(weights=weights, view_cap=cap, trending_days=days, top_n=top)


def test_freshness_of_yesterday(warehouse) -> None:
    now = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    grace = timedelta(hours=2)
    with warehouse.begin() as connection:
        # Not due yet (within the grace), not computed: passes.
        assert rollups.yesterday_freshness(connection, now=datetime(2026, 4, 1, 1, tzinfo=UTC), grace=grace)["passed"]
        assert not rollups.yesterday_freshness(connection, now=now, grace=grace)["passed"]
        rollups.record_day(connection, D(2026, 3, 31), now=datetime(2026, 3, 31, 23, tzinfo=UTC))
        assert not rollups.yesterday_freshness(connection, now=now, grace=grace)["passed"]  # before the day ended
        rollups.record_day(connection, D(2026, 3, 31), now=datetime(2026, 4, 1, 2, 5, tzinfo=UTC))
        assert rollups.yesterday_freshness(connection, now=now, grace=grace)["passed"]
        rollups.note_dirty_days(connection, [D(2026, 3, 31)], reason="test")
        assert not rollups.yesterday_freshness(connection, now=now, grace=grace)["passed"]


def _rules_load(connection: sa.Connection, *versions: dict) -> dict:
    from ingest_platform.app.loading import write_rules

    received = datetime(2026, 4, 2, tzinfo=UTC)
    rows = [
        {"summary": None, "received_at": received, "request_id": "req-rules", "updated_at": received, **version}
        for version in versions
    ]
    _, figures = write_rules(connection, [{"rows": rows, "audit": {**audit_record("ingest.rules"), "at": received}}])
    return figures


@pytest.mark.parametrize(
    ("change", "noted_from"),
    [
        ({"title": "A new title"}, None),
        ({"author_id": "a2"}, D(2026, 3, 2)),
        ({"model": "gpt"}, D(2026, 3, 2)),
        ({"tags": ["t1", "t9"]}, D(2026, 3, 2)),
    ],
    ids=["title-only", "author", "model", "tags"],
)
def test_the_rules_loader_marks_a_regrouped_rules_days_and_nothing_else(world, change: dict, noted_from) -> None:
    """Through the real loader: only a change of what the rollups group by (author, model, tags) redoes days."""
    r2 = {"rule_id": "r2", "author_id": "a1", "title": "Rule two", "model": "claude", "tags": ["t1"]}
    with world.begin() as connection:
        figures = _rules_load(connection, {**r2, **change})
        pending = rollups.pending(connection)
    assert figures["rollup_days_noted"] == (0 if noted_from is None else 1)
    assert (pending.first_day if pending else None) == noted_from
