"""The RTARF sync schedule: the seed's interval scheduler, as a Dagster schedule on the daily-partitioned job."""

import os
from datetime import UTC, date, timedelta

import dagster as dg

from ingest_platform.assets.rtarf import OP_NAME, rtarf_daily, rtarf_sync_job
from ingest_platform.resources.elasticsearch import ElasticsearchResource, not_configured
from ingest_platform.resources.rtarf import DEFAULT_LOOKBACK_DAYS, LOOKBACK_ENV, RtarfSettingsResource

INTERVAL_ENV = "RTARF_SYNC_INTERVAL_SECONDS"
ENABLED_ENV = "RTARF_SYNC_ENABLED"
DEFAULT_INTERVAL_SECONDS = 300
LOOKBACK_RUN_CONFIG = {"ops": {OP_NAME: {"config": {"only_if_changed": True}}}}
TRIGGER_TAG = "ingest_platform/rtarf_trigger"
INTERVAL_METADATA_KEY = "interval_seconds"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def interval_seconds(raw: str | None) -> int:
    """`RTARF_SYNC_INTERVAL_SECONDS`, validated: a whole number of minutes, at least 60 seconds."""
    if raw is None or not raw.strip():
        return DEFAULT_INTERVAL_SECONDS
    try:
        seconds = int(raw.strip())
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, got {raw!r}") from None
    if seconds < 60:
        raise ValueError(f"{INTERVAL_ENV} must be at least 60 (Dagster schedules tick per minute), got {seconds}")
    if seconds % 60:
        raise ValueError(
            f"{INTERVAL_ENV} must be a whole number of minutes (a multiple of 60), got {seconds}; "
            f"use {seconds // 60 * 60} or {(seconds // 60 + 1) * 60}"
        )
    return seconds


def sync_enabled(raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{ENABLED_ENV} must be true or false, got {raw!r}")


def cron_for_interval(seconds: int) -> str:
    """A cron string that fires every `seconds`; '* * * * *' (filtered per tick) when no cron field can say it."""
    minutes, hours = seconds // 60, seconds // 3600
    if minutes == 1:
        return "* * * * *"
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes == 60:
        return "0 * * * *"
    if minutes % 60 == 0 and hours < 24 and 24 % hours == 0:
        return f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    return "* * * * *"


def build_rtarf_freshness_policy(interval: int | None = None) -> dg.FreshnessPolicy:
    """The RTARF asset is synced every `interval` (RTARF_SYNC_INTERVAL_SECONDS unless given): it warns after three
    missed syncs and fails after twelve, and never sooner than an hour, so one slow run is not a failure."""
    interval = interval_seconds(os.environ.get(INTERVAL_ENV)) if interval is None else interval
    return dg.FreshnessPolicy.time_window(
        warn_window=timedelta(seconds=3 * interval), fail_window=timedelta(seconds=max(12 * interval, 3600))
    )


def build_rtarf_sync_schedule(interval: int | None = None, enabled: bool | None = None) -> dg.ScheduleDefinition:
    """The schedule, configured from RTARF_SYNC_INTERVAL_SECONDS and RTARF_SYNC_ENABLED unless given.

    These two are read when the definitions load because they are the definition: a schedule's cron and default
    status cannot change per tick. The look-back days are the `rtarf_settings` resource's, read at each tick.
    """
    interval = interval_seconds(os.environ.get(INTERVAL_ENV)) if interval is None else interval
    enabled = sync_enabled(os.environ.get(ENABLED_ENV)) if enabled is None else enabled
    cron = cron_for_interval(interval)
    interval_minutes = interval // 60

    @dg.schedule(
        name="rtarf_sync_schedule",
        cron_schedule=cron,
        job=rtarf_sync_job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED,
        metadata={INTERVAL_METADATA_KEY: interval},
        description=f"Syncs today's RTARF events every {interval} s, yesterday's whole at the first tick of a UTC "
        f"day, and at the first tick of every hour re-checks the last {LOOKBACK_ENV} days ({DEFAULT_LOOKBACK_DAYS} "
        "unless set; re-synced only when their count or newest ingest time changed); skips a day whose previous sync "
        "is still running.",
    )
    def rtarf_sync_schedule(
        context: dg.ScheduleEvaluationContext,
        rtarf_settings: RtarfSettingsResource,
        elasticsearch: ElasticsearchResource,
    ):
        # Shown as the tick's skip reason in the UI, where a user looks before launching a backfill.
        missing = elasticsearch.missing_settings()
        if missing:
            return dg.SkipReason(not_configured(list(missing)))
        tick = context.scheduled_execution_time.astimezone(UTC)
        lookback = rtarf_settings.lookback_days()
        minute_of_epoch = int(tick.timestamp()) // 60
        if cron == "* * * * *" and minute_of_epoch % interval_minutes:
            return dg.SkipReason(f"every {interval_minutes} minutes; not due at {tick:%H:%M}")
        # (day, trigger, run config): today incremental; yesterday whole through the first hour of a day, since
        # documents stamped before midnight keep arriving for a while; in the first tick of every hour, the
        # look-back days, each re-synced only if its count or newest ingest time changed.
        days: list[tuple[date, str, dict]] = [(tick.date(), "schedule", {})]
        if tick.hour == 0:
            days.append((tick.date() - timedelta(days=1), "schedule", {}))
        if tick.minute < interval_minutes:
            for back in range(2 if tick.hour == 0 else 1, lookback + 1):
                days.append((tick.date() - timedelta(days=back), "lookback", LOOKBACK_RUN_CONFIG))
        requests = []
        skipped = []
        for day, trigger, run_config in days:
            key = day.isoformat()
            if not rtarf_daily.has_partition_key(key):
                continue
            if _sync_in_flight(context.instance, key):
                skipped.append(key)
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{key}@{tick.isoformat()}",
                    partition_key=key,
                    run_config=run_config,
                    tags={TRIGGER_TAG: trigger},
                )
            )
        if not requests:
            return dg.SkipReason(f"previous sync still running for {', '.join(skipped) or 'no partition'}")
        return requests

    return rtarf_sync_schedule


def _sync_in_flight(instance: dg.DagsterInstance, partition_key: str) -> bool:
    runs = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=rtarf_sync_job.name, statuses=_IN_FLIGHT, tags={"dagster/partition": partition_key}
        ),
        limit=1,
    )
    return bool(runs)
