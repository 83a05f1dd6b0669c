"""The landing zone's schedule: its archive's daily compaction and retention."""

import dagster as dg

from ingest_platform.jobs.landing import landing_retention_job

landing_retention_schedule = dg.ScheduleDefinition(
    name="landing_retention_schedule",
    cron_schedule="30 3 * * *",
    job=landing_retention_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:30 UTC, after the day's late loads: compacts old archived days, deletes expired ones.",
)
