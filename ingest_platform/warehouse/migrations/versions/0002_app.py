"""Ingest Service (seed 003): app events, Stripe events, donations, crawl items and the audit log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import Json, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    ]


def upgrade() -> None:
    op.create_table(
        "app_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("rule_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text),
        sa.Column("ts", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("ip_hash", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
    )
    op.create_index("ix_app_events_idempotency_key", "app_events", ["idempotency_key"])
    op.create_index("ix_app_events_rule_ts", "app_events", ["rule_id", "ts"])
    op.create_index("ix_app_events_view_dedup", "app_events", ["ip_hash", "rule_id", "received_at"])

    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created", UtcDateTime, nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("handled", sa.Boolean, nullable=False),
        sa.Column("donation_key", sa.Text),
        sa.Column("payload", Json, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
    )
    op.create_index("ix_stripe_events_donation_key", "stripe_events", ["donation_key"])

    op.create_table(
        "donations",
        sa.Column("donation_key", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger),
        sa.Column("amount_refunded", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text),
        sa.Column("author_id", sa.Text),
        sa.Column("rule_id", sa.Text),
        sa.Column("donor_user_id", sa.Text),
        sa.Column("checkout_session_id", sa.Text),
        sa.Column("payment_intent_id", sa.Text),
        sa.Column("charge_id", sa.Text),
        sa.Column("status_event_id", sa.Text, nullable=False),
        sa.Column("last_event_id", sa.Text, nullable=False),
        sa.Column("last_event_at", UtcDateTime, nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_donations_author", "donations", ["author_id"])

    op.create_table(
        "crawl_items",
        sa.Column("source_id", sa.Text, primary_key=True),
        sa.Column("external_id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("raw", Json),
        sa.Column("received_at", UtcDateTime, nullable=False),
        *_timestamps(),
    )

    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Text, primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("ip_hash", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("details", Json),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("crawl_items")
    op.drop_table("donations")
    op.drop_table("stripe_events")
    op.drop_table("app_events")
