"""Sensors of the Big Top source."""

from ingest_platform.assets.bigtop import PUSH_STREAM, bigtop_push_load_job, bigtop_pushed_events
from ingest_platform.sensors.landing import build_landing_sensor

bigtop_landing_sensor = build_landing_sensor(
    name="bigtop_landing_sensor",
    stream=PUSH_STREAM,
    job_name=bigtop_push_load_job.name,
    asset_key=bigtop_pushed_events.key,
)
