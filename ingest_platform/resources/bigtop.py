"""Production's Big Top intake as a Dagster resource: where the local bridge pushes, and with which token."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from ingest_platform.bigtop.push import BIGTOP_SOURCE_ID, DEFAULT_BATCH_SIZE, PushSummary, RetryPolicy, push_events


class BigTopIngestResource(dg.ConfigurableResource):
    """`POST /api/ingest/bigtop/events` on production. Bind the secrets with `dg.EnvVar` so only their names are
    stored in the instance: `api_base=dg.EnvVar("BIGTOP_INGEST_API_BASE")`, `token=dg.EnvVar("BIGTOP_INGEST_TOKEN")`.
    """

    api_base: str = Field(description="Production's base URL, e.g. https://srqhappenings.com.")
    token: str = Field(description="The bearer token production expects (BIGTOP_INGEST_TOKEN).")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    max_attempts: int = Field(default=5, ge=1, description="Attempts per batch on timeouts, 5xx and 429.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First retry pause; doubles per attempt.")

    def push(
        self,
        *,
        events: Sequence[Mapping[str, Any]],
        source_id: int = BIGTOP_SOURCE_ID,
        batch_size: int = DEFAULT_BATCH_SIZE,
        delay: float = 0.0,
        report: Callable[[str], None],
    ) -> PushSummary:
        return push_events(
            events,
            api_base=self.api_base,
            token=self.token,
            source_id=source_id,
            batch_size=batch_size,
            delay=delay,
            timeout_seconds=self.timeout_seconds,
            retry=RetryPolicy(max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds),
            report=report,
        )
