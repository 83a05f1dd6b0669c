"""The Ingest Service rollups' settings as a resource, so every run (schedule, sensor, backfill, cron route)
computes every day with the same weights, cap, decay and board size."""

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from ingest_platform.app.rollups import RollupSettings


class AppRollupResource(dg.ConfigurableResource):
    """Weights of the day's score per event type, the VIEW cap, the trending decay and the boards' size.

    Changing a weight changes the meaning of every stored day: backfill the whole range afterwards.
    """

    view_weight: float = Field(default=1.0, description="Score of one (capped) VIEW.")
    copy_weight: float = Field(default=2.0, description="Score of one COPY.")
    save_weight: float = Field(default=3.0, description="Score of one SAVE.")
    fork_weight: float = Field(default=5.0, description="Score of one FORK.")
    vote_weight: float = Field(default=4.0, description="Score of one VOTE.")
    view_cap: int = Field(default=5, description="VIEWs counted per keyed IP per rule per UTC day (seed 003).")
    trending_half_life_days: float = Field(default=3.0, description="Age in days at which a day's score weighs half.")
    trending_days: int = Field(default=7, description="K: the days (ending on the day) the trending score sums.")
    top_n: int = Field(default=100, description="Ranks kept per board (ties at the last rank are all kept).")
    final_after_hours: float = Field(
        default=2.0, description="Grace after a UTC day ends before it must be final (schedule and freshness check)."
    )

    def settings(self) -> "RollupSettings":
        from ingest_platform.app.rollups import RollupSettings

        return RollupSettings(
            weights={
                "VIEW": self.view_weight,
                "COPY": self.copy_weight,
                "SAVE": self.save_weight,
                "FORK": self.fork_weight,
                "VOTE": self.vote_weight,
            },
            view_cap=self.view_cap,
            trending_half_life_days=self.trending_half_life_days,
            trending_days=self.trending_days,
            top_n=self.top_n,
        )
