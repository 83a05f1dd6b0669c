"""The only place the platform's Dagster definitions are assembled: one `defs` (`workspace.yaml`, `dg`).

docker/ serves the same definitions as two code locations, split by `ingest_platform.locations`: add a definition
here and it lands in the right one.
"""

import dagster as dg

from ingest_platform.assets import app, bigtop, rtarf, vivenu
from ingest_platform.jobs.bigtop import bigtop_probe, bigtop_push_to_production_job
from ingest_platform.jobs.landing import landing_requeue_job, landing_retention_job
from ingest_platform.resources.app import AppRollupResource
from ingest_platform.resources.bigtop import BigTopIngestResource
from ingest_platform.resources.browser import BrowserResource
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.rtarf import RtarfSettingsResource
from ingest_platform.resources.vivenu import VivenuResource, VivenuWebhooksResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.schedules.app import APP_ROLLUP_FRESHNESS, app_rollup_schedule
from ingest_platform.schedules.bigtop import BIGTOP_COLLECT_FRESHNESS, bigtop_collect_schedule
from ingest_platform.schedules.landing import landing_retention_schedule
from ingest_platform.schedules.rtarf import build_rtarf_freshness_policy, build_rtarf_sync_schedule
from ingest_platform.sensors.app import app_landing_sensors, app_rollup_sensor, app_search_automation_sensor
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.landing import build_landing_metrics_sensor
from ingest_platform.sensors.rtarf import rtarf_run_failure_sensor, rtarf_run_success_sensor
from ingest_platform.sensors.vivenu import vivenu_event_list_sensor


def _fresh(policy: dg.FreshnessPolicy, *assets: dg.AssetsDefinition) -> list[dg.AssetsDefinition]:
    """The assets with the freshness policy of the schedule that refreshes them (dagster.yaml enables freshness)."""
    return dg.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy), assets)


defs = dg.Definitions(
    assets=[
        bigtop.bigtop_pushed_events,
        *_fresh(BIGTOP_COLLECT_FRESHNESS, bigtop.bigtop_collected_events),
        bigtop.bigtop_events_table,
        *app.APP_LANDING_ASSETS.values(),
        app.app_search_rules_index,
        *_fresh(APP_ROLLUP_FRESHNESS, *app.APP_ROLLUP_ASSETS),
        *_fresh(build_rtarf_freshness_policy(), rtarf.rtarf_events_asset),
        vivenu.vivenu_tickets,
        vivenu.vivenu_charity_webhooks,
    ],
    asset_checks=[bigtop.bigtop_pushed_events_landing_check, *app.APP_ASSET_CHECKS, *app.APP_ROLLUP_CHECKS],
    jobs=[
        bigtop.bigtop_push_load_job,
        bigtop.bigtop_collect_job,
        bigtop_push_to_production_job,
        bigtop_probe,
        landing_requeue_job,
        *app.app_load_jobs.values(),
        app.app_search_index_job,
        app.app_rollup_job,
        rtarf.rtarf_sync_job,
        vivenu.vivenu_sync_job,
        vivenu.vivenu_pull_job,
        landing_retention_job,
    ],
    schedules=[bigtop_collect_schedule, build_rtarf_sync_schedule(), app_rollup_schedule, landing_retention_schedule],
    sensors=[
        bigtop_landing_sensor,
        *app_landing_sensors,
        app_search_automation_sensor,
        app_rollup_sensor,
        rtarf_run_success_sensor,
        rtarf_run_failure_sensor,
        vivenu_event_list_sensor,
        build_landing_metrics_sensor(rtarf_job_name=rtarf.rtarf_sync_job.name),
    ],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingZoneResource(),
        "browser": BrowserResource(),
        "bigtop_ingest": BigTopIngestResource(
            api_base=dg.EnvVar("BIGTOP_INGEST_API_BASE"), token=dg.EnvVar("BIGTOP_INGEST_TOKEN")
        ),
        "elasticsearch": ElasticsearchResource(),
        "rtarf_settings": RtarfSettingsResource(),
        "vivenu": VivenuResource(),
        "vivenu_webhooks": VivenuWebhooksResource(),
        "app_rollup": AppRollupResource(),
    },
)
