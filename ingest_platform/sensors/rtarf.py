"""Sensors of the RTARF source: a notification to a webhook when a sync run succeeds or fails (seed 004's plan)."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ingest_platform.assets.rtarf import ASSET_KEY, rtarf_sync_job
from ingest_platform.resources.rtarf import NOTIFY_URL_ENV, RtarfSettingsResource

SIGNATURE_HEADER = "X-Rtarf-Signature"
NOTIFICATION_ID_HEADER = "X-Rtarf-Notification-Id"
NOTIFY_ATTEMPTS = 3
NOTIFY_TIMEOUT_SECONDS = 10.0
NOTIFY_BACKOFF_SECONDS = 1.0
FIGURES = ("total_processed", "inserted", "updated", "unchanged", "bad_documents", "pages", "time_seconds")


def notification(run: dg.DagsterRun, instance: dg.DagsterInstance, *, error: str | None = None) -> dict[str, Any]:
    """The JSON a receiver gets: which run, which day, how it ended and the sync's figures."""
    figures: dict[str, Any] = {}
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key == ASSET_KEY:
            figures = {
                name: materialization.metadata[name].value for name in FIGURES if name in materialization.metadata
            }
    stats = instance.get_run_stats(run.run_id)
    succeeded = run.status == dg.DagsterRunStatus.SUCCESS
    return {
        "event": "rtarf.sync.succeeded" if succeeded else "rtarf.sync.failed",
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "status": "success" if succeeded else "failed",
        "started_at": _iso(stats.start_time),
        "ended_at": _iso(stats.end_time),
        "result": figures,
        "error": error,
    }


def post_notification(
    url: str, payload: dict[str, Any], *, secret: str | None, url_variable: str = NOTIFY_URL_ENV
) -> None:
    """POST `payload`, retrying connection errors and 5xx/429 answers with backoff; raises when all attempts fail.

    The notification id header lets a receiver drop the duplicate that a retried tick may send.
    """
    # Imported on first use: loading the code location must stay cheap.
    import httpx

    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", NOTIFICATION_ID_HEADER: f"{payload['run_id']}:{payload['status']}"}
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    last_problem = ""
    for attempt in range(NOTIFY_ATTEMPTS):
        if attempt:
            time.sleep(NOTIFY_BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=NOTIFY_TIMEOUT_SECONDS)
        except httpx.TransportError as error:
            last_problem = f"{type(error).__name__}: {error}"
            continue
        if response.status_code < 300:
            return
        last_problem = f"HTTP {response.status_code}"
        if response.status_code != 429 and response.status_code < 500:
            break
    raise RuntimeError(f"RTARF notification to {url_variable} failed after retries: {last_problem}")


def _notify(
    context: dg.RunStatusSensorContext, rtarf_settings: RtarfSettingsResource, *, error: str | None = None
) -> dg.SkipReason | None:
    url = rtarf_settings.notify_url()
    if not url:
        return dg.SkipReason(f"{rtarf_settings.notify_url_env} is not set; no notification sent")
    payload = notification(context.dagster_run, context.instance, error=error)
    post_notification(url, payload, secret=rtarf_settings.notify_secret(), url_variable=rtarf_settings.notify_url_env)
    context.log.info(f"notified {payload['event']} for run {payload['run_id']}")
    return None


@dg.run_status_sensor(
    name="rtarf_run_success_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[rtarf_sync_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"POSTs a completion notification to {NOTIFY_URL_ENV} when an RTARF sync succeeds.",
)
def rtarf_run_success_sensor(context: dg.RunStatusSensorContext, rtarf_settings: RtarfSettingsResource):
    return _notify(context, rtarf_settings)


@dg.run_failure_sensor(
    name="rtarf_run_failure_sensor",
    monitored_jobs=[rtarf_sync_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"POSTs a failure notification to {NOTIFY_URL_ENV} when an RTARF sync fails.",
)
def rtarf_run_failure_sensor(context: dg.RunFailureSensorContext, rtarf_settings: RtarfSettingsResource):
    message = context.failure_event.message if context.failure_event else None
    return _notify(context, rtarf_settings, error=message)


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None
