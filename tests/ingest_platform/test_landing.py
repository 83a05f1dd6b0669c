import json
import os
import stat
import time
from datetime import UTC, datetime

import pytest

from ingest_platform.landing import LandingFileError, LandingZone, RequeueError, landed_day, landed_ns
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


def _quarantined_three(tmp_path) -> tuple[LandingZone, dict[str, str]]:
    zone = LandingZone(tmp_path)
    reasons = {
        land(tmp_path, STREAM, {}, at_ns=MARCH_1 + 1): "payload does not match the schema: title: Field required",
        land(tmp_path, STREAM, {}, at_ns=MARCH_1 + 2): "the warehouse refused the rows: events.title: text with a NUL",
        land(tmp_path, STREAM, {}, at_ns=MARCH_1 + 3): "not valid JSON: Expecting value",
    }
    for name, reason in reasons.items():
        zone.quarantine(STREAM, name, reason)
    return zone, reasons


@pytest.mark.parametrize(
    ("selector", "taken"),
    [
        pytest.param({"names": "second"}, [1], id="by-name"),
        pytest.param({"every": True}, [0, 1, 2], id="all"),
        pytest.param({"reason_contains": "WAREHOUSE refused"}, [1], id="reason-case-insensitive"),
        pytest.param({"reason_contains": "schema"}, [0], id="reason-schema"),
        pytest.param({"reason_contains": "no such reason"}, [], id="reason-matching-none"),
    ],
)
def test_requeue_moves_the_selected_files_back_to_the_inbox_with_their_reasons_in_the_history(
    tmp_path, selector: dict, taken: list[int]
) -> None:
    zone, reasons = _quarantined_three(tmp_path)
    names = sorted(reasons)
    if selector.get("names") == "second":
        selector = {"names": [names[1]]}
    chosen = zone.select_quarantined(STREAM, **selector)
    assert chosen == [names[i] for i in taken]

    entries = zone.requeue(STREAM, chosen, by="test")

    assert zone.pending(STREAM, limit=10) == chosen
    assert zone.quarantined(STREAM) == [name for name in names if name not in chosen]
    assert not any((tmp_path / "quarantine" / STREAM / f"{name}.reason").exists() for name in chosen)
    assert [(entry["name"], entry["reason"], entry["by"]) for entry in zone.requeue_history(STREAM)] == [
        (name, reasons[name], "test") for name in chosen
    ]
    assert entries == zone.requeue_history(STREAM)
    assert all(entry["quarantined_at"] and entry["requeued_at"] for entry in entries)


def test_the_history_keeps_every_requeue_of_a_file_quarantined_again(tmp_path) -> None:
    zone, reasons = _quarantined_three(tmp_path)
    name = sorted(reasons)[0]
    zone.requeue(STREAM, [name], by="first")
    zone.quarantine(STREAM, name, "still broken")
    zone.requeue(STREAM, [name], by="second")
    assert [(entry["reason"], entry["by"]) for entry in zone.requeue_history(STREAM)] == [
        (reasons[name], "first"),
        ("still broken", "second"),
    ]
    if os.name == "posix":
        history = tmp_path / "quarantine" / STREAM / "requeue-history.jsonl"
        assert stat.S_IMODE(history.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param({}, id="nothing-named"),
        pytest.param({"names": ["x.json"], "every": True}, id="names-and-all"),
        pytest.param({"names": [f"{MARCH_1:020d}-absent.json"]}, id="a-name-not-quarantined"),
    ],
)
def test_a_requeue_that_does_not_name_quarantined_files_moves_nothing(tmp_path, selector: dict) -> None:
    zone, reasons = _quarantined_three(tmp_path)
    with pytest.raises(RequeueError):
        zone.requeue(STREAM, zone.select_quarantined(STREAM, **selector), by="test")
    assert zone.quarantined(STREAM) == sorted(reasons)
    assert zone.requeue_history(STREAM) == []


def test_status_counts_the_inbox_the_quarantine_by_reason_and_the_archive(tmp_path) -> None:
    tmp_path = tmp_path / "landing"  # the suite's data dir lives in tmp_path too
    zone = LandingZone(tmp_path)
    now_ns = MARCH_2 + 60 * 10**9
    oldest = land(tmp_path, STREAM, {}, at_ns=MARCH_2)
    land(tmp_path, STREAM, {}, at_ns=MARCH_2 + 30 * 10**9)
    archived = [land(tmp_path, STREAM, {"n": n}, at_ns=MARCH_1 - n) for n in range(3)]
    for name in archived:
        zone.archive(STREAM, loaded(name))
    for n, reason in enumerate(["bad JSON", "bad JSON", "refused"]):
        zone.quarantine("app_events", land(tmp_path, "app_events", {}, at_ns=MARCH_1 + n), reason)
    (tmp_path / ".metrics").mkdir()

    by_stream = {status.stream: status for status in zone.status(now_ns=now_ns)}

    assert sorted(by_stream) == ["app_events", STREAM]
    bigtop = by_stream[STREAM]
    assert (bigtop.inbox_files, bigtop.oldest_unloaded_age_seconds) == (2, 60.0)
    assert zone.pending(STREAM, limit=1) == [oldest]
    assert (bigtop.archive_files, bigtop.quarantined_files) == (3, 0)
    archive = tmp_path / STREAM / "loaded" / "2026-03-01"
    # The bytes count each file's receipt beside it too; the files only the landed ones.
    assert bigtop.archive_bytes == sum(path.stat().st_size for path in archive.iterdir())
    assert len(list(archive.iterdir())) == 2 * len(archived)
    app = by_stream["app_events"]
    assert (app.inbox_files, app.oldest_unloaded_age_seconds, app.archive_files) == (0, None, 0)
    assert app.quarantined_by_reason == {"bad JSON": 2, "refused": 1}
    assert zone.status(now_ns=now_ns, archive=False)[1].archive_bytes == 0
