import json
import os
import stat
import time
from datetime import UTC, datetime

import pytest

from ingest_platform.landing import LandingFileError, LandingZone, landed_day, landed_ns
from tests.landing_files import land, loaded

STREAM = "bigtop_events"
MARCH_1 = int(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp() * 1e9)
MARCH_2 = int(datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC).timestamp() * 1e9)


@pytest.mark.parametrize(
    ("name", "ns"),
    [
        pytest.param(f"{MARCH_1:020d}-abc123.json", MARCH_1, id="landing-file"),
        pytest.param("123-abc.json", None, id="short-time"),
        pytest.param(f"{MARCH_1:020d}-abc123.json.tmp", None, id="temp-file"),
        pytest.param(f"{MARCH_1:020d}-../../etc.json", None, id="path-in-id"),
        pytest.param("README.md", None, id="stray-file"),
    ],
)
def test_only_landing_file_names_carry_a_time(name: str, ns: int | None) -> None:
    assert landed_ns(name) == ns


def test_landed_day_is_the_utc_day_of_the_name() -> None:
    assert landed_day(f"{MARCH_1:020d}-a.json") == "2026-03-01"
    assert landed_day(f"{MARCH_2:020d}-a.json") == "2026-03-02"


def test_pending_lists_in_arrival_order_after_the_cursor(tmp_path) -> None:
    zone = LandingZone(tmp_path)
    names = [land(tmp_path, STREAM, {}, at_ns=MARCH_1 + i) for i in (3, 1, 2)]
    (tmp_path / STREAM / "notes.txt").write_text("ignored")
    ordered = sorted(names)
    assert zone.pending(STREAM, limit=10) == ordered
    assert zone.pending(STREAM, after=ordered[0], limit=10) == ordered[1:]
    assert zone.pending(STREAM, limit=2) == ordered[:2]
    assert zone.pending("other_stream", limit=10) == []


def test_pending_leaves_files_younger_than_the_settle_bound(tmp_path) -> None:
    zone = LandingZone(tmp_path)
    old = land(tmp_path, STREAM, {}, at_ns=time.time_ns() - 5_000_000_000)
    land(tmp_path, STREAM, {}, at_ns=time.time_ns())
    assert zone.pending(STREAM, settled_before_ns=time.time_ns() - 2_000_000_000, limit=10) == [old]


def test_archive_moves_out_of_the_inbox_and_stays_locatable(tmp_path) -> None:
    zone = LandingZone(tmp_path)
    name = land(tmp_path, STREAM, {"x": 1}, at_ns=MARCH_1)
    zone.archive(STREAM, loaded(name))
    assert zone.pending(STREAM, limit=10) == []
    assert zone.locate(STREAM, name) == tmp_path / STREAM / "loaded" / "2026-03-01" / name
    assert zone.read(STREAM, name)["payload"] == {"x": 1}
    assert zone.files_for_day(STREAM, "2026-03-01") == [name]


def test_quarantine_keeps_the_file_and_its_reason(tmp_path) -> None:
    zone = LandingZone(tmp_path)
    name = land(tmp_path, STREAM, {}, raw=b"{not json")
    zone.quarantine(STREAM, name, "not valid JSON")
    assert zone.pending(STREAM, limit=10) == []
    assert zone.is_quarantined(STREAM, name)
    assert (tmp_path / "quarantine" / STREAM / f"{name}.reason").read_text() == "not valid JSON\n"


def test_the_archive_and_the_quarantine_are_owner_only(tmp_path) -> None:
    zone = LandingZone(tmp_path)
    archived = land(tmp_path, STREAM, {"x": 1}, at_ns=MARCH_1)
    bad = land(tmp_path, STREAM, {}, raw=b"{not json")
    previous = os.umask(0o022)
    try:
        zone.archive(STREAM, loaded(archived))
        zone.quarantine(STREAM, bad, "not valid JSON")
    finally:
        os.umask(previous)

    folders = [tmp_path / STREAM / "loaded", tmp_path / STREAM / "loaded" / "2026-03-01", tmp_path / "quarantine"]
    folders.append(tmp_path / "quarantine" / STREAM)
    assert {str(folder): stat.S_IMODE(folder.stat().st_mode) for folder in folders} == dict.fromkeys(
        map(str, folders), 0o700
    )
    assert stat.S_IMODE((tmp_path / "quarantine" / STREAM / f"{bad}.reason").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"{not json", "not valid JSON", id="bad-json"),
        pytest.param(b"\xff\xfe", "not valid JSON", id="not-utf8"),
        pytest.param(b"[1, 2]", "not a landing document", id="not-an-object"),
        pytest.param(json.dumps({"stream": "other", "payload": {}}).encode(), "for stream 'other'", id="wrong-stream"),
    ],
)
@pytest.mark.parametrize("read", ["read", "read_streamed"])
def test_read_names_what_is_wrong(tmp_path, raw: bytes, message: str, read: str) -> None:
    name = land(tmp_path, STREAM, {}, raw=raw)
    zone = LandingZone(tmp_path)
    reader = zone.read if read == "read" else lambda stream, name: zone.read_streamed(stream, name, items="payload.x")
    with pytest.raises(LandingFileError, match=message):
        reader(STREAM, name)


@pytest.mark.parametrize(
    ("payload", "events"),
    [
        pytest.param(
            {"events": [{"id": 1, "tags": ["a"]}, {"id": 2.5}], "after": 1},
            [{"id": 1, "tags": ["a"]}, {"id": 2.5}],
            id="array",
        ),
        pytest.param({"events": [], "before": {"events": [9]}}, [], id="empty-array"),
    ],
)
def test_a_streamed_read_keeps_the_items_on_disk_and_reads_them_again_each_time(tmp_path, payload, events) -> None:
    name = land(tmp_path, STREAM, payload)
    document = LandingZone(tmp_path).read_streamed(STREAM, name, items="payload.events")

    items = document["payload"].pop("events")
    assert document == {
        **LandingZone(tmp_path).read(STREAM, name),
        "payload": {k: v for k, v in payload.items() if k != "events"},
    }
    assert list(items) == events
    assert list(items) == events  # a second pass reads the file again
    LandingZone(tmp_path).archive(STREAM, loaded(name))
    assert list(items) == events  # and finds it in the archive


@pytest.mark.parametrize("events", [pytest.param("text", id="string"), pytest.param({"a": 1}, id="object")])
def test_a_streamed_read_leaves_what_is_no_array_as_it_is(tmp_path, events) -> None:
    name = land(tmp_path, STREAM, {"events": events})
    assert LandingZone(tmp_path).read_streamed(STREAM, name, items="payload.events")["payload"] == {"events": events}
