"""The tables' half of `ingest_limits`: CHECK constraints refusing what the webhook app refuses at the edge.

A key column's length is bounded in characters (`length()` counts characters on both backends); a time column is
held to the storable range, rendered by each dialect as the literal it compares with (a UTC timestamp on
PostgreSQL, SQLite's stored text). NUL, lone surrogates, NaN and integers outside BIGINT need no constraint: the
column types and drivers refuse them already. Keep migration 0006 in step.
"""

import sqlalchemy as sa

from ingest_limits import EARLIEST_TIME, END_OF_TIME, KEY_COLUMN_CHARS, TIME_COLUMNS
from ingest_platform.warehouse.types import UtcDateTime


def length_check(table: str, column: str, chars: int) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"length({column}) <= {chars}", name=f"ck_{table}_{column}_length")


def time_range_check(table: str, column: str) -> sa.CheckConstraint:
    value = sa.column(column, UtcDateTime)
    return sa.CheckConstraint(
        sa.and_(value >= sa.literal(EARLIEST_TIME, UtcDateTime), value < sa.literal(END_OF_TIME, UtcDateTime)),
        name=f"ck_{table}_{column}_range",
    )


def limit_checks(table: str) -> list[sa.CheckConstraint]:
    """Every limit `ingest_limits` states for `table`'s columns."""
    return [length_check(table, column, chars) for column, chars in KEY_COLUMN_CHARS.get(table, {}).items()] + [
        time_range_check(table, column) for column in TIME_COLUMNS.get(table, ())
    ]
