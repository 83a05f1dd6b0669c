"""Ingest Service (seed 003): the rules dimension, rules and their tags, for the rollups and the search index.

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import UtcDateTime

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("author_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False, server_default=sa.func.current_timestamp()),
    )
    op.create_index("ix_rules_author", "rules", ["author_id"])
    op.create_index("ix_rules_model", "rules", ["model"])
    op.create_table(
        "rule_tags",
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("tag", sa.Text, primary_key=True),
    )
    op.create_index("ix_rule_tags_tag", "rule_tags", ["tag"])


def downgrade() -> None:
    op.drop_table("rule_tags")
    op.drop_table("rules")
