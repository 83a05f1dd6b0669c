"""Ingest Service (seed 003): the rollups' tables (daily rule and author metrics, donations per day, cumulative
totals, leaderboards, rollup bookkeeping) and the index by event time the rollups read `app_events` through.

Revision ID: 0008
Revises: 0006 (the limits on `app_events`, whose new index this adds)
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import UtcDateTime

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def _counts() -> list[sa.Column]:
    return [
        sa.Column("views", sa.BigInteger, nullable=False),
        sa.Column("copies", sa.BigInteger, nullable=False),
        sa.Column("saves", sa.BigInteger, nullable=False),
        sa.Column("forks", sa.BigInteger, nullable=False),
        sa.Column("votes", sa.BigInteger, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
    ]


def upgrade() -> None:
    op.create_index("ix_app_events_ts", "app_events", ["ts"])
    op.create_table(
        "rule_metric_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("author_id", sa.Text),
        *_counts(),
        sa.Column("raw_views", sa.BigInteger, nullable=False),
        sa.Column("unique_viewers", sa.BigInteger, nullable=False),
        sa.Column("donations", sa.BigInteger, nullable=False),
        sa.Column("trending", sa.Float, nullable=False),
    )
    op.create_index("ix_rule_metric_daily_rule", "rule_metric_daily", ["rule_id", "day"])
    op.create_table(
        "rule_donation_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("currency", sa.Text, primary_key=True),
        sa.Column("donations", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "author_metric_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("author_id", sa.Text, primary_key=True),
        sa.Column("rules", sa.BigInteger, nullable=False),
        *_counts(),
        sa.Column("raw_views", sa.BigInteger, nullable=False),
        sa.Column("donations", sa.BigInteger, nullable=False),
        sa.Column("trending", sa.Float, nullable=False),
    )
    op.create_table(
        "author_donation_daily",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("author_id", sa.Text, primary_key=True),
        sa.Column("currency", sa.Text, primary_key=True),
        sa.Column("donations", sa.BigInteger, nullable=False),
        sa.Column("amount_gross", sa.BigInteger, nullable=False),
        sa.Column("amount_refunded", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rule_metric_cumulative",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rule_id", sa.Text, primary_key=True),
        *_counts(),
    )
    op.create_table(
        "leaderboard_entries",
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
    op.create_table(
        "rollup_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("rules", sa.BigInteger, nullable=False),
        sa.Column("authors", sa.BigInteger, nullable=False),
        sa.Column("computed_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "rollup_dirty_days",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("noted_at", UtcDateTime, nullable=False),
        sa.Column("claimed_by", sa.Text),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for table in (
        "rollup_dirty_days",
        "rollup_days",
        "leaderboard_entries",
        "rule_metric_cumulative",
        "author_donation_daily",
        "author_metric_daily",
        "rule_donation_daily",
        "rule_metric_daily",
    ):
        op.drop_table(table)
    op.drop_index("ix_app_events_ts", table_name="app_events")
