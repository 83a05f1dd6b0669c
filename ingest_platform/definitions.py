"""The only place the platform's Dagster definitions are assembled."""

import dagster as dg

from ingest_platform.assets import bigtop
from ingest_platform.jobs.bigtop import bigtop_push_to_production_job
from ingest_platform.resources.bigtop import BigTopIngestResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor

defs = dg.Definitions(
    assets=[bigtop.bigtop_pushed_events],
    jobs=[bigtop.bigtop_push_load_job, bigtop_push_to_production_job],
    sensors=[bigtop_landing_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        "bigtop_ingest": BigTopIngestResource(
            api_base=dg.EnvVar("BIGTOP_INGEST_API_BASE"), token=dg.EnvVar("BIGTOP_INGEST_TOKEN")
        ),
    },
)
