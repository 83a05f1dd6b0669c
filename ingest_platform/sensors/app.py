"""Sensors of the Ingest Service source: one landing sensor per intake stream, and the search index's automation."""

import dagster as dg

from ingest_platform.assets.app import APP_LANDING_ASSETS, app_load_jobs, app_search_rules_index
from ingest_platform.sensors.landing import build_landing_sensor

app_landing_sensors = [
    build_landing_sensor(
        name=f"app_{stream.removeprefix('app_')}_landing_sensor",
        stream=stream,
        job_name=app_load_jobs[stream].name,
        asset_key=asset.key,
    )
    for stream, asset in APP_LANDING_ASSETS.items()
]

# Evaluates the index's automation condition (a rebuild after rule or crawl loads). Its own sensor, running by
# default, so the refresh does not depend on the instance-wide default automation sensor being switched on.
app_search_automation_sensor = dg.AutomationConditionSensorDefinition(
    "app_search_automation_sensor",
    target=[app_search_rules_index],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds app/search/rules_index once rules or crawl items have loaded since the last rebuild.",
)
