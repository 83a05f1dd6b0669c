"""The landing sensor every push stream uses: new files → batched, partitioned run requests, and a reconciliation
that asks again for every file left in the inbox, so that no file waits on anyone acting.

The cursor is an optimisation, not the guarantee (ARCHITECTURE principle 8). It holds the newest settled file name
requested (settled: named longer ago than the settle window, the time a writer may take from naming its file to
the rename) and the names above it already requested. Names are wall-clock nanoseconds, so a file can land below
the newest: a replica whose clock is behind, an NTP step, a writer that stalled before its rename. Runs fail too
(the warehouse down through every retry), and daemons restart. Hence each tick, from the same scan of the inbox:

- files above the newest settled name and not yet requested are requested at once, settled or not (run key: the
  stream and the batch's last name). A file that appears late among just-requested ones is still above the newest
  settled name, so the next tick asks for it: nothing waits out the settle window;
- files at or below the cursor that have waited longer than the reconciliation bound (`LANDING_RECONCILE_MINUTES`)
  are requested again, unless a run of the stream that names them is queued or in progress, or ended within the
  bound (the run-retry daemon's turn). Their run keys carry the cursor's reconciliation epoch, the tick's time and
  a hash of the files, so they never collide with an earlier request, even after a cursor reset;
- files whose name maps to a day before the partitions start are quarantined with the reason: they can never be
  loaded into a partition, and requesting one would make the tick raise; so are files named more than an hour
  ahead of the sensor's clock, which would otherwise wait unrequested until their name's time.

A loaded file leaves the inbox (to `loaded/`), a refused one goes to quarantine, so whatever stays is owed a load.
"""

import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import groupby

import dagster as dg

from ingest_platform import settings
from ingest_platform.landing import (
    PLATFORM_METRICS_FILE,
    landed_day,
    landed_ns,
    platform_metrics_text,
    write_text_atomically,
)
from ingest_platform.partitions import landed_daily
from ingest_platform.resources.landing import LandingZoneResource

STREAM_TAG = "ingest_platform/landing_stream"
RECONCILE_TAG = "ingest_platform/landing_reconcile"
# Runs that may still load their files: a file they name is not asked for again.
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A run still "in progress" after this long has lost its worker; its files are asked for again.
STALE_RUN_SECONDS = 3_600
_RUNS_LOOKED_AT = 500
# A file named further ahead than this had a writer whose clock was wrong; it is quarantined rather than left to
# wait (unrequested, since it never settles) until its name's time comes.
FUTURE_LIMIT_SECONDS = 3_600


@dataclass(frozen=True)
class LandingCursor:
    """The newest settled file name requested, the names above it requested too (not yet settled when they were),
    and how many reconciliations have asked for files again."""

    newest: str = ""
    epoch: int = 0
    recent: tuple[str, ...] = ()

    @classmethod
    def parse(cls, cursor: str | None) -> "LandingCursor":
        if not cursor:
            return cls()
        if not cursor.startswith("{"):
            return cls(newest=cursor)  # the cursor of earlier releases: the newest name alone
        state = json.loads(cursor)
        return cls(
            newest=state.get("newest", ""), epoch=int(state.get("epoch", 0)), recent=tuple(state.get("recent", ()))
        )

    def serialize(self) -> str:
        return json.dumps({"newest": self.newest, "epoch": self.epoch, "recent": list(self.recent)}, sort_keys=True)

    def after_requesting(self, requested: list[str], *, settled_below: str, limit: str | None) -> "LandingCursor":
        """The cursor once `requested` (sorted) are asked for: the newest settled name moves up to the newest
        settled name requested, but never to or past `limit` (the first fresh file left for a later tick)."""
        seen = sorted({*self.recent, *requested})
        newest = max(
            [self.newest, *(name for name in seen if name < settled_below and (limit is None or name < limit))]
        )
        return LandingCursor(newest=newest, epoch=self.epoch, recent=tuple(name for name in seen if name > newest))


