"""The first day of every partition set: one setting, a fixed recent default, read when the definitions load."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ingest_platform import partitions
from ingest_platform.definitions import defs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, partitions.DEFAULT_START_DATE, id="unset"),
        pytest.param("  ", partitions.DEFAULT_START_DATE, id="blank"),
        pytest.param("2024-02-29", "2024-02-29", id="a-day"),
        pytest.param(" 2025-06-01 ", "2025-06-01", id="spaces-around"),
    ],
)
def test_the_start_date_is_the_setting_or_the_default(raw: str | None, expected: str) -> None:
    assert partitions.start_date(raw) == expected


@pytest.mark.parametrize("raw", ["2025-02-30", "yesterday", "01/06/2025"], ids=["no-such-day", "a-word", "us-format"])
def test_a_start_date_that_is_no_day_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(ValueError, match="PARTITIONS_START_DATE must be a day as YYYY-MM-DD"):
        partitions.start_date(raw)


def test_every_partition_set_of_the_graph_starts_on_the_configured_day() -> None:
    graph = defs.get_repository_def().asset_graph
    starts = {
        key.to_user_string(): graph.get(key).partitions_def.start.date().isoformat()
        for key in graph.get_all_asset_keys()
        if isinstance(graph.get(key).partitions_def, dg.TimeWindowPartitionsDefinition)
    }
    assert len(starts) >= 10
    assert set(starts.values()) == {os.environ["PARTITIONS_START_DATE"]}


PROBE = """
from ingest_platform.assets.rtarf import rtarf_daily
from ingest_platform.partitions import landed_daily
print(landed_daily.get_first_partition_key(), rtarf_daily.get_first_partition_key())
"""


def test_a_fresh_install_starts_its_partitions_on_the_recent_default() -> None:
    env = {name: value for name, value in os.environ.items() if name != "PARTITIONS_START_DATE"}
    loaded = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [partitions.DEFAULT_START_DATE] * 2
