"""The check every landing-fed asset carries: is anything stranded in its stream?

The inbox holds only files still owed a load, so the age of its oldest file says whether the load and the
reconciliation keep up; quarantine grows only when a file could not be loaded. Both warn (severity WARN): a stranded
or quarantined file needs a person's look, but the stream goes on.
"""

import time

import dagster as dg

from ingest_platform import settings
from ingest_platform.landing import landed_ns
from ingest_platform.resources.landing import LandingZoneResource

# The executor of every landing load job. A load is one asset step and its check, a few hundred milliseconds of
# work: the default multiprocess executor would start a fresh interpreter (and import the definitions) for each
# of the two steps on top of the run worker's own, seconds each on a busy machine, all of it between a 202 and the
# rows. In the run worker's process the steps run one after the other, which is their order anyway.
LANDING_LOAD_EXECUTOR = dg.in_process_executor

CHECK_NAME = "landing_stream_health"
_QUARANTINED = "quarantined_files"
_HISTORY_LOOKED_AT = 10


def build_landing_check(asset: dg.AssetsDefinition, *, stream: str) -> dg.AssetChecksDefinition:
    """A WARN check of `stream`: no inbox file older than the reconciliation bound, no new quarantined file."""

    @dg.asset_check(
        asset=asset,
        name=CHECK_NAME,
        description=f"Warns when a file of the {stream!r} landing stream has waited in the inbox longer than the "
        "reconciliation bound (LANDING_RECONCILE_MINUTES) or when quarantine grew since the last check.",
    )
    def _check(context: dg.AssetCheckExecutionContext, landing: LandingZoneResource) -> dg.AssetCheckResult:
        zone = landing.zone()
        now_ns = time.time_ns()
        bound_seconds = settings.reconcile_after_minutes() * 60
        inbox = zone.pending(stream, limit=2**62)
        ages = [(now_ns - (landed_ns(name) or now_ns)) / 1e9 for name in inbox]
        overdue = sum(age > bound_seconds for age in ages)
        quarantined = len(zone.quarantined(stream))
        before = _quarantined_at_last_check(context, dg.AssetCheckKey(asset.key, CHECK_NAME))
        growth = quarantined - (before or 0)
        problems = []
        if overdue:
            problems.append(f"{overdue} inbox files older than {bound_seconds:g} s")
        if growth > 0:
            problems.append(f"{growth} files quarantined since the last check")
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(problems) or "nothing stranded",
            metadata={
                "inbox_files": len(inbox),
                "oldest_unloaded_age_seconds": round(max(ages, default=0.0), 3),
                "overdue_files": overdue,
                "reconcile_after_seconds": bound_seconds,
                _QUARANTINED: quarantined,
                "quarantined_at_last_check": before if before is not None else dg.MetadataValue.null(),
                "quarantine_growth": growth,
            },
        )

    return _check


def _quarantined_at_last_check(context: dg.AssetCheckExecutionContext, check_key: dg.AssetCheckKey) -> int | None:
    history = context.instance.event_log_storage.get_asset_check_execution_history(check_key, limit=_HISTORY_LOOKED_AT)
    for record in history:
        event = record.event.dagster_event if record.event is not None else None
        evaluation = event.event_specific_data if event is not None else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and _QUARANTINED in evaluation.metadata:
            return int(evaluation.metadata[_QUARANTINED].value)
    return None
