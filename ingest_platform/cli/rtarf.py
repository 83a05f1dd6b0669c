"""`ingest-platform rtarf …`: sync a day of RTARF events now, and check the schedule's configuration."""

import argparse
import os
import sys
from datetime import UTC, date, datetime

import dagster as dg

from ingest_platform.cli import GROUPS, add_command
from ingest_platform.resources.elasticsearch import URL_ENV
from ingest_platform.resources.rtarf import LOOKBACK_ENV, RtarfSettingsResource
from ingest_platform.schedules.rtarf import (
    ENABLED_ENV,
    INTERVAL_ENV,
    TRIGGER_TAG,
    cron_for_interval,
    interval_seconds,
    sync_enabled,
)


def register(groups: argparse._SubParsersAction) -> None:
    parser = add_command(groups, "rtarf", GROUPS["rtarf"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sync = add_command(
        commands, "sync", "copy one UTC day of events from Elasticsearch now (the run shows in the Dagster UI)"
    )
    sync.add_argument("--day", type=_day, help="UTC day, YYYY-MM-DD (default: today)")
    sync.add_argument("--full-day", action="store_true", help="re-read the whole day even if it is today")
    sync.add_argument("--page-size", type=int, help="documents read from Elasticsearch per request")
    sync.set_defaults(handler=_sync)
    add_command(
        commands,
        "schedule",
        f"check the sync schedule's settings ({INTERVAL_ENV}, {ENABLED_ENV}, {LOOKBACK_ENV}) and say what they mean",
    ).set_defaults(handler=_schedule)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _sync(args: argparse.Namespace) -> int:
    from ingest_platform.assets.rtarf import rtarf_daily, rtarf_sync_job
    from ingest_platform.definitions import defs

    if not os.environ.get(URL_ENV):
        print(f"rtarf sync: {URL_ENV} is not set", file=sys.stderr)
        return 2
    day = (args.day or datetime.now(UTC).date()).isoformat()
    if not rtarf_daily.has_partition_key(day):
        print(f"rtarf sync: no partition {day} (partitions start {rtarf_daily.start:%Y-%m-%d})", file=sys.stderr)
        return 2
    config = {"full_day": args.full_day, **({"page_size": args.page_size} if args.page_size else {})}
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(rtarf_sync_job.name).execute_in_process(
        partition_key=day,
        run_config={"ops": {"rtarf__raw__events": {"config": config}}},
        instance=instance,
        tags={TRIGGER_TAG: "cli"},
        raise_on_error=False,
    )
    if not result.success:
        print(f"rtarf sync of {day} failed (run {result.run_id}); see the log above", file=sys.stderr)
        return 1
    (materialization,) = result.asset_materializations_for_node("rtarf__raw__events")
    figures = {name: value.value for name, value in materialization.metadata.items()}
    print(
        f"rtarf {day}: {figures['mode']} sync, {figures['total_processed']} documents in {figures['pages']} pages, "
        f"inserted {figures['inserted']}, updated {figures['updated']}, unchanged {figures['unchanged']}, "
        f"bad {figures['bad_documents']} (run {result.run_id})"
    )
    return 0


def _schedule(_args: argparse.Namespace) -> int:
    try:
        seconds = interval_seconds(os.environ.get(INTERVAL_ENV))
        enabled = sync_enabled(os.environ.get(ENABLED_ENV))
        lookback = RtarfSettingsResource().lookback_days()
    except ValueError as error:
        print(f"rtarf schedule: {error}", file=sys.stderr)
        return 2
    cron = cron_for_interval(seconds)
    print(
        f"rtarf_sync_schedule: every {seconds} s (cron {cron!r}"
        + (", ticks between due times are skipped" if cron == "* * * * *" and seconds != 60 else "")
        + f", UTC), default status {'RUNNING' if enabled else 'STOPPED'}, "
        + (f"hourly look-back of {lookback} days" if lookback else "no look-back")
    )
    return 0
