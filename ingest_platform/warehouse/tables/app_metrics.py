"""Tables of the Ingest Service rollups (seed 003): daily rule and author metrics, their donations, the all-time
cumulative totals, leaderboard snapshots, and the bookkeeping of which event days need recomputing.

Every metric table is keyed by the UTC event day first, so a partition's recompute is one `DELETE … WHERE day = ?`
plus one `INSERT … SELECT`. Keep in step with migration 0008.
"""

import sqlalchemy as sa

from ingest_platform.warehouse.tables.app import app_events
from ingest_platform.warehouse.tables.core import metadata
from ingest_platform.warehouse.types import UtcDateTime

# A day's rollup reads `app_events` by `ts` range; the (rule_id, ts) index cannot serve that, and without this one
# each day would scan the whole history.
sa.Index("ix_app_events_ts", app_events.c.ts)


def _counts() -> list[sa.Column]:
    return [
        # VIEWs after the cap of 5 per keyed IP per rule per day.
        sa.Column("views", sa.BigInteger, nullable=False),
        sa.Column("copies", sa.BigInteger, nullable=False),
        sa.Column("saves", sa.BigInteger, nullable=False),
        sa.Column("forks", sa.BigInteger, nullable=False),
        sa.Column("votes", sa.BigInteger, nullable=False),
        # The capped events: views + copies + saves + forks + votes.
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
    ]


# One row per (day, rule) with events or donations that day, or a trending score still carried from the last K days.
rule_metric_daily = sa.Table(
    "rule_metric_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    # `rules.author_id` when the day was computed (null for a rule the dimension does not know): an author change
    # is found by comparing it with the dimension.
    sa.Column("author_id", sa.Text),
    *_counts(),
    sa.Column("raw_views", sa.BigInteger, nullable=False),
    sa.Column("unique_viewers", sa.BigInteger, nullable=False),
    sa.Column("donations", sa.BigInteger, nullable=False),
    sa.Column("trending", sa.Float, nullable=False),
    sa.Index("ix_rule_metric_daily_rule", "rule_id", "day"),
)

# Donations attributed to a rule on the day they were made, per currency in its minor unit, net of refunds.
rule_donation_daily = sa.Table(
    "rule_donation_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("donations", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)

# The author's rules of the day summed (by the rules' current author), plus what was donated to the author.
author_metric_daily = sa.Table(
    "author_metric_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("author_id", sa.Text, primary_key=True),
    sa.Column("rules", sa.BigInteger, nullable=False),
    *_counts(),
    sa.Column("raw_views", sa.BigInteger, nullable=False),
    sa.Column("donations", sa.BigInteger, nullable=False),
    sa.Column("trending", sa.Float, nullable=False),
)

author_donation_daily = sa.Table(
    "author_donation_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("author_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("donations", sa.BigInteger, nullable=False),
    sa.Column("amount_gross", sa.BigInteger, nullable=False),
    sa.Column("amount_refunded", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)

# Each rule's totals from the first day through `day`: the previous snapshot plus the days since, so the all-time
# boards never rescan history.
rule_metric_cumulative = sa.Table(
    "rule_metric_cumulative",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rule_id", sa.Text, primary_key=True),
    *_counts(),
)

# The top N of every board of a day: period daily|weekly|monthly|all_time, subject rule|author, scope
# global|tag|model with its value ('' for global). Ties share a rank (RANK()); readers order by (rank, subject_id).
leaderboard_entries = sa.Table(
    "leaderboard_entries",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("subject", sa.Text, primary_key=True),
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("scope_value", sa.Text, primary_key=True),
    sa.Column("subject_id", sa.Text, primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
)

# One row per event day whose rollup completed (all three assets), with its figures: the freshness check and the
# cron route's dry run read it.
rollup_days = sa.Table(
    "rollup_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("rules", sa.BigInteger, nullable=False),
    sa.Column("authors", sa.BigInteger, nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)

# Event days a load changed, written in the load's own transaction; `app_rollup_sensor` turns them into runs and
# the run that
# covered them deletes them once it succeeded. Ids only grow (AUTOINCREMENT on SQLite too).
rollup_dirty_days = sa.Table(
    "rollup_dirty_days",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("noted_at", UtcDateTime, nullable=False),
    # The rollup run that took the row on; a row whose run failed is taken on again by the next one.
    sa.Column("claimed_by", sa.Text),
    sqlite_autoincrement=True,
)
