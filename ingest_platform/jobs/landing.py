"""`landing_requeue_job`: quarantined files back into their stream's inbox, as `ingest-platform landing requeue`."""

import dagster as dg
from pydantic import Field

from ingest_platform.landing import RequeueError
from ingest_platform.resources.landing import LandingZoneResource


class LandingRequeueConfig(dg.Config):
    """Which quarantined files go back: exactly one of `names`, `all` or `reason_contains`."""

    stream: str = Field(description="The landing stream, e.g. bigtop_events.")
    names: list[str] = Field(default=[], description="File names in quarantine/<stream>/.")
    all: bool = Field(default=False, description="Every quarantined file of the stream.")
    reason_contains: str | None = Field(
        default=None, description="Files whose reason contains this text (case-insensitive)."
    )


@dg.op(
    name="landing_requeue",
    description="Moves quarantined files back into their inbox (reasons kept in requeue-history.jsonl); the "
    "stream's landing sensor loads them, and a file the ledger has is archived without loading twice.",
)
def landing_requeue(context: dg.OpExecutionContext, config: LandingRequeueConfig, landing: LandingZoneResource) -> int:
    zone = landing.zone()
    try:
        names = zone.select_quarantined(
            config.stream, names=config.names, every=config.all, reason_contains=config.reason_contains
        )
        entries = zone.requeue(config.stream, names, by=f"dagster run {context.run_id}")
    except RequeueError as error:
        raise dg.Failure(description=f"{config.stream}: {error}; nothing was requeued") from None
    context.log.info(f"{config.stream}: requeued {len(entries)} files")
    context.add_output_metadata(
        {
            "stream": config.stream,
            "requeued": len(entries),
            "files": dg.MetadataValue.json({entry["name"]: entry["reason"] for entry in entries}),
        }
    )
    return len(entries)


@dg.job(
    name="landing_requeue_job",
    description="Quarantine replay: moves a stream's quarantined files back to its inbox once the cause is fixed.",
)
def landing_requeue_job() -> None:
    landing_requeue()
