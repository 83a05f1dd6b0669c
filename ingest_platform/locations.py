"""The two code locations of docker/, cut from the one `defs` (seed 001's worker split).

`browser_defs` holds what drives Chromium (the browser image); `core_defs` everything else (the slim image). What
drives Chromium is read from the definitions themselves (the `browser` resource), so a new asset, job or schedule
in `definitions.py` lands in the right location without being listed here.
"""

from collections.abc import Iterable

import dagster as dg

from ingest_platform.definitions import defs

BROWSER_RESOURCE_KEY = "browser"


def _browser_job_names(definitions: dg.Definitions) -> set[str]:
    return {
        job.name
        for job in definitions.resolve_all_job_defs()
        if BROWSER_RESOURCE_KEY in job.required_resource_keys and not job.name.startswith("__ASSET_JOB")
    }


def _target_job_names(definition: dg.ScheduleDefinition | dg.SensorDefinition) -> set[str]:
    targets = [definition.target] if isinstance(definition, dg.ScheduleDefinition) else definition.targets
    return {target.job_name for target in targets}


def _split(definitions: dg.Definitions) -> tuple[dg.Definitions, dg.Definitions]:
    browser_jobs = _browser_job_names(definitions)

    def drives_browser_asset(asset: object) -> bool:
        return isinstance(asset, dg.AssetsDefinition) and BROWSER_RESOURCE_KEY in asset.required_resource_keys

    browser_assets = {key for asset in definitions.assets or () if drives_browser_asset(asset) for key in asset.keys}

    def checks_browser_asset(checks: dg.AssetChecksDefinition) -> bool:
        # A check lives with the asset it checks.
        return {key.asset_key for key in checks.check_keys} <= browser_assets

    def drives_browser(definition: dg.ScheduleDefinition | dg.SensorDefinition) -> bool:
        targets = _target_job_names(definition)
        return bool(targets) and targets <= browser_jobs

    def parts(items: Iterable, browser: bool, test) -> list:
        return [item for item in items or () if test(item) == browser]

    def location(browser: bool) -> dg.Definitions:
        return dg.Definitions(
            assets=parts(definitions.assets, browser, drives_browser_asset),
            asset_checks=parts(definitions.asset_checks, browser, checks_browser_asset),
            jobs=parts(definitions.jobs, browser, lambda job: job.name in browser_jobs),
            schedules=parts(definitions.schedules, browser, drives_browser),
            sensors=parts(definitions.sensors, browser, drives_browser),
            resources=definitions.resources,
        )

    return location(False), location(True)


core_defs, browser_defs = _split(defs)


def pools_of(definitions: dg.Definitions) -> set[str]:
    """The concurrency pools the definitions' assets and ops run in."""
    repo = definitions.get_repository_def()
    pools = {pool for key in repo.asset_graph.get_all_asset_keys() for pool in repo.asset_graph.get(key).pools or ()}
    for job in repo.get_all_jobs():
        pools.update(op.pool for op in job.graph.iterate_op_defs() if op.pool)
    return pools


def prepare_pools(instance: dg.DagsterInstance, definitions: dg.Definitions = defs) -> None:
    """Give every pool the definitions use its slots from dagster.yaml (`concurrency: pools: default_limit`).

    The run queue sets a pool's limit only once it has seen a run that needs it, after deciding what that tick
    launches: without this, the first two browser runs of a fresh instance both start (their steps still take
    turns on the slot). Part of the deploy step.
    """
    for pool in sorted(pools_of(definitions)):
        instance.event_log_storage.initialize_concurrency_limit_to_default(pool)


def deploy() -> None:
    """The deploy step, before any code server or run starts: Dagster's storage and the warehouse migrated to
    head, the pools given their limits. docker/ runs it as the one-off `migrate` service."""
    from ingest_platform import settings
    from ingest_platform.resources.warehouse import create_engine
    from ingest_platform.warehouse.migrate import current_revisions, upgrade

    with dg.DagsterInstance.get() as instance:
        instance.upgrade()
        prepare_pools(instance)
    engine = create_engine(settings.database_url())
    try:
        upgrade(engine)
        print(f"warehouse at {', '.join(current_revisions(engine))}; pools: {', '.join(sorted(pools_of(defs)))}")
    finally:
        engine.dispose()


if __name__ == "__main__":
    deploy()
