"""One browser at a time: what drives Chromium runs in the `browser` pool, and only that, and only Big Top's."""

import dagster as dg
import pytest

from ingest_platform.definitions import defs
from ingest_platform.locations import pools_of
from ingest_platform.tags import BROWSER_POOL

REPO = defs.get_repository_def()
IMPLICIT_ASSET_JOB = "__ASSET_JOB"
JOBS = [job for job in REPO.get_all_jobs() if not job.name.startswith(IMPLICIT_ASSET_JOB)]


def browser_nodes(job: dg.JobDefinition) -> list[dg.OpDefinition]:
    return [op for op in job.graph.iterate_op_defs() if "browser" in op.required_resource_keys]


@pytest.mark.parametrize("job", JOBS, ids=[job.name for job in JOBS])
def test_every_op_that_drives_the_browser_runs_in_the_browser_pool(job: dg.JobDefinition) -> None:
    for op in job.graph.iterate_op_defs():
        assert (op.pool == BROWSER_POOL) == ("browser" in op.required_resource_keys), op.name
    if browser_nodes(job):
        assert job.name.startswith("bigtop"), "only Big Top drives the browser"
        assert int(job.tags["dagster/max_runtime"]) > 0, "a stuck page must not hold the slot for ever"


def test_the_browser_assets_are_in_the_pool_and_the_pool_is_the_only_one() -> None:
    graph = REPO.asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert (BROWSER_POOL in (node.pools or ())) == ("browser" in node.assets_def.required_resource_keys), key
    # dagster.yaml gives every pool one slot (`default_limit: 1`): a second pool would silently get one too.
    assert pools_of(defs) == {BROWSER_POOL}
    assert {job.name for job in JOBS if browser_nodes(job)} == {"bigtop_collect_job", "bigtop_probe"}
