"""Tables of the Ingest Service source (seed 003): app events, Stripe events and donations, crawl items, audit log.

Keep in step with migrations 0002, 0005 (the rules dimension) and 0006 (the limits of `ingest_limits`).
"""

import sqlalchemy as sa

from ingest_platform.warehouse.limits import limit_checks
from ingest_platform.warehouse.tables.core import metadata
from ingest_platform.warehouse.types import Json, UtcDateTime

# One row per stored app event. `event_id` is `<request id>:<position>` in its landed document, so reloading a
# file converges; a repeated idempotency key is dropped by the loader (first one wins) and watched by a check.
app_events = sa.Table(
    "app_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("rule_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text),
    sa.Column("ts", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    # HMAC-SHA256 of the client IP under INGEST_IP_HASH_SECRET; never the IP itself.
    sa.Column("ip_hash", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Index("ix_app_events_idempotency_key", "idempotency_key"),
    sa.Index("ix_app_events_rule_ts", "rule_id", "ts"),
    sa.Index("ix_app_events_view_dedup", "ip_hash", "rule_id", "received_at"),
    *limit_checks("app_events"),
)

# Every Stripe event as delivered (first delivery wins), including types the platform does not handle.
stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("created", UtcDateTime, nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("handled", sa.Boolean, nullable=False),
    # The payment intent id, else the checkout session or charge id: which donation the event is about.
    sa.Column("donation_key", sa.Text),
    sa.Column("payload", Json, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Index("ix_stripe_events_donation_key", "donation_key"),
    *limit_checks("stripe_events"),
)

# One row per donation, derived from all its Stripe events; amounts in the currency's minor unit, as Stripe sends.
donations = sa.Table(
    "donations",
    metadata,
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
    sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Index("ix_donations_author", "author_id"),
    *limit_checks("donations"),
)

crawl_items = sa.Table(
    "crawl_items",
    metadata,
    sa.Column("source_id", sa.Text, primary_key=True),
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("raw", Json),
    # When the webhook app received the version stored; an older landed file never overwrites a newer one.
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    *limit_checks("crawl_items"),
)

# Who did what, when, with which outcome: intake requests (accepted and rejected), Stripe events, loads.
# Never a secret nor a payload of personal data: actors are credential slots, clients keyed IP hashes.
audit_log = sa.Table(
    "audit_log",
    metadata,
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
    sa.Index("ix_audit_log_at", "at"),
)

# The rules dimension: who wrote each rule, its tags and model, as the app last sent them (POST /ingest/rules).
# A newer `updated_at` wins; an older landed version never overwrites a newer one.
rules = sa.Table(
    "rules",
    metadata,
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("author_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    sa.Index("ix_rules_author", "author_id"),
    sa.Index("ix_rules_model", "model"),
)

# One row per (rule, tag) of the stored version of each rule: the per-tag leaderboards join it set-based on both
# backends. Replaced whole whenever the rule's version is.
rule_tags = sa.Table(
    "rule_tags",
    metadata,
    sa.Column("rule_id", sa.Text, primary_key=True),
    sa.Column("tag", sa.Text, primary_key=True),
    sa.Index("ix_rule_tags_tag", "tag"),
)
