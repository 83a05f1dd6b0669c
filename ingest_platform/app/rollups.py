"""The Ingest Service rollups (seed 003): daily rule and author metrics, leaderboards, and which days need them.

Every step recomputes one UTC event day with set-based SQL on both backends: DELETE the day's rows, then one
INSERT … SELECT, in the caller's transaction, so a recompute converges (run it twice, same rows). Python only
computes constants (the day's bounds, the decay weights of the trending window).

- `compute_rule_metrics`: per (day, rule) the five counts, VIEWs capped at `view_cap` per keyed IP per rule per day
  (raw views and unique viewers kept too), the day's weighted score, donations made that day to the rule, the
  trending score Σ_{d in last K days} score(d)·2^(-age/half-life), and the rule's cumulative totals (the previous
  snapshot plus the days since, so all-time boards never rescan history).
- `compute_author_metrics`: the author's rules summed (by the rule's author in `rules`), and the donations to the
  author made that day (succeeded and not wholly refunded, net of refunds, per currency in minor units).
- `compute_leaderboards`: daily, weekly (7 days ending that day), monthly (30) and all-time boards of rules and
  authors, scopes global, per tag and per model, top N by score with RANK() (ties share a rank).

A donation belongs to the day of its first Stripe event (when it was made); a refund days later changes that day.
Loads note the event days they touch in `rollup_dirty_days` (`note_*`, called in the load's transaction);
`app_rollup_sensor` turns them into a run from the earliest such day through today (the later days' trending,
windows and cumulative totals depend on it).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ingest_platform.warehouse.tables import (
    app_events,
    author_donation_daily,
    author_metric_daily,
    donations,
    leaderboard_entries,
    rollup_days,
    rollup_dirty_days,
    rule_donation_daily,
    rule_metric_cumulative,
    rule_metric_daily,
    rule_tags,
    rules,
    stripe_events,
)

# Event type → its count column.
COUNT_COLUMNS = {"VIEW": "views", "COPY": "copies", "SAVE": "saves", "FORK": "forks", "VOTE": "votes"}
DEFAULT_WEIGHTS = {"VIEW": 1.0, "COPY": 2.0, "SAVE": 3.0, "FORK": 5.0, "VOTE": 4.0}
# Period → how many days ending on the board's day it sums (all-time reads the cumulative totals).
WINDOW_PERIODS = {"daily": 1, "weekly": 7, "monthly": 30}
ALL_TIME = "all_time"
PERIODS = (*WINDOW_PERIODS, ALL_TIME)
SUBJECTS = ("rule", "author")
SCOPES = ("global", "tag", "model")
# Statuses of a donation whose money arrived (a refund climbs past succeeded; see documents.STATUS_RANK).
PAID_STATUSES = ("succeeded", "partially_refunded", "refunded")
_IN_CHUNK = 1_000


@dataclass(frozen=True)
class RollupSettings:
    """What the rollups are computed with; the asset resource `AppRollupResource` carries the same fields."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    view_cap: int = 5
    trending_half_life_days: float = 3.0
    trending_days: int = 7
    top_n: int = 100

    def __post_init__(self) -> None:
        if set(self.weights) != set(COUNT_COLUMNS):
            raise ValueError(f"weights must name exactly {sorted(COUNT_COLUMNS)}, got {sorted(self.weights)}")
        if any(weight < 0 for weight in self.weights.values()):
            raise ValueError("weights must be >= 0: a trending score is carried only while it is positive")
        if self.view_cap < 1 or self.trending_days < 1 or self.top_n < 1 or self.trending_half_life_days <= 0:
            raise ValueError("view_cap, trending_days and top_n must be >= 1 and the half-life > 0")

    def decay(self, age_days: int) -> float:
        return 2.0 ** (-age_days / self.trending_half_life_days)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


# --- the day's events -------------------------------------------------------------------------------------------


