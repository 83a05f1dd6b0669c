"""Sensors of the Ingest Service source: one landing sensor per intake stream."""

from ingest_platform.assets.app import APP_LANDING_ASSETS, app_load_jobs
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
