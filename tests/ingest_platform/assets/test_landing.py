"""The landing stream check every load run carries: it warns of a file stranded in the inbox or a grown quarantine."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from ingest_platform.assets.bigtop import bigtop_pushed_events, bigtop_pushed_events_landing_check
from ingest_platform.resources.landing import LandingZoneResource
from tests.landing_files import bigtop_batch, bigtop_event, land

STREAM = "bigtop_events"
DAY = "2026-03-01"
DAY_NS = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1e9)
TRUNCATED = b'{"stream": "bigtop_events", "payload": '


def load(instance, warehouse, landing_dir, files: list[str]) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [bigtop_pushed_events, bigtop_pushed_events_landing_check],
        partition_key=DAY,
        instance=instance,
        resources={"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(landing_dir))},
        run_config={"ops": {bigtop_pushed_events.op.name: {"config": {"files": files}}}},
    )
    assert result.success, "a warning never fails the load"
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def figures(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {name: value.value for name, value in evaluation.metadata.items()}


PAYLOADS = {
    "good": {"payload": bigtop_batch(bigtop_event("a"))},
    "poison": {"payload": None, "raw": TRUNCATED},
    "good-2": {"payload": bigtop_batch(bigtop_event("b"))},
}


@pytest.mark.parametrize(
    ("landed", "runs", "passed", "expected"),
    [
        pytest.param(["good"], [["good"]], True, {"inbox_files": 0, "quarantine_growth": 0}, id="all-loaded"),
        pytest.param(
            ["good", "poison"],
            [["good", "poison"]],
            False,
            {"quarantined_files": 1, "quarantine_growth": 1, "inbox_files": 0},
            id="a-file-quarantined",
        ),
        pytest.param(
            ["good", "poison", "good-2"],
            [["good", "poison"], ["good-2"]],
            True,
            {"quarantined_files": 1, "quarantined_at_last_check": 1, "quarantine_growth": 0},
            id="quarantine-not-grown-since",
        ),
        pytest.param(
            ["good", "good-2"],
            [["good"]],
            False,
            {"inbox_files": 1, "overdue_files": 1},
            id="a-file-left-in-the-inbox-for-hours",
        ),
    ],
)
def test_the_check_warns_of_stranded_or_quarantined_files(
    warehouse, tmp_path, landed: list[str], runs: list[list[str]], passed: bool, expected: dict
) -> None:
    landing_dir = tmp_path / "landing"
    names = {
        name: land(landing_dir, STREAM, PAYLOADS[name]["payload"], at_ns=DAY_NS + n, raw=PAYLOADS[name].get("raw"))
        for n, name in enumerate(landed)
    }
    with dg.instance_for_test() as instance:
        for files in runs:
            evaluation = load(instance, warehouse, landing_dir, [names[name] for name in files])
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.passed is passed
    assert figures(evaluation).items() >= expected.items()
    if expected.get("overdue_files"):
        assert figures(evaluation)["oldest_unloaded_age_seconds"] > 3_600