def _per_rule_events(day: date, settings: RollupSettings) -> sa.CTE:
    """(rule_id, views, copies, saves, forks, votes, events, score, raw_views, unique_viewers) of the day's events."""
    start, end = day_bounds(day)
    e = app_events
    in_day = sa.and_(e.c.ts >= start, e.c.ts < end)
    # Only VIEWs are capped, so only they are grouped by keyed IP: those groups are nearly as many as the day's
    # views, and the other types are counted per rule alone (a small aggregate, like the bare GROUP BY's).
    per_type = (
        sa.select(
            e.c.rule_id,
            *(sa.func.sum(sa.case((e.c.type == kind, 1), else_=0)).label(name) for kind, name in COUNT_COLUMNS.items()),
        )
        .where(in_day)
        .group_by(e.c.rule_id)
        .subquery("per_type")
    )
    per_viewer = (
        sa.select(e.c.rule_id, sa.func.count().label("views"))
        .where(in_day, e.c.type == "VIEW")
        .group_by(e.c.rule_id, e.c.ip_hash)
        .subquery("per_viewer")
    )
    capped = sa.case((per_viewer.c.views > settings.view_cap, settings.view_cap), else_=per_viewer.c.views)
    viewers = (
        sa.select(
            per_viewer.c.rule_id,
            sa.func.sum(capped).label("views"),
            sa.func.count().label("unique_viewers"),
        )
        .group_by(per_viewer.c.rule_id)
        .subquery("viewers")
    )
    counts = {"views": sa.func.coalesce(viewers.c.views, 0)} | {
        name: per_type.c[name] for name in COUNT_COLUMNS.values() if name != "views"
    }
    events = sum(counts.values(), sa.literal(0))
    score = sum(
        (counts[name] * sa.literal(float(settings.weights[kind])) for kind, name in COUNT_COLUMNS.items()),
        sa.literal(0.0),
    )
    return (
        sa.select(
            per_type.c.rule_id,
            *(value.label(name) for name, value in counts.items()),
            events.label("events"),
            score.label("score"),
            per_type.c.views.label("raw_views"),
            sa.func.coalesce(viewers.c.unique_viewers, 0).label("unique_viewers"),
        )
        .select_from(per_type.outerjoin(viewers, viewers.c.rule_id == per_type.c.rule_id))
        .cte("per_rule")
    )


def _donations_made(day: date) -> sa.CTE:
    """The paid donations made on `day` (first Stripe event that day), not wholly refunded, with their net amount."""
    start, end = day_bounds(day)
    first_event = sa.func.min(stripe_events.c.created)
    made = (
        sa.select(stripe_events.c.donation_key)
        .where(stripe_events.c.handled.is_(True), stripe_events.c.donation_key.is_not(None))
        .group_by(stripe_events.c.donation_key)
        .having(first_event >= start, first_event < end)
        .subquery("made")
    )
    net = donations.c.amount - donations.c.amount_refunded
    return (
        sa.select(
            donations.c.donation_key,
            donations.c.rule_id,
            sa.func.coalesce(donations.c.author_id, rules.c.author_id).label("author_id"),
            sa.func.coalesce(donations.c.currency, "").label("currency"),
            donations.c.amount,
            donations.c.amount_refunded,
            net.label("net"),
        )
        .select_from(
            donations.join(made, made.c.donation_key == donations.c.donation_key).outerjoin(
                rules, rules.c.rule_id == donations.c.rule_id
            )
        )
        .where(donations.c.status.in_(PAID_STATUSES), donations.c.amount.is_not(None), net > 0)
        .cte("made_donations")
    )


