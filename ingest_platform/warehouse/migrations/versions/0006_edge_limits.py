"""The limits of `ingest_limits` as CHECK constraints: key lengths the btree indexes hold, times within 1900-2200.

The values are written out here, as they were when this migration was made; a later change of a limit is a new
migration. On PostgreSQL the constraints are added NOT VALID: they hold for every row written from now on, and a
row an older intake let through (a year-10000 event) does not stop the upgrade; `ALTER TABLE … VALIDATE
CONSTRAINT` checks the old rows once they are cleaned up. On SQLite each table is rebuilt (batch mode) to take its
constraints, which checks the rows it copies.

Revision ID: 0006
Revises: 0005
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ingest_platform.warehouse.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2201, 1, 1, tzinfo=UTC)
KEY_COLUMN_CHARS = {
    "events": {"external_id": 512},
    "app_events": {"rule_id": 191, "user_id": 191, "idempotency_key": 200},
    "crawl_items": {"source_id": 191, "external_id": 191},
    "stripe_events": {"event_id": 255, "donation_key": 255},
    "donations": {"donation_key": 255, "author_id": 191},
}
TIME_COLUMNS = {"events": ("start_utc", "end_utc"), "app_events": ("ts",), "stripe_events": ("created",)}


def upgrade() -> None:
    for table, columns in KEY_COLUMN_CHARS.items():
        with op.batch_alter_table(table) as batch:
            for column, chars in columns.items():
                batch.create_check_constraint(
                    f"ck_{table}_{column}_length", f"length({column}) <= {chars}", postgresql_not_valid=True
                )
            for column in TIME_COLUMNS.get(table, ()):
                value = sa.column(column, UtcDateTime)
                batch.create_check_constraint(
                    f"ck_{table}_{column}_range",
                    sa.and_(
                        value >= sa.literal(EARLIEST_TIME, UtcDateTime), value < sa.literal(END_OF_TIME, UtcDateTime)
                    ),
                    postgresql_not_valid=True,
                )


def downgrade() -> None:
    for table, columns in KEY_COLUMN_CHARS.items():
        with op.batch_alter_table(table) as batch:
            for column in TIME_COLUMNS.get(table, ()):
                batch.drop_constraint(f"ck_{table}_{column}_range", type_="check")
            for column in columns:
                batch.drop_constraint(f"ck_{table}_{column}_length", type_="check")
