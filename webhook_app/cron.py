"""The seed's cron routes (seed 003), backed by Dagster: `POST /cron/rollup` and `POST /cron/rebuild-search`.

Both need `x-cron-secret: <CRON_SECRET>` (constant-time; unset → 503) and are not rate limited (the seed's cron
caller is internal). They launch runs over Dagster's GraphQL API (`webhook_app.dagster_api`, as /scheduler/* do):
the rollup ONE run of `app_rollup_job` over the partition range (Dagster's range tags, what a single-run backfill of
these assets launches: the assets' backfill policy is single-run), so no daemon is needed to start it and each
day's figures come from the run's `per_day` metadata; the search index one run of `app_search_index_job`.
Job and asset names are repeated here because the webhook app never imports `ingest_platform`.
"""

import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from webhook_app.auth import require_header_token
from webhook_app.dagster_api import GRAPHQL_URL_ENV, DagsterApi, dagster_error
from webhook_app.errors import ApiError
from webhook_app.openapi import Credential, documented
from webhook_app.validation import parse_json, query_flag, require_json_content_type

SECRET_ENV = "CRON_SECRET"  # noqa: S105 (a variable name, not a secret)
CRON_HEADER = "x-cron-secret"
SHARED_ENV = (SECRET_ENV, GRAPHQL_URL_ENV)
# App settings, overridable as WEBHOOK_<NAME>.
DEFAULTS = {
    # Longest ?wait=true waits; below gunicorn's 30 s worker timeout (raise both together).
    "CRON_WAIT_SECONDS": 25.0,
    "CRON_POLL_SECONDS": 1.0,
    "DAGSTER_TIMEOUT_SECONDS": 10,
}

ROLLUP_JOB = "app_rollup_job"
SEARCH_JOB = "app_search_index_job"
ROLLUP_ASSETS = ("app/metrics/rule_metric_daily", "app/metrics/author_metric_daily", "app/metrics/leaderboards")
SEARCH_ASSET = "app/search/rules_index"
FIGURES = ("rows", "events")
TRIGGER_TAG = "ingest_platform/cron_trigger"
# Dagster's run tags of one partition and of a partition range.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MAX_DAYS = 30
DEFAULT_DAYS = 7
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

bp = Blueprint("cron", __name__, url_prefix="/cron")

CRON_SECRET = Credential("cronSecret", {"type": "apiKey", "in": "header", "name": CRON_HEADER})
# 503: the secret is unset, or Dagster is unreachable; 502: Dagster answered with an error.
CRON_ERRORS = (400, 401, 415, 422, 502, 503)