def _give_aggregates_memory(connection: sa.Connection) -> None:
    """A day's (rule, keyed IP) groups outgrow PostgreSQL's default 4 MB of work_mem and spill to disk; this
    transaction alone gets room for them."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL work_mem = '128MB'"))


def _replace_day(connection: sa.Connection, table: sa.Table, day: date, select: sa.Select) -> int:
    connection.execute(sa.delete(table).where(table.c.day == day))
    columns = [column.name for column in select.selected_columns]
    connection.execute(sa.insert(table).from_select(columns, select))
    # Counted, not the cursor's rowcount: SQLite reports -1 for an INSERT its CTEs are written in front of.
    return int(connection.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.day == day)))


# --- rule metrics -----------------------------------------------------------------------------------------------


def compute_rule_metrics(connection: sa.Connection, day: date, settings: RollupSettings) -> dict[str, int]:
    """Recompute `rule_metric_daily`, `rule_donation_daily` and `rule_metric_cumulative` of `day`."""
    _give_aggregates_memory(connection)
    per_rule = _per_rule_events(day, settings)
    made = _donations_made(day)
    rule_donations = (
        sa.select(made.c.rule_id, sa.func.count().label("donations"))
        .where(made.c.rule_id.is_not(None))
        .group_by(made.c.rule_id)
        .subquery("rule_donations")
    )
    earlier = rule_metric_daily
    window_start = day - timedelta(days=settings.trending_days - 1)
    ages = range(1, settings.trending_days)
    decay = (
        sa.case(*((earlier.c.day == day - timedelta(days=age), settings.decay(age)) for age in ages), else_=0.0)
        if ages
        else sa.literal(0.0)
    )
    carried = (
        sa.select(earlier.c.rule_id, sa.func.sum(earlier.c.score * decay).label("trending"))
        .where(earlier.c.day >= window_start, earlier.c.day < day, earlier.c.score > 0)
        .group_by(earlier.c.rule_id)
        .cte("carried")
    )
    keys = sa.union(
        sa.select(per_rule.c.rule_id),
        sa.select(rule_donations.c.rule_id),
        sa.select(carried.c.rule_id),
    ).subquery("keys")

    def count(name: str) -> sa.ColumnElement:
        return sa.func.coalesce(per_rule.c[name], 0)

    score = sa.func.coalesce(per_rule.c.score, 0.0)
    select = sa.select(
        sa.literal(day, sa.Date).label("day"),
        keys.c.rule_id,
        rules.c.author_id,
        *(count(name).label(name) for name in (*COUNT_COLUMNS.values(), "events")),
        score.label("score"),
        count("raw_views").label("raw_views"),
        count("unique_viewers").label("unique_viewers"),
        sa.func.coalesce(rule_donations.c.donations, 0).label("donations"),
        (score + sa.func.coalesce(carried.c.trending, 0.0)).label("trending"),
    ).select_from(
        keys.outerjoin(per_rule, per_rule.c.rule_id == keys.c.rule_id)
        .outerjoin(rule_donations, rule_donations.c.rule_id == keys.c.rule_id)
        .outerjoin(carried, carried.c.rule_id == keys.c.rule_id)
        .outerjoin(rules, rules.c.rule_id == keys.c.rule_id)
    )
    rows = _replace_day(connection, rule_metric_daily, day, select)

    per_currency = sa.select(
        sa.literal(day, sa.Date).label("day"),
        made.c.rule_id,
        made.c.currency,
        sa.func.count().label("donations"),
        sa.func.sum(made.c.net).label("amount"),
    ).where(made.c.rule_id.is_not(None))
    _replace_day(connection, rule_donation_daily, day, per_currency.group_by(made.c.rule_id, made.c.currency))
    _replace_cumulative(connection, day)
    return {"rows": rows, "events": _day_events(connection, day)}


def _day_events(connection: sa.Connection, day: date) -> int:
    """The day's capped events (all rules, known to the dimension or not): every asset reports the same figure."""
    daily = rule_metric_daily
    return int(connection.scalar(sa.select(sa.func.coalesce(sa.func.sum(daily.c.events), 0)).where(daily.c.day == day)))


_CUMULATIVE = (*COUNT_COLUMNS.values(), "events", "score")


def _replace_cumulative(connection: sa.Connection, day: date) -> None:
    """The rules' totals through `day`: the latest earlier snapshot plus the daily rows since (all, if none)."""
    cumulative, daily = rule_metric_cumulative, rule_metric_daily
    previous = connection.scalar(sa.select(sa.func.max(cumulative.c.day)).where(cumulative.c.day < day))
    since = sa.select(daily.c.rule_id, *(daily.c[name] for name in _CUMULATIVE)).where(daily.c.day <= day)
    if previous is None:
        parts = since
    else:
        snapshot = sa.select(cumulative.c.rule_id, *(cumulative.c[name] for name in _CUMULATIVE))
        parts = sa.union_all(snapshot.where(cumulative.c.day == previous), since.where(daily.c.day > previous))
    parts = parts.subquery("parts")
    select = sa.select(
        sa.literal(day, sa.Date).label("day"),
        parts.c.rule_id,
        *(sa.func.sum(parts.c[name]).label(name) for name in _CUMULATIVE),
    ).group_by(parts.c.rule_id)
    _replace_day(connection, cumulative, day, select)


# --- author metrics ---------------------------------------------------------------------------------------------


