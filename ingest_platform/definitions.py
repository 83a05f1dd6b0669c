"""The only place the platform's Dagster definitions are assembled."""

import dagster as dg

from ingest_platform.assets import bigtop, rtarf
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.schedules.rtarf import build_rtarf_sync_schedule
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.rtarf import rtarf_run_failure_sensor, rtarf_run_success_sensor

defs = dg.Definitions(
    assets=[bigtop.bigtop_pushed_events, rtarf.rtarf_events_asset],
    jobs=[bigtop.bigtop_push_load_job, rtarf.rtarf_sync_job],
    schedules=[build_rtarf_sync_schedule()],
    sensors=[bigtop_landing_sensor, rtarf_run_success_sensor, rtarf_run_failure_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        "elasticsearch": ElasticsearchResource.from_env(),
    },
)