class RollupRequest(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True, alias_generator=to_camel)

    date: str | None = Field(
        default=None,
        description="The last day to roll up, YYYY-MM-DD (UTC); a timestamp with a time zone counts as its UTC "
        "day, as the seed sent it. Default: today (UTC). Not in the future.",
        json_schema_extra={"examples": ["2026-03-01"]},
    )
    dry_run: bool = Field(default=False, description="Say what would be computed; launch and write nothing.")
    days_to_process: Annotated[int, Field(ge=1, le=MAX_DAYS)] = Field(
        default=DEFAULT_DAYS, description=f"How many days ending at `date` (1 to {MAX_DAYS})."
    )

    @field_validator("date")
    @classmethod
    def _a_day(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if _DAY.match(value):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("must be a real calendar day, YYYY-MM-DD") from None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be a day, YYYY-MM-DD (or a timestamp with a time zone)") from None
        if moment.tzinfo is None:
            raise ValueError("a timestamp needs a time zone (e.g. 2026-03-01T00:00:00Z); or send YYYY-MM-DD")
        return moment.astimezone(UTC).date().isoformat()

    def days(self) -> list[str]:
        last = date.fromisoformat(self.date) if self.date else datetime.now(UTC).date()
        return [(last - timedelta(days=back)).isoformat() for back in range(self.days_to_process - 1, -1, -1)]


class DayFigures(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    date: str
    run_id: str | None = None
    status: str | None = None


class RollupResponse(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    message: str
    dry_run: bool
    days: list[str]
    run_id: str | None = None
    run_ids: list[str]
    results: list[DayFigures] | None = None


class SearchRebuildResponse(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    message: str
    run_id: str
    status: str | None = None


@bp.record_once
def _settings(state) -> None:
    # Read when the app is created (never at import); test_config given to create_app wins.
    for name in SHARED_ENV:
        state.app.config.setdefault(name, os.environ.get(name))
    for name, value in DEFAULTS.items():
        state.app.config.setdefault(name, value)


@bp.before_request
def _authenticate() -> None:
    require_header_token(CRON_HEADER, SECRET_ENV, disabled_error="cron_disabled")


@bp.post("/rollup")
@documented(
    summary="Roll up app metrics and leaderboards for the days ending at `date` (Dagster runs of app_rollup_job)",
    description="One run over the range of days (partitions YYYY-MM-DD; `run_id`, and `run_ids` holding it). "
    "`?wait=true` waits (bounded) and returns each day's `rows`/`events` per asset from the run's materializations. "
    "`dryRun: true` launches nothing and reports each day's partitions as Dagster sees them (missing, stale, "
    "failed, materializing, fresh); no event counts (they would need a run). Not rate limited.",
    body=RollupRequest,
    responses={
        200: ("Dry run, or the run finished (?wait=true)", RollupResponse),
        202: ("The run was launched", RollupResponse),
    },
    credential=CRON_SECRET,
    errors=CRON_ERRORS,
    tags=("app",),
)
def rollup():
    wait = query_flag("wait")
    body = _rollup_request()
    days = body.days()
    today = datetime.now(UTC).date().isoformat()
    if days[-1] > today:
        raise ApiError(
            422,
            "validation_failed",
            "The body does not match the schema.",
            [{"field": "date", "problem": f"must not be after today ({today} UTC)"}],
        )
    dagster = _CronDagster()
    if body.dry_run:
        plan = dagster.rollup_plan(days)
        stale = sum(1 for day in plan for state in day["partitions"].values() if state != "fresh")
        return jsonify(
            {
                "message": f"Dry run: {len(days)} days, {stale} asset partitions missing or stale; nothing launched",
                "dry_run": True,
                "days": days,
                "run_ids": [],
                "would_launch": {"job": ROLLUP_JOB, "partitions": days},
                "plan": plan,
            }
        )
    dagster.check_partitions(days)
    run_id = dagster.launch_rollup(days)
    response = {"dry_run": False, "days": days, "run_id": run_id, "run_ids": [run_id], "job": ROLLUP_JOB}
    if not wait:
        return jsonify({"message": f"Rollup launched for {len(days)} days", **response}), 202
    timeout = float(current_app.config["CRON_WAIT_SECONDS"])
    status = dagster.wait_for_runs([run_id], timeout=timeout, poll=float(current_app.config["CRON_POLL_SECONDS"]))[
        run_id
    ]
    per_day = dagster.day_figures(run_id, days) if status != "running" else {}
    results = [
        {"date": day, "run_id": run_id, "status": status, **({"assets": per_day[day]} if per_day else {})}
        for day in days
    ]
    if status == "running":
        message = f"Rollup of {len(days)} days still running after {timeout:g} s"
    elif status != "success":
        message = f"Rollup of {len(days)} days finished: {status}"
    else:
        message = f"Rollup completed for {len(days)} days"
    return jsonify({"message": message, **response, "results": results}), 202 if status == "running" else 200


@bp.post("/rebuild-search")
@documented(
    summary="Rebuild the rules and crawl items search index (a Dagster run of app_search_index_job)",
    description="`?wait=true` waits (bounded) for the run and returns its `documents`. Not rate limited.",
    responses={
        200: ("The rebuild finished (?wait=true)", SearchRebuildResponse),
        202: ("The rebuild was launched", SearchRebuildResponse),
    },
    credential=CRON_SECRET,
    errors=(401, 422, 502, 503),
    tags=("app",),
)
def rebuild_search():
    wait = query_flag("wait")
    dagster = _CronDagster()
    run_id = dagster.launch(SEARCH_JOB, dagster.selector(SEARCH_JOB), tags={TRIGGER_TAG: "cron"})
    if not wait:
        return jsonify({"message": "Search index rebuild launched", "run_id": run_id}), 202
    timeout = float(current_app.config["CRON_WAIT_SECONDS"])
    outcome = dagster.wait_for_runs([run_id], timeout=timeout, poll=float(current_app.config["CRON_POLL_SECONDS"]))
    status = outcome[run_id]
    if status == "running":
        return jsonify(
            {"message": f"Rebuild still running after {timeout:g} s", "run_id": run_id, "status": status}
        ), 202
    figures = dagster.materialization_figures(run_id).get(SEARCH_ASSET, {})
    return jsonify({"message": f"Search index rebuild {status}", "run_id": run_id, "status": status, **figures})


def _rollup_request() -> RollupRequest:
    """The body, or the defaults when the cron caller sends none."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return RollupRequest()
    require_json_content_type()
    return parse_json(RollupRequest, raw)


class _CronDagster(DagsterApi):
    def __init__(self) -> None:
        super().__init__()
        self._selectors: dict[str, dict[str, str]] = {}

    def selector(self, job_name: str) -> dict[str, str]:
        if job_name not in self._selectors:
            self._selectors[job_name] = self.find_repository(
                holds=lambda node: any(job["name"] == job_name for job in node["jobs"]),
                wanted=f"job {job_name}",
                error="job_unavailable",
            )
        return self._selectors[job_name]

    def launch_rollup(self, days: list[str]) -> str:
        """One run of the days (consecutive, in order): a partition, or a partition range."""
        one = len(days) == 1
        partitions = {PARTITION_TAG: days[0]} if one else {RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]}
        return self.launch(ROLLUP_JOB, self.selector(ROLLUP_JOB), tags={**partitions, TRIGGER_TAG: "cron"})

    def day_figures(self, run_id: str, days: list[str]) -> dict[str, dict[str, dict[str, int | None]]]:
        """{day: {asset: {rows, events}}} from the run's materializations: a range run's assets report each day
        in their `per_day` metadata, a one-day run's in `rows`/`events`."""
        data = self.execute(RUN_FIGURES_QUERY, {"runId": run_id})["runOrError"]
        per_asset: dict[str, dict[str, dict[str, Any]]] = {}
        for materialization in data.get("assetMaterializations") or []:
            asset = "/".join(materialization["assetKey"]["path"])
            entries = {entry["label"]: entry for entry in materialization["metadataEntries"]}
            if "per_day" in entries:
                per_asset[asset] = json.loads(entries["per_day"]["jsonString"])
            elif materialization.get("partition"):
                per_asset.setdefault(asset, {})[materialization["partition"]] = {
                    name: int(entries[name]["intRepr"]) for name in FIGURES if "intRepr" in entries.get(name, {})
                }
        return {
            day: {
                asset: {name: per_asset.get(asset, {}).get(day, {}).get(name) for name in FIGURES}
                for asset in ROLLUP_ASSETS
            }
            for day in days
        }

    def _asset_nodes(self, days: list[str]) -> dict[str, dict[str, Any]]:
        data = self.execute(
            ASSET_STATUS_QUERY,
            {"assetKeys": [{"path": asset.split("/")} for asset in ROLLUP_ASSETS], "partitions": days},
        )
        nodes = {"/".join(node["assetKey"]["path"]): node for node in data["assetNodes"]}
        missing = [asset for asset in ROLLUP_ASSETS if asset not in nodes]
        if missing:
            raise ApiError(503, "job_unavailable", f"Dagster at {self.url} has no asset {', '.join(missing)}")
        return nodes

    def check_partitions(self, days: list[str]) -> None:
        """422 for days the rollup assets have no partition for (before their start), before launching any run."""
        nodes = self._asset_nodes([])
        known = set(nodes[ROLLUP_ASSETS[0]]["partitionKeys"])
        unknown = [day for day in days if day not in known]
        if unknown:
            raise ApiError(
                422,
                "validation_failed",
                "The body does not match the schema.",
                [{"field": "date", "problem": f"the rollup has no partition for {', '.join(unknown)}"}],
            )

    def rollup_plan(self, days: list[str]) -> list[dict[str, Any]]:
        """Each day's state per rollup asset, read from Dagster: nothing is launched or written."""
        nodes = self._asset_nodes([])
        known = set(nodes[ROLLUP_ASSETS[0]]["partitionKeys"])
        valid = [day for day in days if day in known]
        states: dict[str, dict[str, str]] = {day: {} for day in days}
        if valid:
            nodes = self._asset_nodes(valid)
        for asset, node in nodes.items():
            stale_by_day = dict(zip(valid, node.get("staleStatusByPartition") or [], strict=False))
            ranges = _status_ranges(node["assetPartitionStatuses"])
            for day in days:
                if day not in known:
                    states[day][asset] = "no_partition"
                    continue
                status = next((status for start, end, status in ranges if start <= day <= end), None)
                if status in ("FAILED", "MATERIALIZING"):
                    states[day][asset] = status.lower()
                else:
                    states[day][asset] = {"MISSING": "missing", "STALE": "stale", "FRESH": "fresh"}[
                        stale_by_day.get(day, "MISSING")
                    ]
        return [
            {"date": day, "partitions": states[day], "would_compute": any(s != "fresh" for s in states[day].values())}
            for day in days
        ]


def _status_ranges(statuses: dict[str, Any]) -> list[tuple[str, str, str]]:
    if statuses["__typename"] == "TimePartitionStatuses":
        return [(entry["startKey"], entry["endKey"], entry["status"]) for entry in statuses["ranges"]]
    if statuses["__typename"] == "DefaultPartitionStatuses":
        return [
            *((key, key, "FAILED") for key in statuses["failedPartitions"]),
            *((key, key, "MATERIALIZING") for key in statuses["materializingPartitions"]),
        ]
    raise dagster_error("Dagster could not report the rollup's partitions", statuses)


ASSET_STATUS_QUERY = """
query RollupPartitions($assetKeys: [AssetKeyInput!], $partitions: [String!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    partitionKeys
    staleStatusByPartition(partitions: $partitions)
    assetPartitionStatuses {
      __typename
      ... on TimePartitionStatuses { ranges { startKey endKey status } }
      ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions }
    }
  }
}
"""

RUN_FIGURES_QUERY = """
query RollupRunFigures($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      assetMaterializations {
        assetKey { path }
        partition
        metadataEntries {
          label
          ... on IntMetadataEntry { intRepr }
          ... on JsonMetadataEntry { jsonString }
        }
      }
    }
  }
}
"""