def compute_author_metrics(connection: sa.Connection, day: date) -> dict[str, int]:
    """Recompute `author_metric_daily` and `author_donation_daily` of `day` from the day's rule metrics."""
    daily = rule_metric_daily
    made = _donations_made(day)
    from_rules = (
        sa.select(
            daily.c.author_id,
            sa.func.sum(sa.case((daily.c.events > 0, 1), else_=0)).label("rules"),
            *(sa.func.sum(daily.c[name]).label(name) for name in (*_CUMULATIVE, "raw_views", "trending")),
        )
        .where(daily.c.day == day, daily.c.author_id.is_not(None))
        .group_by(daily.c.author_id)
        .subquery("from_rules")
    )
    author_donations = (
        sa.select(made.c.author_id, sa.func.count().label("donations"))
        .where(made.c.author_id.is_not(None))
        .group_by(made.c.author_id)
        .subquery("author_donations")
    )
    keys = sa.union(sa.select(from_rules.c.author_id), sa.select(author_donations.c.author_id)).subquery("keys")
    select = sa.select(
        sa.literal(day, sa.Date).label("day"),
        keys.c.author_id,
        *(
            sa.func.coalesce(from_rules.c[name], 0).label(name)
            for name in ("rules", *COUNT_COLUMNS.values(), "events", "score", "raw_views")
        ),
        sa.func.coalesce(author_donations.c.donations, 0).label("donations"),
        sa.func.coalesce(from_rules.c.trending, 0.0).label("trending"),
    ).select_from(
        keys.outerjoin(from_rules, from_rules.c.author_id == keys.c.author_id).outerjoin(
            author_donations, author_donations.c.author_id == keys.c.author_id
        )
    )
    rows = _replace_day(connection, author_metric_daily, day, select)
    per_currency = (
        sa.select(
            sa.literal(day, sa.Date).label("day"),
            made.c.author_id,
            made.c.currency,
            sa.func.count().label("donations"),
            sa.func.sum(made.c.amount).label("amount_gross"),
            sa.func.sum(made.c.amount_refunded).label("amount_refunded"),
            sa.func.sum(made.c.net).label("amount"),
        )
        .where(made.c.author_id.is_not(None))
        .group_by(made.c.author_id, made.c.currency)
    )
    _replace_day(connection, author_donation_daily, day, per_currency)
    return {"rows": rows, "events": _day_events(connection, day)}


# --- leaderboards -----------------------------------------------------------------------------------------------


def _rule_totals(day: date) -> sa.CTE:
    """(period, rule_id, score, events) of every period ending on `day`, rules with events only; the period as
    its position in PERIODS (the boards are ranked by numbers and named at the end)."""
    daily, cumulative = rule_metric_daily, rule_metric_cumulative
    parts = [
        sa.select(
            sa.literal(PERIODS.index(period)).label("period"),
            daily.c.rule_id,
            sa.func.sum(daily.c.score).label("score"),
            sa.func.sum(daily.c.events).label("events"),
        )
        .where(daily.c.day > day - timedelta(days=days), daily.c.day <= day)
        .group_by(daily.c.rule_id)
        .having(sa.func.sum(daily.c.events) > 0)
        for period, days in WINDOW_PERIODS.items()
    ]
    parts.append(
        sa.select(
            sa.literal(PERIODS.index(ALL_TIME)).label("period"),
            cumulative.c.rule_id,
            cumulative.c.score,
            cumulative.c.events,
        ).where(cumulative.c.day == day, cumulative.c.events > 0)
    )
    # A CTE: the six board families read it, and it is computed once.
    return sa.union_all(*parts).cte("totals")


