"""The only place the platform's Dagster definitions are assembled."""

import dagster as dg

from ingest_platform.assets import app, bigtop
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.app import app_landing_sensors
from ingest_platform.sensors.bigtop import bigtop_landing_sensor

defs = dg.Definitions(
    assets=[bigtop.bigtop_pushed_events, *app.APP_LANDING_ASSETS.values()],
    asset_checks=app.APP_ASSET_CHECKS,
    jobs=[bigtop.bigtop_push_load_job, *app.app_load_jobs.values()],
    sensors=[bigtop_landing_sensor, *app_landing_sensors],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
    },
)
