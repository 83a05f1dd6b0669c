"""The only place the platform's Dagster definitions are assembled."""

import dagster as dg

from ingest_platform.assets import bigtop, vivenu
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.vivenu import VivenuResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.vivenu import vivenu_event_list_sensor

defs = dg.Definitions(
    assets=[bigtop.bigtop_pushed_events, vivenu.vivenu_tickets, vivenu.vivenu_charity_webhooks],
    jobs=[bigtop.bigtop_push_load_job, vivenu.vivenu_sync_job, vivenu.vivenu_pull_job],
    sensors=[bigtop_landing_sensor, vivenu_event_list_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        "vivenu": VivenuResource(),
    },
)