def compute_leaderboards(connection: sa.Connection, day: date, settings: RollupSettings) -> dict[str, int]:
    """Recompute every board of `day` into `leaderboard_entries`; returns rows and the boards' count."""
    _give_aggregates_memory(connection)
    totals = _rule_totals(day)
    rated = (
        sa.select(totals, rules.c.author_id, rules.c.model)
        .select_from(totals.outerjoin(rules, rules.c.rule_id == totals.c.rule_id))
        .cte("rated")
    )

    def scoped_part(scope: str, value: sa.ColumnElement, source: Any) -> sa.Select:
        columns = [rated.c.period, rated.c.rule_id, rated.c.author_id, rated.c.score, rated.c.events]
        return sa.select(
            *columns, sa.literal(SCOPES.index(scope)).label("scope"), value.label("scope_value")
        ).select_from(source)

    # Every rule's totals once per scope it belongs to; the rule boards read it as is, the author boards grouped.
    scoped = sa.union_all(
        scoped_part("global", sa.literal(""), rated),
        scoped_part("tag", rule_tags.c.tag, rated.join(rule_tags, rule_tags.c.rule_id == rated.c.rule_id)),
        scoped_part("model", rated.c.model, rated).where(rated.c.model.is_not(None)),
    ).cte("scoped")
    parts = [
        sa.select(
            scoped.c.period,
            sa.literal(SUBJECTS.index("rule")).label("subject"),
            scoped.c.scope,
            scoped.c.scope_value,
            scoped.c.rule_id.label("subject_id"),
            scoped.c.score,
            scoped.c.events,
        ),
        sa.select(
            scoped.c.period,
            sa.literal(SUBJECTS.index("author")).label("subject"),
            scoped.c.scope,
            scoped.c.scope_value,
            scoped.c.author_id.label("subject_id"),
            sa.func.sum(scoped.c.score).label("score"),
            sa.func.sum(scoped.c.events).label("events"),
        )
        .where(scoped.c.author_id.is_not(None))
        .group_by(scoped.c.period, scoped.c.scope, scoped.c.scope_value, scoped.c.author_id),
    ]
    boards = sa.union_all(*parts).subquery("boards")
    # The window sorts every entry (a few hundred thousand) by its board: period, subject and scope as numbers and
    # the scope's value in byte order (not the locale's) make that sort several times cheaper than four strings.
    scope_value = boards.c.scope_value.collate("C") if connection.dialect.name == "postgresql" else boards.c.scope_value
    rank = sa.func.rank().over(
        partition_by=[boards.c.period, boards.c.subject, boards.c.scope, scope_value],
        order_by=boards.c.score.desc(),
    )

    def named(column: sa.ColumnElement, names: tuple[str, ...]) -> sa.ColumnElement:
        return sa.case(*((column == number, name) for number, name in enumerate(names)))

    ranked = sa.select(
        boards.c.period,
        boards.c.subject,
        boards.c.scope,
        boards.c.scope_value,
        boards.c.subject_id,
        rank.label("rank"),
        boards.c.score,
        boards.c.events,
    ).subquery("ranked")
    top = sa.select(
        sa.literal(day, sa.Date).label("day"),
        named(ranked.c.period, PERIODS).label("period"),
        named(ranked.c.subject, SUBJECTS).label("subject"),
        named(ranked.c.scope, SCOPES).label("scope"),
        ranked.c.scope_value,
        ranked.c.subject_id,
        ranked.c.rank,
        ranked.c.score,
        ranked.c.events,
    ).where(ranked.c.rank <= settings.top_n)
    rows = _replace_day(connection, leaderboard_entries, day, top)
    entries_table = leaderboard_entries
    board_count = connection.scalar(
        sa.select(sa.func.count()).select_from(
            sa.select(
                entries_table.c.period, entries_table.c.subject, entries_table.c.scope, entries_table.c.scope_value
            )
            .where(entries_table.c.day == day)
            .distinct()
            .subquery()
        )
    )
    return {"rows": rows, "boards": int(board_count)}


def record_day(connection: sa.Connection, day: date, *, now: datetime | None = None) -> dict[str, int]:
    """Note that `day`'s rollup completed, with its figures (what `preview` computes, from the stored metrics)."""
    daily = rule_metric_daily
    events, rule_count = connection.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(daily.c.events), 0), sa.func.sum(sa.case((daily.c.events > 0, 1), else_=0))
        ).where(daily.c.day == day)
    ).one()
    authors = connection.scalar(
        sa.select(sa.func.count()).where(author_metric_daily.c.day == day, author_metric_daily.c.events > 0)
    )
    figures = {"events": int(events), "rules": int(rule_count or 0), "authors": int(authors)}
    connection.execute(sa.delete(rollup_days).where(rollup_days.c.day == day))
    connection.execute(sa.insert(rollup_days).values(day=day, computed_at=now or datetime.now(UTC), **figures))
    return figures


