"""Partition definitions shared by several sources."""

import dagster as dg

# The UTC day a landing file arrived. end_offset=1 so today's files have a partition to load into.
landed_daily = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)

# The UTC day an event happened (its `ts`), for the metrics and leaderboards: an event that lands today with last
# week's `ts` belongs to last week's partition. end_offset=1 so today's metrics have a partition.
event_daily = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