def build_landing_sensor(
    *,
    name: str,
    stream: str,
    job_name: str,
    asset_key: dg.AssetKey,
    files_per_run: int = 100,
    max_files_per_tick: int = 2_000,
    settle_seconds: float = 1.0,
    # Below the daemon's own sensor loop (5 s), so every loop ticks it: a file waits at most one loop plus the
    # settle window before its run is requested, and the files of a loop still go out as one run per day.
    minimum_interval_seconds: int = 1,
    partitions_def: dg.DailyPartitionsDefinition = landed_daily,
) -> dg.SensorDefinition:
    """A sensor that batches up to `files_per_run` files of `stream` into one run per landed day.

    At most `max_files_per_tick` files are requested per tick (new ones first), which keeps a tick far inside
    Dagster's sensor time limit however many files wait; the next tick continues.
    """
    op_name = asset_key.to_python_identifier()
    first_day = partitions_def.start.strftime("%Y-%m-%d")

    @dg.sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests a load run for new files in the {stream!r} landing stream, and again for any file "
        "left in the inbox longer than the reconciliation bound.",
    )
    def _landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SensorResult:
        zone = landing.zone()
        cursor = LandingCursor.parse(context.cursor)
        now_ns = time.time_ns()
        bound_seconds = settings.reconcile_after_minutes() * 60
        settled_before_ns = now_ns - int(settle_seconds * 1e9)
        overdue_before_ns = now_ns - int(bound_seconds * 1e9)

        fresh: list[str] = []
        overdue: list[str] = []
        already_requested = set(cursor.recent)
        for file_name in zone.pending(stream, limit=2**62):
            ns = landed_ns(file_name) or 0
            unplaceable = _unplaceable(file_name, ns, first_day=first_day, now_ns=now_ns)
            if unplaceable:
                zone.quarantine(stream, file_name, unplaceable)
                context.log.warning(f"quarantined {stream}/{file_name}: {unplaceable}")
            elif ns > now_ns:
                continue  # named ahead of this clock: asked for when its time comes (its day may have no partition)
            elif file_name > cursor.newest:
                if file_name not in already_requested:
                    fresh.append(file_name)
            elif ns < overdue_before_ns:
                overdue.append(file_name)
        left_for_later = fresh[max_files_per_tick] if len(fresh) > max_files_per_tick else None
        fresh = fresh[:max_files_per_tick]
        next_cursor = cursor.after_requesting(fresh, settled_below=f"{settled_before_ns:020d}", limit=left_for_later)
        if overdue:
            covered = _files_of_live_runs(context, stream, op_name, ended_after_s=now_ns / 1e9 - bound_seconds)
            overdue = [file_name for file_name in overdue if file_name not in covered]
        overdue = overdue[: max_files_per_tick - len(fresh)]
        if not fresh and not overdue:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new or overdue files in {stream!r}"),
                cursor=next_cursor.serialize() if next_cursor != cursor else None,
            )

        def request(batch: list[str], day: str, run_key: str, tags: dict[str, str]) -> dg.RunRequest:
            return dg.RunRequest(
                run_key=run_key,
                partition_key=day,
                run_config=dg.RunConfig(ops={op_name: {"config": {"files": batch}}}),
                tags={STREAM_TAG: stream, **tags},
            )

        run_requests = [
            request(batch, day, f"{stream}/{batch[-1]}", {}) for day, batch in _batches(fresh, files_per_run)
        ]
        epoch = cursor.epoch + 1 if overdue else cursor.epoch
        run_requests += [
            request(batch, day, f"{stream}/reconcile/{epoch}-{now_ns}/{_digest(batch)}", {RECONCILE_TAG: str(epoch)})
            for day, batch in _batches(overdue, files_per_run)
        ]
        if overdue:
            context.log.warning(
                f"{stream}: asking again for {len(overdue)} files left in the inbox over {bound_seconds:g} s "
                f"(oldest {overdue[0]})"
            )
        context.log.info(f"{stream}: {len(fresh)} new and {len(overdue)} overdue files in {len(run_requests)} runs")
        return dg.SensorResult(run_requests=run_requests, cursor=replace(next_cursor, epoch=epoch).serialize())

    return _landing_sensor


RTARF_WINDOW_SECONDS = 86_400