def top_entries(connection: sa.Connection, day: date, *, limit: int = 10) -> list[dict[str, Any]]:
    """The global boards' first `limit` ranks of `day`, in (subject, period, rank, id) order."""
    t = leaderboard_entries
    query = (
        sa.select(t.c.subject, t.c.period, t.c.rank, t.c.subject_id, t.c.score, t.c.events)
        .where(t.c.day == day, t.c.scope == "global", t.c.rank <= limit)
        .order_by(t.c.subject, t.c.period, t.c.rank, t.c.subject_id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def boards_markdown(entries: list[dict[str, Any]]) -> str:
    """One markdown table per global board, for the materialization's metadata."""
    sections = []
    for subject in SUBJECTS:
        for period in PERIODS:
            board = [entry for entry in entries if entry["subject"] == subject and entry["period"] == period]
            lines = [f"**{subject} · {period}**", "", f"| rank | {subject} | score | events |", "|---:|---|---:|---:|"]
            lines += [
                f"| {entry['rank']} | {entry['subject_id']} | {entry['score']:g} | {entry['events']} |"
                for entry in board
            ]
            if not board:
                lines.append("| | (empty) | | |")
            sections.append("\n".join(lines))
    return "\n\n".join(sections)


# --- read-only preview (the cron route's dry run) ---------------------------------------------------------------


def preview(
    connection: sa.Connection, *, days: list[date], settings: RollupSettings | None = None
) -> list[dict[str, Any]]:
    """Per day what a rollup would find, read from the raw tables without writing: {day, events, rules, authors}.

    `events` counts the day's events after the VIEW cap (as `rule_metric_daily.events` will), `rules` the rules
    with events, `authors` their distinct authors in the rules dimension. `day` is the partition key.
    """
    settings = settings or RollupSettings()
    figures = []
    for day in days:
        per_rule = _per_rule_events(day, settings)
        events, rule_count, authors = connection.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(per_rule.c.events), 0),
                sa.func.count(per_rule.c.rule_id),
                sa.func.count(sa.distinct(rules.c.author_id)),
            ).select_from(per_rule.outerjoin(rules, rules.c.rule_id == per_rule.c.rule_id))
        ).one()
        figures.append({"day": day.isoformat(), "events": int(events), "rules": rule_count, "authors": authors})
    return figures


# --- what needs recomputing -------------------------------------------------------------------------------------


def note_dirty_days(connection: sa.Connection, days: Iterable[date], *, reason: str) -> int:
    """Record that `days` must be rolled up again (in the caller's transaction); returns how many."""
    noted_at = datetime.now(UTC)
    rows = [{"day": day, "reason": reason, "noted_at": noted_at} for day in sorted(set(days))]
    if rows:
        connection.execute(sa.insert(rollup_dirty_days), rows)
    return len(rows)


