"""A snapshot of the graph's specs: any change to an asset, check, job, schedule or sensor shows up in review.

The specs live in tests/snapshots/definitions.json, one readable file. After an intended change, refresh it with
`UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_definitions.py` and commit the diff with the change.
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from ingest_platform.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
IMPLICIT_ASSET_JOB = "__ASSET_JOB"


def partitions_spec(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return {
            "type": "time_window",
            "cron": partitions_def.cron_schedule,
            "start": partitions_def.start.isoformat(),
            "timezone": partitions_def.timezone,
            "end_offset": partitions_def.end_offset,
            "format": partitions_def.fmt,
        }
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return {"type": "dynamic", "name": partitions_def.name}
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return {
            "type": "multi",
            "dimensions": {dim.name: partitions_spec(dim.partitions_def) for dim in partitions_def.partitions_defs},
        }
    return {"type": type(partitions_def).__name__, "keys": list(partitions_def.get_partition_keys())}


def backfill_spec(policy: dg.BackfillPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {"type": policy.policy_type.value, "max_partitions_per_run": policy.max_partitions_per_run}


def freshness_spec(policy: dg.FreshnessPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    windows = {name: getattr(policy, name, None) for name in ("warn_window", "fail_window")}
    return {
        "type": type(policy).__name__,
        **{name: window.to_timedelta().total_seconds() for name, window in windows.items() if window is not None},
    }


def key_names(keys) -> list[str]:
    return sorted(key.to_user_string() for key in keys)


def check_names(keys) -> list[str]:
    return sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in keys)


def specs(definitions: dg.Definitions) -> dict[str, Any]:
    repo = definitions.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": key_names(node.parent_keys),
            "partitions": partitions_spec(node.partitions_def),
            "backfill_policy": backfill_spec(node.backfill_policy),
            "tags": dict(sorted(node.tags.items())),
            "kinds": sorted(node.kinds),
            "pools": sorted(node.pools or ()),
            "checks": check_names(node.check_keys),
            "freshness": freshness_spec(node.freshness_policy),
            "table_name": node.metadata.get("dagster/table_name"),
        }
    jobs = {}
    for job in repo.get_all_jobs():
        if job.name.startswith(IMPLICIT_ASSET_JOB):
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "assets": key_names(layer.executable_asset_keys) if layer else [],
            "checks": check_names(layer.asset_graph.asset_check_keys) if layer else [],
            "tags": dict(sorted(job.tags.items())),
            "pools": sorted({op.pool for op in job.graph.iterate_op_defs() if op.pool}),
            "partitions": partitions_spec(job.partitions_def),
            "executor": job.executor_def.name,
        }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
        }
        for schedule in repo.schedule_defs
    }
    sensors = {
        sensor.name: {
            "jobs": sorted(target.job_name for target in sensor.targets),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in repo.sensor_defs
    }
    return {
        "assets": dict(sorted(assets.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": dict(sorted(schedules.items())),
        "sensors": dict(sorted(sensors.items())),
    }


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=False, default=str) + "\n"


def test_the_definitions_match_their_snapshot() -> None:
    current = render(specs(defs))
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    stored = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    assert current == stored, (
        "the definitions changed; if intended, refresh the snapshot with "
        "`UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_definitions.py` and review its diff"
    )


def test_asset_keys_follow_source_layer_table_and_group_by_source() -> None:
    graph = defs.get_repository_def().asset_graph
    for asset_key in graph.get_all_asset_keys():
        assert len(asset_key.path) == 3, asset_key
        assert graph.get(asset_key).group_name == asset_key.path[0], asset_key


def defined_assets(definitions: dg.Definitions) -> set[str]:
    keys = set()
    for asset in definitions.assets or ():
        keys.update([asset.key] if isinstance(asset, dg.AssetSpec) else asset.keys)
    return {key.to_user_string() for key in keys}


def test_the_docker_locations_split_defs_without_overlap_and_the_browser_side_is_what_needs_chromium() -> None:
    from ingest_platform.locations import browser_defs, core_defs

    whole = specs(defs)
    core, browser = specs(core_defs), specs(browser_defs)
    # A location's graph also holds a stub of each asset of the other location that one of its own depends on
    # (the events table's spec in core depends on the collector in browser); the workspace resolves it there.
    core["assets"], browser["assets"] = defined_assets(core_defs), defined_assets(browser_defs)
    for section in ("assets", "jobs", "schedules", "sensors"):
        assert set(core[section]).isdisjoint(browser[section]), section
        assert set(core[section]) | set(browser[section]) == set(whole[section]), section
    repo = defs.get_repository_def()
    needs_browser = {job.name for job in repo.get_all_jobs() if "browser" in job.required_resource_keys}
    assert set(browser["jobs"]) == needs_browser - {IMPLICIT_ASSET_JOB}
    assert set(browser["assets"]) == {"bigtop/raw/collected_events"}
    assert all(schedule["job"] in needs_browser for schedule in browser["schedules"].values())


def test_loading_the_definitions_warns_nothing() -> None:
    """Every code server start, UI reload and CLI call loads them: a warning there is noise a user learns to ignore."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import ingest_platform.locations"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""


# Read while the definitions load, because they are part of a definition: the RTARF schedule's cron and default
# status, which Dagster cannot change per tick, and the first day of every partition set. Everything a run or a tick
# needs is read when it starts (resource and config fields; the look-back days are the `rtarf_settings` resource's).
READ_AT_IMPORT = {"RTARF_SYNC_ENABLED", "RTARF_SYNC_INTERVAL_SECONDS", "PARTITIONS_START_DATE"}
RECORD_ENVIRONMENT_READS = """
import os, sys
package = os.path.join(os.getcwd(), "ingest_platform") + os.sep
plumbing = os.path.join(os.path.dirname(os.__file__), "_collections_abc.py")
read = set()

class Recording(type(os.environ)):
    def __getitem__(self, key):
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename == plumbing or frame.f_code.co_filename.startswith("<")):
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(package):
            read.add(key)
        return super().__getitem__(key)

os.environ.__class__ = Recording
import ingest_platform.locations
print(" ".join(sorted(read)))
"""


def test_loading_the_definitions_reads_no_setting_a_run_needs() -> None:
    import subprocess
    import sys

    from tests.docker.test_environment import DAGSTER_NAMES

    # Every setting set, so a read of any of them (an `if os.environ.get(...)` included) is seen.
    env = {**os.environ, **dict.fromkeys(DAGSTER_NAMES, "x"), "RTARF_SYNC_ENABLED": "true"}
    env["RTARF_SYNC_INTERVAL_SECONDS"] = "300"
    env["RTARF_LOOKBACK_DAYS"] = "3"
    env["PARTITIONS_START_DATE"] = "2024-01-01"
    loaded = subprocess.run(
        [sys.executable, "-c", RECORD_ENVIRONMENT_READS],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert set(loaded.stdout.split()) == READ_AT_IMPORT
