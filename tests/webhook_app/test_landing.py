"""The landing writer: one document per request, durable before it returns, directory fsyncs shared safely."""

import json
import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from webhook_app import landing
from webhook_app.landing import LandingUnavailable, LandingWriter, RawJson

RECEIVED = datetime(2026, 3, 1, 12, tzinfo=UTC)


def land(writer: LandingWriter, payload, request_id: str | None = None) -> Path:
    return writer.land(stream="s", request_id=request_id or uuid.uuid4().hex, received_at=RECEIVED, payload=payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({"a": [1, "é"]}, {"a": [1, "é"]}, id="data"),
        pytest.param(RawJson(b'{ "a" : [1, "\\u00e9"] }'), {"a": [1, "é"]}, id="raw-json"),
    ],
)
def test_a_document_holds_the_envelope_and_the_payload(tmp_path: Path, payload, expected) -> None:
    path = land(LandingWriter(tmp_path), payload, request_id="r1")
    document = json.loads(path.read_bytes())
    assert document == {"stream": "s", "request_id": "r1", "received_at": RECEIVED.isoformat(), "payload": expected}
    assert list((tmp_path / "s" / ".tmp").iterdir()) == []


def test_raw_json_is_landed_byte_for_byte(tmp_path: Path) -> None:
    raw = b'{\n  "events": [ {"title": " padded "} ]\n}'
    assert land(LandingWriter(tmp_path), RawJson(raw)).read_bytes().endswith(b'"payload":' + raw + b"}")


def test_every_write_returns_only_after_a_directory_fsync_that_began_after_its_rename(tmp_path, monkeypatch) -> None:
    # The group commit lets one fsync cover several threads' renames; a thread may only skip its own when an fsync
    # began after its rename. The log orders renames, fsync starts and returns across 8 threads.
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_rename, real_fsync_dir = landing.os.rename, landing._fsync_dir

    def rename(source, target) -> None:
        real_rename(source, target)
        with lock:
            log.append(("renamed", Path(target).name))

    def fsync_dir(path) -> None:
        with lock:
            log.append(("fsync", ""))
        real_fsync_dir(path)

    monkeypatch.setattr(landing.os, "rename", rename)
    monkeypatch.setattr(landing, "_fsync_dir", fsync_dir)
    writer = LandingWriter(tmp_path)
    land(writer, {"warm": "up"})  # creates the stream's directories before the threads race

    def write(number: int) -> None:
        name = land(writer, {"n": number}).name
        with lock:
            log.append(("returned", name))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(200)))

    renamed_at = {name: index for index, (kind, name) in enumerate(log) if kind == "renamed"}
    fsync_starts = [index for index, (kind, _) in enumerate(log) if kind == "fsync"]
    for index, (kind, name) in enumerate(log):
        if kind == "returned":
            assert any(renamed_at[name] < start < index for start in fsync_starts), name
    assert len(list((tmp_path / "s").glob("*.json"))) == 201


def test_a_failed_directory_fsync_is_unavailable_and_the_next_write_syncs_again(tmp_path, monkeypatch) -> None:
    writer = LandingWriter(tmp_path)
    land(writer, {"first": 1})
    real_fsync_dir = landing._fsync_dir
    calls: list[Path] = []

    def failing(path) -> None:
        calls.append(path)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(landing, "_fsync_dir", failing)
    with pytest.raises(LandingUnavailable, match="Input/output error"):
        land(writer, {"second": 2})
    monkeypatch.setattr(landing, "_fsync_dir", lambda path: calls.append(path) or real_fsync_dir(path))
    land(writer, {"third": 3})
    assert len(calls) == 2


def test_what_the_app_lands_is_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = land(LandingWriter(tmp_path / "landing"), {"email": "holder@example.com"})
    finally:
        os.umask(previous)

    folders = [tmp_path / "landing", tmp_path / "landing" / "s", tmp_path / "landing" / "s" / ".tmp"]
    assert [stat.S_IMODE(folder.stat().st_mode) for folder in folders] == [0o700, 0o700, 0o700]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_landing_folder_keeps_its_mode(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    root.mkdir()
    root.chmod(0o750)

    land(LandingWriter(root), {"a": 1})

    assert stat.S_IMODE(root.stat().st_mode) == 0o750
    assert stat.S_IMODE((root / "s").stat().st_mode) == 0o700