def note_event_days(connection: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """The UTC event days of app event rows just written."""
    return note_dirty_days(connection, {row["ts"].astimezone(UTC).date() for row in rows}, reason="app_events")


def note_donation_days(connection: sa.Connection, donation_keys: Iterable[str]) -> int:
    """The days the donations of `donation_keys` were made on: a refund or a late event changes that day."""
    keys = sorted(set(donation_keys))
    first_event = sa.func.min(stripe_events.c.created)
    days: set[date] = set()
    for start in range(0, len(keys), _IN_CHUNK):
        query = (
            sa.select(first_event)
            .where(stripe_events.c.handled.is_(True), stripe_events.c.donation_key.in_(keys[start : start + _IN_CHUNK]))
            .group_by(stripe_events.c.donation_key)
        )
        days.update(created.astimezone(UTC).date() for created in connection.scalars(query) if created is not None)
    return note_dirty_days(connection, days, reason="donations")


def note_rules_changed(connection: sa.Connection, rule_ids: Iterable[str]) -> int:
    """A rule's author, tags or model changed: every day from its first metric day on is recomputed.

    For the rules loader (`app/raw/rules`) to call in its transaction; the author lives in each day's rows and the
    tag and model scopes in every board from that day on.
    """
    ids = sorted(set(rule_ids))
    first: date | None = None
    for start in range(0, len(ids), _IN_CHUNK):
        chunk_first = connection.scalar(
            sa.select(sa.func.min(rule_metric_daily.c.day)).where(
                rule_metric_daily.c.rule_id.in_(ids[start : start + _IN_CHUNK])
            )
        )
        if chunk_first is not None and (first is None or chunk_first < first):
            first = chunk_first
    return note_dirty_days(connection, [first] if first else [], reason="rules")


@dataclass(frozen=True)
class Pending:
    """Dirty days waiting: the earliest, and the newest row id seen (what a run may claim)."""

    first_day: date
    through_id: int
    rows: int


def pending(connection: sa.Connection) -> Pending | None:
    t = rollup_dirty_days
    first_day, through_id, count = connection.execute(
        sa.select(sa.func.min(t.c.day), sa.func.max(t.c.id), sa.func.count())
    ).one()
    if first_day is None:
        return None
    return Pending(first_day=first_day, through_id=int(through_id), rows=int(count))


def claim_dirty(connection: sa.Connection, *, run_id: str, first_day: date, through_id: int) -> int:
    """Take on the dirty rows a run covers (day on or after its first day); rows noted since stay for the next."""
    t = rollup_dirty_days
    update = sa.update(t).where(t.c.id <= through_id, t.c.day >= first_day).values(claimed_by=run_id)
    return connection.execute(update).rowcount


def clear_claimed(connection: sa.Connection, *, run_id: str) -> int:
    """The run succeeded: its claimed rows are done."""
    return connection.execute(sa.delete(rollup_dirty_days).where(rollup_dirty_days.c.claimed_by == run_id)).rowcount


# --- checks (each returns the offending examples; empty means the check passes) -----------------------------------


def cap_violations(connection: sa.Connection, days: list[date], *, view_cap: int) -> list[dict[str, Any]]:
    t = rule_metric_daily
    query = (
        sa.select(t.c.day, t.c.rule_id, t.c.views, t.c.unique_viewers)
        .where(t.c.day.in_(days), t.c.views > view_cap * t.c.unique_viewers)
        .order_by(t.c.day, t.c.rule_id)
        .limit(20)
    )
    return [_jsonable(row._mapping) for row in connection.execute(query)]


def capped_event_count(connection: sa.Connection, day: date, *, view_cap: int) -> int:
    """The day's events with each (rule, keyed IP)'s VIEWs after the first `view_cap` dropped, counted row by row
    (ROW_NUMBER), independently of the rollup's grouped arithmetic."""
    start, end = day_bounds(day)
    e = app_events
    position = sa.func.row_number().over(
        partition_by=[e.c.rule_id, e.c.ip_hash, e.c.type], order_by=[e.c.ts, e.c.event_id]
    )
    numbered = sa.select(e.c.type, position.label("position")).where(e.c.ts >= start, e.c.ts < end).subquery()
    query = sa.select(sa.func.count()).where(sa.or_(numbered.c.type != "VIEW", numbered.c.position <= view_cap))
    return int(connection.scalar(query))


def unreconciled_days(connection: sa.Connection, days: list[date], *, view_cap: int) -> list[dict[str, Any]]:
    """Days whose `rule_metric_daily` events differ from the capped events, or whose counts do not add up."""
    t = rule_metric_daily
    found = []
    for day in days:
        stored, parts = connection.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(t.c.events), 0),
                sa.func.coalesce(sa.func.sum(sum((t.c[name] for name in COUNT_COLUMNS.values()), sa.literal(0))), 0),
            ).where(t.c.day == day)
        ).one()
        expected = capped_event_count(connection, day, view_cap=view_cap)
        if stored != expected or parts != stored:
            found.append(
                {"day": day.isoformat(), "stored": int(stored), "counts_sum": int(parts), "capped_events": expected}
            )
    return found


def author_mismatches(connection: sa.Connection, days: list[date]) -> list[dict[str, Any]]:
    """(day, author) whose stored totals differ from the sum of their rules' rows."""
    daily, authors = rule_metric_daily, author_metric_daily
    summed = (
        sa.select(
            daily.c.day,
            daily.c.author_id,
            sa.func.sum(daily.c.events).label("events"),
            sa.func.sum(daily.c.score).label("score"),
        )
        .where(daily.c.day.in_(days), daily.c.author_id.is_not(None))
        .group_by(daily.c.day, daily.c.author_id)
        .subquery("summed")
    )
    stored = (
        sa.select(authors.c.day, authors.c.author_id, authors.c.events, authors.c.score)
        .where(authors.c.day.in_(days))
        .subquery("stored")
    )
    joined_left = (
        sa.select(
            summed.c.day,
            summed.c.author_id,
            summed.c.events.label("rules_events"),
            stored.c.events.label("author_events"),
        )
        .select_from(
            summed.outerjoin(stored, sa.and_(stored.c.day == summed.c.day, stored.c.author_id == summed.c.author_id))
        )
        .where(
            sa.or_(
                stored.c.author_id.is_(None),
                stored.c.events != summed.c.events,
                sa.func.abs(stored.c.score - summed.c.score) > 1e-6,
            )
        )
    )
    joined_right = (
        sa.select(
            stored.c.day,
            stored.c.author_id,
            sa.literal(0).label("rules_events"),
            stored.c.events.label("author_events"),
        )
        .select_from(
            stored.outerjoin(summed, sa.and_(stored.c.day == summed.c.day, stored.c.author_id == summed.c.author_id))
        )
        .where(summed.c.author_id.is_(None), stored.c.events != 0)
    )
    return [_jsonable(row._mapping) for row in connection.execute(sa.union_all(joined_left, joined_right).limit(20))]


