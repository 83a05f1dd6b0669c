"""Drive a landing sensor and its runs in-process the way the daemons do: tick, launch each request, and relaunch a
failed run as many times as dagster.yaml's run retries allow."""

from pathlib import Path

import dagster as dg
import yaml

from ingest_platform.definitions import defs
from ingest_platform.resources.landing import LandingZoneResource

REPO = Path(__file__).resolve().parents[2]


def max_run_retries() -> int:
    """`run_retries.max_retries` of the project's dagster.yaml: how often the daemon relaunches a failed run."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    return int(config["run_retries"]["max_retries"]) if config["run_retries"]["enabled"] else 0


def tick(
    sensor: dg.SensorDefinition, landing_dir: Path, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    resources = {"landing": LandingZoneResource(landing_dir=str(landing_dir))}
    with dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
        return sensor(context)


def launch(sensor: dg.SensorDefinition, request: dg.RunRequest, instance: dg.DagsterInstance) -> list[bool]:
    """Run one request, then its retries while it fails; the outcome of each attempt."""
    job = defs.resolve_job_def(sensor.job_name)
    outcomes: list[bool] = []
    tags = dict(request.tags)
    for attempt in range(max_run_retries() + 1):
        result = job.execute_in_process(
            run_config=request.run_config,
            partition_key=request.partition_key,
            tags=tags,
            instance=instance,
            raise_on_error=False,
        )
        outcomes.append(result.success)
        if result.success:
            break
        tags = {**request.tags, "dagster/parent_run_id": result.run_id, "dagster/retry_number": str(attempt + 1)}
    return outcomes


def tick_and_launch(
    sensor: dg.SensorDefinition, landing_dir: Path, instance: dg.DagsterInstance, cursor: str | None
) -> tuple[str | None, list[list[bool]]]:
    """One tick and every run it asks for; the new cursor and the outcomes of each request's attempts."""
    result = tick(sensor, landing_dir, instance, cursor)
    outcomes = [launch(sensor, request, instance) for request in result.run_requests]
    return (result.cursor if result.cursor is not None else cursor), outcomes
