"""Compaction and retention of the landing archive: verified, crash-safe, idempotent; replay and receipts still work."""

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from ingest_platform import landing_retention
from ingest_platform.jobs.landing import landing_retention_job
from ingest_platform.landing import LandingZone, request_id_of
from ingest_platform.landing_retention import CompactionError, apply_retention, read_lines
from ingest_platform.resources.landing import LandingZoneResource
from tests.landing_files import bigtop_batch, bigtop_event, land, loaded
from webhook_app import create_app

STREAM = "bigtop_events"
TOKEN = "retention-test-token-0123456789"
TODAY = date(2026, 3, 20)


def ns_of(day: str, second: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp() * 1e9) + second * 1_000_000_000


def archived_day(root: Path, day: str, count: int, *, stream: str = STREAM) -> list[str]:
    """`count` loaded files of `day`, each with its receipt, one of them pretty-printed JSON as a client may send."""
    names = [
        land(root, stream, bigtop_batch(*(bigtop_event(f"{day}-{n}-{e}") for e in range(20))), at_ns=ns_of(day, n))
        for n in range(count)
    ]
    pretty = root / stream / names[0]
    pretty.write_bytes(json.dumps(json.loads(pretty.read_bytes()), indent=2).encode())
    LandingZone(root).archive(stream, loaded(*names, rows=20))
    return names


def documents(root: Path, names: list[str], stream: str = STREAM) -> dict[str, dict]:
    zone = LandingZone(root)
    return {name: zone.read(stream, name) for name in names}


def receipt(root: Path, name: str) -> dict:
    client = create_app({"TESTING": True, "LANDING_DIR": str(root), "BIGTOP_INGEST_TOKEN": TOKEN}).test_client()
    response = client.get(f"/ingest/receipts/{request_id_of(name)}", headers={"Authorization": f"Bearer {TOKEN}"})
    return response.json


