"""One browser at a time: the runs that drive Chromium carry the browser tag, and only Big Top's do."""

import dagster as dg
import pytest

from ingest_platform.definitions import defs
from ingest_platform.tags import BROWSER_RUN_TAGS, BROWSER_TAG_KEY

# Dagster's implicit job over every asset; its runs are refused by the browser asset itself (see its guard test).
IMPLICIT_ASSET_JOB = "__ASSET_JOB"

JOBS = [job for job in defs.resolve_all_job_defs() if not job.name.startswith(IMPLICIT_ASSET_JOB)]


def is_big_top(job: dg.JobDefinition) -> bool:
    asset_keys = job.asset_layer.executable_asset_keys if job.asset_layer else set()
    return job.name.startswith("bigtop") and all(key.path[0] == "bigtop" for key in asset_keys)


@pytest.mark.parametrize("job", JOBS, ids=[job.name for job in JOBS])
def test_a_job_carries_the_browser_tag_exactly_when_it_drives_the_browser(job: dg.JobDefinition) -> None:
    drives_browser = "browser" in job.required_resource_keys
    tagged = job.tags.get(BROWSER_TAG_KEY) == BROWSER_RUN_TAGS[BROWSER_TAG_KEY]
    assert tagged == drives_browser
    if tagged:
        assert is_big_top(job), "only Big Top runs go on the browser queue"
        assert int(job.tags["dagster/max_runtime"]) > 0


def test_the_big_top_browser_jobs_are_there() -> None:
    tagged = {job.name for job in JOBS if BROWSER_TAG_KEY in job.tags}
    assert {"bigtop_collect_job", "bigtop_probe"} <= tagged
