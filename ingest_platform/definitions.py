"""The only place the platform's Dagster definitions are assembled."""

import dagster as dg

from ingest_platform.assets import bigtop
from ingest_platform.bigtop.probe import bigtop_probe
from ingest_platform.resources.browser import BrowserResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.schedules.bigtop import bigtop_collect_schedule
from ingest_platform.sensors.bigtop import bigtop_landing_sensor

defs = dg.Definitions(
    assets=[bigtop.bigtop_pushed_events, bigtop.bigtop_collected_events],
    jobs=[bigtop.bigtop_push_load_job, bigtop.bigtop_collect_job, bigtop_probe],
    schedules=[bigtop_collect_schedule],
    sensors=[bigtop_landing_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        "browser": BrowserResource(),
    },
)