def donation_mismatches(connection: sa.Connection, through: date) -> list[dict[str, Any]]:
    """Per currency: the donations to authors stored in `author_donation_daily` through `through` against
    `donations` (paid, not wholly refunded, net of refunds, made on or before that day)."""
    _, end = day_bounds(through)
    first_event = sa.func.min(stripe_events.c.created)
    made = (
        sa.select(stripe_events.c.donation_key)
        .where(stripe_events.c.handled.is_(True), stripe_events.c.donation_key.is_not(None))
        .group_by(stripe_events.c.donation_key)
        .having(first_event < end)
        .subquery()
    )
    net = donations.c.amount - donations.c.amount_refunded
    author = sa.func.coalesce(donations.c.author_id, rules.c.author_id)
    currency = sa.func.coalesce(donations.c.currency, "")
    source = dict(
        (row[0], (int(row[1]), int(row[2])))
        for row in connection.execute(
            sa.select(currency, sa.func.count(), sa.func.sum(net))
            .select_from(
                donations.join(made, made.c.donation_key == donations.c.donation_key).outerjoin(
                    rules, rules.c.rule_id == donations.c.rule_id
                )
            )
            .where(donations.c.status.in_(PAID_STATUSES), donations.c.amount.is_not(None), net > 0, author.is_not(None))
            .group_by(currency)
        )
    )
    t = author_donation_daily
    stored = dict(
        (row[0], (int(row[1]), int(row[2])))
        for row in connection.execute(
            sa.select(t.c.currency, sa.func.sum(t.c.donations), sa.func.sum(t.c.amount))
            .where(t.c.day <= through)
            .group_by(t.c.currency)
        )
    )
    return [
        {"currency": currency, "donations": source.get(currency), "stored": stored.get(currency)}
        for currency in sorted(set(source) | set(stored))
        if source.get(currency) != stored.get(currency)
    ]


def rank_gaps(connection: sa.Connection, days: list[date], *, top_n: int) -> list[dict[str, Any]]:
    """Entries whose rank is not 1 + the number of better scores on their board (RANK() semantics), or > top_n."""
    t = leaderboard_entries
    better = t.alias("better")
    better_count = (
        sa.select(sa.func.count())
        .where(
            better.c.day == t.c.day,
            better.c.period == t.c.period,
            better.c.subject == t.c.subject,
            better.c.scope == t.c.scope,
            better.c.scope_value == t.c.scope_value,
            better.c.score > t.c.score,
        )
        .scalar_subquery()
    )
    query = (
        sa.select(t.c.day, t.c.period, t.c.subject, t.c.scope, t.c.scope_value, t.c.subject_id, t.c.rank)
        .where(t.c.day.in_(days), sa.or_(t.c.rank != better_count + 1, t.c.rank > top_n))
        .order_by(t.c.day, t.c.period, t.c.subject, t.c.scope, t.c.scope_value, t.c.rank)
        .limit(20)
    )
    return [_jsonable(row._mapping) for row in connection.execute(query)]


def yesterday_freshness(connection: sa.Connection, *, now: datetime, grace: timedelta) -> dict[str, Any]:
    """Whether yesterday (UTC) is final: once `grace` has passed since it ended, it must have been rolled up after
    its end, with nothing noted dirty on or before it."""
    yesterday = now.astimezone(UTC).date() - timedelta(days=1)
    _, end = day_bounds(yesterday)
    computed_at = connection.scalar(sa.select(rollup_days.c.computed_at).where(rollup_days.c.day == yesterday))
    waiting = connection.scalar(sa.select(sa.func.count()).where(rollup_dirty_days.c.day <= yesterday))
    due = now >= end + grace
    final = computed_at is not None and computed_at >= end and not waiting
    return {
        "day": yesterday.isoformat(),
        "due": due,
        "passed": final or not due,
        "computed_at": computed_at.isoformat() if computed_at else None,
        "dirty_rows": int(waiting),
    }


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):  # PostgreSQL's sum() of bigints
            return int(value) if value == value.to_integral_value() else float(value)
        return value

    return {key: plain(value) for key, value in row.items()}
