"""The RTARF scheduler API of seed 004, backed by Dagster: status, sync-now, start and stop of `rtarf_sync_schedule`.

Every route needs `Authorization: Bearer <RTARF_API_TOKEN>`. The app talks to the Dagster webserver's GraphQL API
at DAGSTER_GRAPHQL_URL through `webhook_app.dagster_api` (shared with /cron/*): schedule state, start/stop, run
counts, run metadata.
Job, schedule and asset names are repeated here because the webhook app never imports `ingest_platform`.
"""

import os
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict

from webhook_app.auth import require_bearer
from webhook_app.dagster_api import FINISHED, GRAPHQL_URL_ENV, IN_FLIGHT, DagsterApi, dagster_error
from webhook_app.openapi import Credential, documented
from webhook_app.validation import query_flag

TOKEN_ENV = "RTARF_API_TOKEN"  # noqa: S105 (a variable name, not a secret)
SHARED_ENV = (TOKEN_ENV, GRAPHQL_URL_ENV)
# App settings, overridable as WEBHOOK_<NAME>.
DEFAULTS = {
    # Longest ?wait=true waits before answering 202 with the run still going; below gunicorn's default 30 s worker
    # timeout, which would kill the worker mid-wait (raise both together).
    "RTARF_SYNC_WAIT_SECONDS": 25.0,
    "RTARF_SYNC_POLL_SECONDS": 1.0,
    "DAGSTER_TIMEOUT_SECONDS": 10,
}

JOB_NAME = "rtarf_sync_job"
SCHEDULE_NAME = "rtarf_sync_schedule"
ASSET_PATH = ["rtarf", "raw", "events"]
TRIGGER_TAG = "ingest_platform/rtarf_trigger"
INTERVAL_METADATA_KEY = "interval_seconds"
RESULT_FIGURES = ("total_processed", "inserted", "updated", "unchanged", "bad_documents")

bp = Blueprint("scheduler", __name__, url_prefix="/scheduler")

SCHEDULER_BEARER = Credential("schedulerBearer", {"type": "http", "scheme": "bearer"})
# 503: the API token is unset, or Dagster is unreachable; 502: Dagster answered with an error.
SCHEDULER_ERRORS = (401, 403, 502, 503)


class SchedulerStatus(BaseModel):
    model_config = ConfigDict(defer_build=True)

    is_running: bool
    interval_seconds: int | None
    last_sync_time: str | None
    last_sync_status: str | None
    total_syncs: int
    failed_syncs: int
    success_rate: str


