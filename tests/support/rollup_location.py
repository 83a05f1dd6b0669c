"""A small code location with the rollup's and the search index's asset keys, partitions and job names.

The /cron/* tests drive a real dagster-webserver serving it while the real rollup assets are built elsewhere (issue
12). Each asset writes its partition key to `ROLLUP_TEST_OUTPUT_DIR` (so a test sees what ran, and that a dry run
wrote nothing) and reports `rows`/`events` derived from its day, which the tests compute by hand; a range run (the
cron route's) sums them and lists each day's under `per_day`, as the real assets do.
"""

import os
from datetime import date
from pathlib import Path

import dagster as dg

# Days with a partition: from this start up to today (end_offset=1 makes today's partition exist).
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
ASSET_OFFSETS = {"rule_metric_daily": 0, "author_metric_daily": 100, "leaderboards": 200}


def figures(asset_name: str, day: str) -> dict[str, int]:
    """What the asset reports for `day`: rows = day of month + the asset's offset, events = 10 * day of month."""
    day_of_month = date.fromisoformat(day).day
    return {"rows": day_of_month + ASSET_OFFSETS[asset_name], "events": 10 * day_of_month}


def _record(name: str, key: str) -> None:
    directory = Path(os.environ["ROLLUP_TEST_OUTPUT_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.{key}").write_text(key)


def _metrics_asset(name: str, deps: list[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    # Like the real assets: single-run backfills, a range run's figures summed with each day's under `per_day`.
    @dg.asset(
        key=["app", "metrics", name],
        group_name="app",
        partitions_def=daily,
        deps=deps,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        per_day = {key: figures(name, key) for key in context.partition_keys}
        for key in per_day:
            _record(name, key)
        metadata: dict = {field: sum(day[field] for day in per_day.values()) for field in ("rows", "events")}
        if len(per_day) > 1:
            metadata["per_day"] = dg.MetadataValue.json(per_day)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


rule_metric_daily = _metrics_asset("rule_metric_daily", [])
author_metric_daily = _metrics_asset("author_metric_daily", [rule_metric_daily])
leaderboards = _metrics_asset("leaderboards", [rule_metric_daily, author_metric_daily])


@dg.asset(key=["app", "search", "rules_index"], group_name="app")
def rules_index() -> dg.MaterializeResult:
    _record("rules_index", "all")
    return dg.MaterializeResult(metadata={"documents": 3})


defs = dg.Definitions(
    assets=[rule_metric_daily, author_metric_daily, leaderboards, rules_index],
    jobs=[
        # In process: one Python process per run, not one more per step, on the tests' shared cores.
        dg.define_asset_job(
            "app_rollup_job",
            selection=[rule_metric_daily, author_metric_daily, leaderboards],
            executor_def=dg.in_process_executor,
        ),
        dg.define_asset_job("app_search_index_job", selection=[rules_index], executor_def=dg.in_process_executor),
    ],
)
