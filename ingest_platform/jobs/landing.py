"""The landing zone's upkeep: quarantine replay (`landing_requeue_job`, as `ingest-platform landing requeue`), and
compaction of old archived days with their deletion after the retention (docs/landing.md)."""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ingest_platform import settings
from ingest_platform.landing import RequeueError
from ingest_platform.landing_retention import apply_retention
from ingest_platform.resources.landing import LandingZoneResource


class LandingRetentionConfig(dg.Config):
    """Unset fields take `LANDING_COMPACT_AFTER_DAYS` (else 7) and `LANDING_RETENTION_DAYS` (else keep forever)."""

    compact_after_days: int | None = Field(
        default=None, ge=0, description="Compact each archived day older than this many days."
    )
    retention_days: int | None = Field(
        default=None, ge=0, description="Delete compacted days older than this many days (unset: keep them)."
    )


@dg.op(
    name="landing_retention",
    description="Compacts each archived landing day older than the compaction age into one gzip JSON-lines file per "
    "stream and day (verified before the originals go) and deletes compacted days past the retention.",
)
def landing_retention(context: dg.OpExecutionContext, config: LandingRetentionConfig, landing: LandingZoneResource):
    compact_after = (
        config.compact_after_days if config.compact_after_days is not None else settings.landing_compact_after_days()
    )
    retention = config.retention_days if config.retention_days is not None else settings.landing_retention_days()
    figures = apply_retention(
        landing.zone().root,
        today=datetime.now(UTC).date(),
        compact_after_days=compact_after,
        retention_days=retention,
    )
    context.log.info(f"landing retention (compact after {compact_after} days, keep {retention} days): {figures}")
    return dg.Output(
        None,
        metadata={
            **figures.as_metadata(),
            "compact_after_days": compact_after,
            "retention_days": dg.MetadataValue.int(retention) if retention is not None else "forever",
        },
    )


@dg.job(
    name="landing_retention_job",
    description="Daily upkeep of the landing zone's archive: compaction, then retention.",
    tags={"ingest_platform/landing": "retention"},
)
def landing_retention_job() -> None:
    landing_retention()


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
