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

    def drives_browser(definition: dg.ScheduleDefinition | dg.SensorDefinition) -> bool:
        targets = _target_job_names(definition)
        return bool(targets) and targets <= browser_jobs

    def parts(items: Iterable, browser: bool, test) -> list:
        return [item for item in items or () if test(item) == browser]

    def location(browser: bool) -> dg.Definitions:
        return dg.Definitions(
            assets=parts(definitions.assets, browser, drives_browser_asset),
            asset_checks=[] if browser else list(definitions.asset_checks or ()),
            jobs=parts(definitions.jobs, browser, lambda job: job.name in browser_jobs),
            schedules=parts(definitions.schedules, browser, drives_browser),
            sensors=parts(definitions.sensors, browser, drives_browser),
            resources=definitions.resources,
        )

    return location(False), location(True)


core_defs, browser_defs = _split(defs)