def test_old_days_become_one_verified_file_and_replay_and_receipts_still_work(tmp_path) -> None:
    old = archived_day(tmp_path, "2026-03-01", 5)
    recent = archived_day(tmp_path, "2026-03-15", 2)
    before = documents(tmp_path, old + recent)
    receipts_before = {name: receipt(tmp_path, name) for name in old}

    figures = apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)

    archive = tmp_path / STREAM / "loaded"
    assert sorted(path.name for path in archive.iterdir()) == [
        "2026-03-01.jsonl.gz",
        "2026-03-01.receipts.sqlite",
        "2026-03-15",
    ]
    assert (figures.days_compacted, figures.files_compacted, figures.days_deleted) == (1, 5, 0)
    assert 0 < figures.bytes_after < figures.bytes_before
    # Plain JSON lines under gzip: a person can read them with zcat.
    lines = gzip.decompress((archive / "2026-03-01.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(line)["name"] for line in lines] == old
    assert documents(tmp_path, old + recent) == before
    assert LandingZone(tmp_path).files_for_day(STREAM, "2026-03-01") == old
    assert {name: receipt(tmp_path, name) for name in old} == receipts_before


def test_a_replay_of_a_compacted_day_reloads_it(tmp_path, warehouse) -> None:
    from ingest_platform.assets.bigtop import bigtop_pushed_events

    names = archived_day(tmp_path, "2026-03-01", 3)
    apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    result = dg.materialize(
        [bigtop_pushed_events],
        partition_key="2026-03-01",
        resources={"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(tmp_path))},
        run_config={"ops": {bigtop_pushed_events.op.name: {"config": {"reload": True}}}},
    )
    [materialization] = result.asset_materializations_for_node(bigtop_pushed_events.op.name)
    assert (materialization.metadata["files"].value, materialization.metadata["files_loaded"].value) == (len(names), 3)
    assert materialization.metadata["rows"].value == 60


def test_running_twice_changes_nothing_the_second_time(tmp_path) -> None:
    archived_day(tmp_path, "2026-03-01", 3)
    apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    compacted = (tmp_path / STREAM / "loaded" / "2026-03-01.jsonl.gz").read_bytes()
    again = apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    assert (again.days_compacted, again.files_compacted, again.days_deleted) == (0, 0, 0)
    assert (tmp_path / STREAM / "loaded" / "2026-03-01.jsonl.gz").read_bytes() == compacted


def test_a_late_load_into_a_compacted_day_joins_it(tmp_path) -> None:
    first = archived_day(tmp_path, "2026-03-01", 2)
    apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    late = archived_day(tmp_path, "2026-03-01", 1)  # e.g. requeued from quarantine and loaded today
    assert receipt(tmp_path, late[0])["state"] == "loaded"
    figures = apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    assert figures.files_compacted == 1
    names = [name for name, _, _ in read_lines(tmp_path / STREAM / "loaded" / "2026-03-01.jsonl.gz")]
    assert names == sorted({*first, *late})
    assert not (tmp_path / STREAM / "loaded" / "2026-03-01").exists()
    assert receipt(tmp_path, late[0])["state"] == "loaded"


@pytest.mark.parametrize(
    "crash_at",
    ["write", "verify", "rename-index", "rename-compacted", "delete"],
)
def test_a_crash_leaves_the_originals_or_a_verified_file_and_the_next_run_finishes(
    tmp_path, monkeypatch, crash_at
) -> None:
    names = archived_day(tmp_path, "2026-03-01", 4)
    before = documents(tmp_path, names)
    archive = tmp_path / STREAM / "loaded"

    class Crash(Exception):
        pass

    def crash(*args, **kwargs):
        raise Crash(crash_at)

    real_rename, real_unlink = Path.rename, Path.unlink
    if crash_at == "write":
        monkeypatch.setattr(landing_retention, "_line", crash)
    elif crash_at == "verify":
        monkeypatch.setattr(landing_retention, "read_lines", lambda path: iter([("x", None, b"{}")]))
    elif crash_at in ("rename-index", "rename-compacted"):
        suffix = ".receipts.sqlite" if crash_at == "rename-index" else ".jsonl.gz"

        def rename(self, target):
            if str(target).endswith(suffix):
                raise Crash(crash_at)
            return real_rename(self, target)

        monkeypatch.setattr(Path, "rename", rename)
    else:
        removed = []

        def unlink(self, missing_ok=False):
            if self.name in names and removed:
                raise Crash(crash_at)  # after the first original went
            removed.append(self.name)
            return real_unlink(self, missing_ok=missing_ok)

        monkeypatch.setattr(Path, "unlink", unlink)

    with pytest.raises(CompactionError if crash_at == "verify" else Crash):
        apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    monkeypatch.undo()

    if crash_at == "delete":
        assert (archive / "2026-03-01.jsonl.gz").exists()
    else:
        assert sorted(path.name for path in (archive / "2026-03-01").glob("*-*.json")) == names
        assert not (archive / "2026-03-01.jsonl.gz").exists()
    assert documents(tmp_path, names) == before
    assert all(receipt(tmp_path, name)["state"] == "loaded" for name in names)

    apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=None)
    assert sorted(path.name for path in archive.iterdir()) == ["2026-03-01.jsonl.gz", "2026-03-01.receipts.sqlite"]
    assert documents(tmp_path, names) == before


def test_compacted_days_past_the_retention_are_deleted(tmp_path) -> None:
    archived_day(tmp_path, "2026-02-01", 2)
    kept = archived_day(tmp_path, "2026-03-05", 2)
    figures = apply_retention(tmp_path, today=TODAY, compact_after_days=7, retention_days=30)
    archive = tmp_path / STREAM / "loaded"
    assert sorted(path.name for path in archive.iterdir()) == ["2026-03-05.jsonl.gz", "2026-03-05.receipts.sqlite"]
    assert (figures.days_compacted, figures.days_deleted) == (2, 1)
    assert figures.bytes_deleted > 0
    assert receipt(tmp_path, kept[0])["state"] == "loaded"


@pytest.mark.parametrize(
    ("compact_after_days", "retention_days", "problem"),
    [(-1, None, "compact_after_days must be >= 0"), (7, 3, "must be at least compact_after_days")],
    ids=["negative", "retention-before-compaction"],
)
def test_settings_that_make_no_sense_are_refused(tmp_path, compact_after_days, retention_days, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        apply_retention(tmp_path, today=TODAY, compact_after_days=compact_after_days, retention_days=retention_days)


def test_the_job_reports_its_figures_and_reads_the_environment_at_run_time(tmp_path, monkeypatch) -> None:
    archived_day(tmp_path, "2026-03-01", 3)
    monkeypatch.setenv("LANDING_COMPACT_AFTER_DAYS", "1")
    result = landing_retention_job.execute_in_process(
        resources={"landing": LandingZoneResource(landing_dir=str(tmp_path))}
    )
    [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
    metadata = {key: getattr(value, "value", value) for key, value in output.step_output_data.metadata.items()}
    assert (metadata["files_compacted"], metadata["days_compacted"], metadata["days_deleted"]) == (3, 1, 0)
    assert metadata["retention_days"] == "forever" and metadata["compact_after_days"] == 1
    assert metadata["bytes_after"] < metadata["bytes_before"]
    assert datetime.now(UTC).date() > date(2026, 3, 2)  # the job's "today" is the real one