class SyncResult(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    status: str
    total_processed: int | None = None
    inserted: int | None = None
    updated: int | None = None


class SyncNowResponse(BaseModel):
    model_config = ConfigDict(defer_build=True)

    message: str
    run_id: str
    partition: str
    result: SyncResult | None = None
    scheduler_status: SchedulerStatus | None = None


class ScheduleChange(BaseModel):
    model_config = ConfigDict(defer_build=True)

    message: str
    scheduler_status: SchedulerStatus


@bp.record_once
def _settings(state) -> None:
    # Read when the app is created (never at import); test_config given to create_app wins.
    for name in SHARED_ENV:
        state.app.config.setdefault(name, os.environ.get(name))
    for name, value in DEFAULTS.items():
        state.app.config.setdefault(name, value)


@bp.before_request
def _authenticate() -> None:
    require_bearer(TOKEN_ENV, disabled_error="scheduler_api_disabled")


@bp.get("/status")
@documented(
    summary="RTARF sync status: schedule state and run statistics, from Dagster",
    responses={200: ("The status", SchedulerStatus)},
    credential=SCHEDULER_BEARER,
    errors=SCHEDULER_ERRORS,
    tags=("rtarf",),
)
def status():
    return jsonify(_Dagster().status())


@bp.post("/sync-now")
@documented(
    summary="Launch a sync of today's RTARF partition; ?wait=true waits for its figures",
    responses={200: ("The sync finished", SyncNowResponse), 202: ("The sync was launched", SyncNowResponse)},
    credential=SCHEDULER_BEARER,
    errors=(*SCHEDULER_ERRORS, 422),
    tags=("rtarf",),
)
def sync_now():
    wait = query_flag("wait")
    dagster = _Dagster()
    partition = datetime.now(UTC).date().isoformat()
    run_id = dagster.launch_sync(partition)
    if not wait:
        return jsonify({"message": "Manual sync launched", "run_id": run_id, "partition": partition}), 202
    outcome = dagster.wait_for(run_id, timeout=float(current_app.config["RTARF_SYNC_WAIT_SECONDS"]))
    if outcome is None:
        return jsonify(
            {
                "message": f"Manual sync still running after {current_app.config['RTARF_SYNC_WAIT_SECONDS']} s",
                "run_id": run_id,
                "partition": partition,
                "result": {"status": "running"},
            }
        ), 202
    return jsonify(
        {
            "message": "Manual sync completed"
            if outcome["status"] == "success"
            else f"Manual sync {outcome['status']}",
            "run_id": run_id,
            "partition": partition,
            "result": outcome,
            "scheduler_status": dagster.status(),
        }
    )


@bp.post("/start")
@documented(
    summary="Turn the RTARF sync schedule on",
    responses={200: ("The schedule's new state", ScheduleChange)},
    credential=SCHEDULER_BEARER,
    errors=SCHEDULER_ERRORS,
    tags=("rtarf",),
)
def start():
    dagster = _Dagster()
    was_running = dagster.set_running(True)
    message = "Scheduler already running" if was_running else "Scheduler started"
    return jsonify({"message": message, "scheduler_status": dagster.status()})


@bp.post("/stop")
@documented(
    summary="Turn the RTARF sync schedule off",
    responses={200: ("The schedule's new state", ScheduleChange)},
    credential=SCHEDULER_BEARER,
    errors=SCHEDULER_ERRORS,
    tags=("rtarf",),
)
def stop():
    dagster = _Dagster()
    was_running = dagster.set_running(False)
    message = "Scheduler stopped" if was_running else "Scheduler already stopped"
    return jsonify({"message": message, "scheduler_status": dagster.status()})


class _Dagster(DagsterApi):
    """The Dagster deployment at DAGSTER_GRAPHQL_URL, answering in the shapes of the seed's API."""

    def __init__(self) -> None:
        super().__init__()
        self._selector: dict[str, str] | None = None

    # --- the seed's operations ---

    def status(self) -> dict[str, Any]:
        data = self.execute(
            STATUS_QUERY,
            {
                "selector": self.selector(),
                "succeeded": self._runs_filter(["SUCCESS"]),
                "failed": self._runs_filter(["FAILURE"]),
                "canceled": self._runs_filter(["CANCELED"]),
                "inFlight": self._runs_filter(IN_FLIGHT),
                "finished": self._runs_filter(list(FINISHED)),
            },
        )
        schedule = self._schedule_from(data["scheduleOrError"])
        for name in ("succeeded", "failed", "canceled", "inFlight", "last"):
            if data[name]["__typename"] != "Runs":
                raise dagster_error("Dagster could not list the sync runs", data[name])
        succeeded, failed, canceled = (data[name]["count"] for name in ("succeeded", "failed", "canceled"))
        total = succeeded + failed + canceled
        last = (data["last"].get("results") or [None])[0]
        next_tick = schedule["scheduleState"]["nextTick"]
        return {
            "is_running": schedule["scheduleState"]["status"] == "RUNNING",
            "interval_seconds": _interval(schedule),
            "last_sync_time": _iso(last["endTime"]) if last else None,
            "last_sync_status": FINISHED[last["status"]] if last else None,
            "last_sync_run_id": last["runId"] if last else None,
            "total_syncs": total,
            "failed_syncs": failed,
            "success_rate": f"{succeeded / total * 100:.1f}%" if total else "N/A",
            "running_syncs": data["inFlight"]["count"],
            "next_sync_time": _iso(next_tick["timestamp"]) if next_tick else None,
            "schedule": SCHEDULE_NAME,
            "cron_schedule": schedule["cronSchedule"],
        }

    def launch_sync(self, partition: str) -> str:
        return self.launch(JOB_NAME, self.selector(), tags={"dagster/partition": partition, TRIGGER_TAG: "manual"})

    def wait_for(self, run_id: str, *, timeout: float) -> dict[str, Any] | None:
        """The run's outcome and figures once it finishes, or None if it is still going after `timeout` seconds."""
        poll = float(current_app.config["RTARF_SYNC_POLL_SECONDS"])
        outcome = self.wait_for_runs([run_id], timeout=timeout, poll=poll)[run_id]
        if outcome == "running":
            return None
        figures = self.materialization_figures(run_id).get("/".join(ASSET_PATH), {})
        return {"status": outcome, **{name: figures.get(name) for name in RESULT_FIGURES}}

    def set_running(self, running: bool) -> bool:
        """Turn the schedule on or off; returns whether it was running before."""
        data = self.execute(SCHEDULE_QUERY, {"selector": self.selector()})
        state = self._schedule_from(data["scheduleOrError"])["scheduleState"]
        was_running = state["status"] == "RUNNING"
        if running and not was_running:
            result = self.execute(START_MUTATION, {"selector": self.selector()})["startSchedule"]
        elif not running and was_running:
            result = self.execute(STOP_MUTATION, {"id": state["id"]})["stopRunningSchedule"]
        else:
            return was_running
        if result["__typename"] != "ScheduleStateResult":
            raise dagster_error(f"Dagster refused to change {SCHEDULE_NAME}", result)
        return was_running

    # --- plumbing ---

    def selector(self) -> dict[str, str]:
        """Where the schedule lives."""
        if self._selector is None:
            repository = self.find_repository(
                holds=lambda node: any(schedule["name"] == SCHEDULE_NAME for schedule in node["schedules"]),
                wanted=SCHEDULE_NAME,
                error="schedule_unavailable",
            )
            self._selector = {**repository, "scheduleName": SCHEDULE_NAME}
        return self._selector

    def _schedule_from(self, result: dict[str, Any]) -> dict[str, Any]:
        if result["__typename"] != "Schedule":
            raise dagster_error(f"Dagster could not read {SCHEDULE_NAME}", result)
        return result

    @staticmethod
    def _runs_filter(statuses: list[str]) -> dict[str, Any]:
        return {"pipelineName": JOB_NAME, "statuses": statuses}


def _interval(schedule: dict[str, Any]) -> int | None:
    for entry in schedule["metadataEntries"]:
        if entry["label"] == INTERVAL_METADATA_KEY and "intRepr" in entry:
            return int(entry["intRepr"])
    return None


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


_SCHEDULE_FIELDS = """
    __typename
    ... on Schedule {
      cronSchedule
      metadataEntries { label ... on IntMetadataEntry { intRepr } }
      scheduleState { id status nextTick { timestamp } }
    }
    ... on ScheduleNotFoundError { message }
    ... on PythonError { message }
"""

SCHEDULE_QUERY = f"""
query RtarfSchedule($selector: ScheduleSelector!) {{
  scheduleOrError(scheduleSelector: $selector) {{ {_SCHEDULE_FIELDS} }}
}}
"""

_RUNS_ERRORS = "__typename ... on PythonError { message } ... on InvalidPipelineRunsFilterError { message }"

STATUS_QUERY = f"""
query RtarfStatus(
  $selector: ScheduleSelector!, $succeeded: RunsFilter, $failed: RunsFilter, $canceled: RunsFilter,
  $inFlight: RunsFilter, $finished: RunsFilter
) {{
  scheduleOrError(scheduleSelector: $selector) {{ {_SCHEDULE_FIELDS} }}
  succeeded: runsOrError(filter: $succeeded) {{ {_RUNS_ERRORS} ... on Runs {{ count }} }}
  failed: runsOrError(filter: $failed) {{ {_RUNS_ERRORS} ... on Runs {{ count }} }}
  canceled: runsOrError(filter: $canceled) {{ {_RUNS_ERRORS} ... on Runs {{ count }} }}
  inFlight: runsOrError(filter: $inFlight) {{ {_RUNS_ERRORS} ... on Runs {{ count }} }}
  last: runsOrError(filter: $finished, limit: 1) {{
    {_RUNS_ERRORS} ... on Runs {{ results {{ runId status endTime }} }}
  }}
}}
"""

START_MUTATION = """
mutation RtarfStart($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on ScheduleNotFoundError { message }
  }
}
"""

STOP_MUTATION = """
mutation RtarfStop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on ScheduleNotFoundError { message }
  }
}
"""
