"""`ingest-platform landing requeue` and `landing status` against a real landing folder."""

import pytest

from ingest_platform.cli import main
from ingest_platform.landing import LandingZone
from tests.landing_files import land

STREAM = "app_events"
NS = 1_772_366_400 * 1_000_000_000


@pytest.fixture
def zone(tmp_path, monkeypatch) -> LandingZone:
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "landing"))
    zone = LandingZone(tmp_path / "landing")
    for n, reason in enumerate(["not valid JSON: Expecting value", "refused: NUL", "refused: NUL"]):
        zone.quarantine(STREAM, land(zone.root, STREAM, {}, at_ns=NS + n), reason)
    return zone


@pytest.mark.parametrize(
    ("arguments", "requeued"),
    [
        pytest.param(["first"], [0], id="by-name"),
        pytest.param(["--all"], [0, 1, 2], id="all"),
        pytest.param(["--reason-contains", "nul"], [1, 2], id="by-reason"),
    ],
)
def test_requeue_moves_the_chosen_files_and_says_which(zone, capsys, arguments: list[str], requeued) -> None:
    names = zone.quarantined(STREAM)
    arguments = [names[0]] if arguments == ["first"] else arguments
    assert main(["landing", "requeue", STREAM, *arguments]) == 0
    out = capsys.readouterr().out
    assert zone.pending(STREAM, limit=10) == [names[i] for i in requeued]
    assert f"{STREAM}: {len(requeued)} files requeued" in out
    assert [entry["by"] for entry in zone.requeue_history(STREAM)] == ["cli"] * len(requeued)


def test_a_dry_run_lists_and_moves_nothing(zone, capsys) -> None:
    assert main(["landing", "requeue", STREAM, "--all", "--dry-run"]) == 0
    assert "3 files would be requeued" in capsys.readouterr().out
    assert len(zone.quarantined(STREAM)) == 3


def test_an_unknown_name_is_refused_with_exit_2(zone, capsys) -> None:
    assert main(["landing", "requeue", STREAM, f"{NS:020d}-nope.json"]) == 2
    assert "not in quarantine" in capsys.readouterr().err
    assert len(zone.quarantined(STREAM)) == 3


def test_status_prints_each_stream_with_its_reasons(zone, capsys) -> None:
    land(zone.root, "bigtop_events", {}, at_ns=NS)
    assert main(["landing", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "app_events: inbox 0 (none waiting), quarantined 3, archive 0 files 0 B"
    assert lines[1:3] == ["       1  not valid JSON: Expecting value", "       2  refused: NUL"]
    assert lines[3].startswith("bigtop_events: inbox 1 (oldest ")
    assert lines[3].endswith(" d), quarantined 0, archive 0 files 0 B")
