"""The landing sensor every push stream uses: new files → batched, partitioned run requests."""

import time
from itertools import groupby

import dagster as dg

from ingest_platform.landing import landed_day
from ingest_platform.resources.landing import LandingZoneResource

STREAM_TAG = "ingest_platform/landing_stream"


def build_landing_sensor(
    *,
    name: str,
    stream: str,
    job_name: str,
    asset_key: dg.AssetKey,
    files_per_run: int = 100,
    max_files_per_tick: int = 2_000,
    settle_seconds: float = 1.0,
    minimum_interval_seconds: int = 10,
) -> dg.SensorDefinition:
    """A sensor that batches up to `files_per_run` new files of `stream` into one run per landed day.

    The cursor is the newest file name requested; names sort by arrival, so a file is never requested twice.
    At most `max_files_per_tick` files are looked at per tick, which keeps a tick far inside Dagster's sensor
    time limit however many files wait; the next tick continues from the cursor.
    """
    op_name = asset_key.to_python_identifier()

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests a load run for new files in the {stream!r} landing stream.",
    )
    def _landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SensorResult:
        settled_before_ns = time.time_ns() - int(settle_seconds * 1e9)
        names = landing.zone().pending(
            stream, after=context.cursor or "", settled_before_ns=settled_before_ns, limit=max_files_per_tick
        )
        if not names:
            return dg.SensorResult(skip_reason=dg.SkipReason(f"no new files in {stream!r}"))
        run_requests = [
            dg.RunRequest(
                run_key=f"{stream}/{batch[-1]}",
                partition_key=day,
                run_config=dg.RunConfig(ops={op_name: {"config": {"files": list(batch)}}}),
                tags={STREAM_TAG: stream},
            )
            for day, day_names in groupby(names, key=landed_day)
            for batch in _chunks(list(day_names), files_per_run)
        ]
        context.log.info(f"{stream}: {len(names)} new files in {len(run_requests)} runs")
        return dg.SensorResult(run_requests=run_requests, cursor=names[-1])

    return _landing_sensor


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
