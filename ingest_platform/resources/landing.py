"""The landing zone as a Dagster resource."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from ingest_platform import settings
from ingest_platform.landing import LandingZone


class LandingZoneResource(dg.ConfigurableResource):
    """The landing zone the webhook app writes to: `landing_dir`, else `LANDING_DIR`, else `<data dir>/landing`."""

    landing_dir: str | None = Field(default=None, description="Root of the landing zone.")

    def zone(self) -> LandingZone:
        return LandingZone(Path(self.landing_dir) if self.landing_dir else settings.landing_dir())