def build_landing_metrics_sensor(*, rtarf_job_name: str, minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """A sensor that writes the platform's Prometheus series to `<LANDING_DIR>/.metrics/platform.prom`.

    A sensor rather than the webhook app, because the figures need the run history (last loads, RTARF runs), which
    the app may not read; a textfile rather than an endpoint of its own, so Prometheus scrapes one place: the
    app's `/metrics` appends the file (it may read the landing folder), and node_exporter's textfile collector can
    read the same folder. It requests no runs.
    """

    @dg.sensor(
        name="landing_metrics_sensor",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Writes the platform's Prometheus metrics (landing backlog, quarantine, last loads, RTARF "
        "success rate) to <LANDING_DIR>/.metrics/platform.prom, which the webhook app's /metrics serves.",
    )
    def _landing_metrics_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource) -> dg.SkipReason:
        zone = landing.zone()
        now = time.time()
        last_success: dict[str, float] = {}
        for record in context.instance.get_asset_records():
            materialization = record.asset_entry.last_materialization
            if materialization is not None:
                source = record.asset_entry.asset_key.path[0]
                last_success[source] = max(last_success.get(source, 0.0), materialization.timestamp)
        ended = context.instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=rtarf_job_name,
                statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                updated_after=datetime.fromtimestamp(now - RTARF_WINDOW_SECONDS, tz=UTC),
            ),
            limit=10_000,
        )
        succeeded = sum(record.dagster_run.status == dg.DagsterRunStatus.SUCCESS for record in ended)
        statuses = zone.status(now_ns=int(now * 1e9))
        text = platform_metrics_text(
            statuses,
            last_success=last_success,
            rtarf_runs={"success": succeeded, "failure": len(ended) - succeeded},
            generated_at=now,
        )
        write_text_atomically(zone.root / PLATFORM_METRICS_FILE, text)
        return dg.SkipReason(f"wrote {len(statuses)} streams' metrics to {PLATFORM_METRICS_FILE}")

    return _landing_metrics_sensor


def _unplaceable(file_name: str, ns: int, *, first_day: str, now_ns: int) -> str | None:
    """Why a file's name can never be loaded as it stands, or None: its writer's clock was wrong when it landed."""
    if landed_day(file_name) < first_day:
        return (
            f"named for {landed_day(file_name)}, before the first partition ({first_day}): the writer's clock was "
            "wrong; the file cannot be loaded into any partition"
        )
    if ns > now_ns + FUTURE_LIMIT_SECONDS * 1_000_000_000:
        return (
            f"named {(ns - now_ns) / 1e9:.0f} s ahead of this clock (more than {FUTURE_LIMIT_SECONDS} s): the writer's "
            "clock was wrong; loading it would wait until then"
        )
    return None


def _files_of_live_runs(context: dg.SensorEvaluationContext, stream: str, op_name: str, *, ended_after_s: float):
    """The files named by this stream's runs that are queued or in progress, or that ended after `ended_after_s`."""
    instance = context.instance
    tags = {STREAM_TAG: stream}
    in_flight = instance.get_run_records(filters=dg.RunsFilter(tags=tags, statuses=_IN_FLIGHT), limit=_RUNS_LOOKED_AT)
    recent = instance.get_run_records(
        filters=dg.RunsFilter(tags=tags, updated_after=datetime.fromtimestamp(ended_after_s, tz=UTC)),
        limit=_RUNS_LOOKED_AT,
    )
    stale_before = datetime.now(UTC) - timedelta(seconds=STALE_RUN_SECONDS)
    files: set[str] = set()
    for record in [*in_flight, *recent]:
        if record.dagster_run.status in _IN_FLIGHT and record.create_timestamp < stale_before:
            continue
        config = record.dagster_run.run_config.get("ops", {}).get(op_name, {}).get("config", {})
        files.update(config.get("files", []))
    return files


def _batches(names: list[str], size: int) -> list[tuple[str, list[str]]]:
    batches = []
    for day, day_names in groupby(names, key=landed_day):
        day_list = list(day_names)
        batches += [(day, day_list[start : start + size]) for start in range(0, len(day_list), size)]
    return batches


def _digest(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
