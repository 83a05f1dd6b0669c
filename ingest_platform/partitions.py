"""Partition definitions shared by several sources, and the day every daily partition set starts.

The start is part of the definitions (the UI's partition bar, the backfill dialog's default range), so it is read
when they load: `PARTITIONS_START_DATE` (YYYY-MM-DD), else `DEFAULT_START_DATE`. The default is a fixed recent day,
not "N days before now": a start computed from the clock would change the definitions (and the UI's partition
counts) every day. A fresh install therefore shows a few weeks of partitions, not years of empty ones; an install
with older data sets the variable to its first day.
"""

import os
from datetime import date

import dagster as dg

START_DATE_ENV = "PARTITIONS_START_DATE"
DEFAULT_START_DATE = "2026-11-01"


def start_date(raw: str | None) -> str:
    """`PARTITIONS_START_DATE` validated as a calendar day; the default when unset or blank."""
    if raw is None or not raw.strip():
        return DEFAULT_START_DATE
    try:
        return date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{START_DATE_ENV} must be a day as YYYY-MM-DD, got {raw!r}") from None


START_DATE = start_date(os.environ.get(START_DATE_ENV))

# The UTC day a landing file arrived. end_offset=1 so today's files have a partition to load into.
landed_daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)

# The UTC day an event happened (its `ts`), for the metrics and leaderboards: an event that lands today with last
# week's `ts` belongs to last week's partition. end_offset=1 so today's metrics have a partition.
event_daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
