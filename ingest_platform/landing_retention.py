"""Landing retention: old archived days become one compressed JSON-lines file each, and go after the retention.

A day `<stream>/loaded/<day>/` older than the compaction age becomes, per stream and day:

- `<day>.jsonl.gz`: gzip (several members, each about `BLOCK_BYTES` of lines, so one line is read back without
  inflating the whole day; `zcat` reads it whole), one line per landed file:
  `{"name": "<file name>", "receipt": {…} | null, "document": <the file's JSON>}`. A document keeps its bytes, except
  that raw CR and LF (which JSON allows only as whitespace between tokens) become spaces;
- `<day>.receipts.sqlite`: table `receipts(request_id, name, received_at, loaded_at, run_id, rows, member_offset,
  sha256)`, what `GET /ingest/receipts/<id>` and a replay look up by request id or name.

Crash safety: both are written under temporary names, fsynced and the compressed file is read back and compared (a
line per file, each document's SHA-256) before the index and then the compressed file are renamed into place; only
then are the originals removed, each after its hash matched its line. A crash leaves the originals, or a verified
compacted file (and perhaps some originals it holds, removed by the next run). A day that gains files after it was
compacted (a late load) is compacted again, its old lines and the new files into a new file. Running twice changes
nothing the second time.
"""

import gzip
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ingest_platform.landing import (
    COMPACTED_INDEX_SUFFIX,
    COMPACTED_SUFFIX,
    DOCUMENT_MARKER,
    LOADED_DIR,
    QUARANTINE_DIR,
    RECEIPT_SUFFIX,
    fsync_dir,
    landed_ns,
    request_id_of,
    split_line,
)
from ingest_platform.settings import PRIVATE_FILE_MODE

BLOCK_BYTES = 1 << 20
_TEMPORARY = ".tmp"


@dataclass
class RetentionFigures:
    days_compacted: int = 0
    files_compacted: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    days_deleted: int = 0
    bytes_deleted: int = 0
    files_kept_mismatched: int = 0

    def as_metadata(self) -> dict[str, int]:
        return dict(self.__dict__)


class CompactionError(Exception):
    """A compacted file did not read back as written; the originals stay."""


def apply_retention(
    root: Path, *, today: date, compact_after_days: int, retention_days: int | None
) -> RetentionFigures:
    """Compact every archived day before `today - compact_after_days`; delete compacted days before
    `today - retention_days` (None: keep them forever)."""
    if compact_after_days < 0:
        raise ValueError(f"compact_after_days must be >= 0, not {compact_after_days}")
    if retention_days is not None and retention_days < compact_after_days:
        raise ValueError(
            f"retention_days ({retention_days}) must be at least compact_after_days ({compact_after_days}): a day is "
            "compacted before it is deleted"
        )
    figures = RetentionFigures()
    compact_before = (today - timedelta(days=compact_after_days)).isoformat()
    for archive in _archives(root):
        for day in _day_dirs(archive):
            if day < compact_before:
                compact_day(archive, day, figures)
        if retention_days is not None:
            delete_before = (today - timedelta(days=retention_days)).isoformat()
            for day in _compacted_days(archive):
                if day < delete_before:
                    _delete_compacted(archive, day, figures)
    return figures


def compact_day(archive: Path, day: str, figures: RetentionFigures) -> None:
    day_dir = archive / day
    compacted = archive / f"{day}{COMPACTED_SUFFIX}"
    names = sorted(name for name in os.listdir(day_dir) if landed_ns(name) is not None)
    hashes = {}
    if compacted.exists():
        hashes = {name: hashlib.sha256(document).hexdigest() for name, _, document in read_lines(compacted)}
    new = [name for name in names if name not in hashes]
    if new:
        bytes_before = compacted.stat().st_size if compacted.exists() else 0
        bytes_before += sum(_size_with_receipt(day_dir, name) for name in new)
        hashes = _write_compacted(archive, day, new)
        figures.days_compacted += 1
        figures.files_compacted += len(new)
        figures.bytes_before += bytes_before
        figures.bytes_after += compacted.stat().st_size + (archive / f"{day}{COMPACTED_INDEX_SUFFIX}").stat().st_size
    for name in names:
        if hashlib.sha256(_one_line((day_dir / name).read_bytes())).hexdigest() != hashes.get(name):
            figures.files_kept_mismatched += 1  # never seen; kept for a person to look at rather than lost
            continue
        # The file first: a receipt whose file is gone reads from the index, a file without its receipt reads as
        # nothing. Only what this run compacted goes: a file a late load moves in meanwhile waits for the next run.
        (day_dir / name).unlink()
        (day_dir / f"{request_id_of(name)}{RECEIPT_SUFFIX}").unlink(missing_ok=True)
    # Anything else stays: a receipt without its file yet may be a load's archive step in progress.
    if not os.listdir(day_dir):
        day_dir.rmdir()
    fsync_dir(archive)


def _write_compacted(archive: Path, day: str, new: list[str]) -> dict[str, str]:
    """Write the day's compacted file and index (its old lines and the `new` files), verify, rename into place."""
    compacted = archive / f"{day}{COMPACTED_SUFFIX}"
    index = archive / f"{day}{COMPACTED_INDEX_SUFFIX}"
    temporary = archive / f".{day}{COMPACTED_SUFFIX}{_TEMPORARY}"
    temporary_index = archive / f".{day}{COMPACTED_INDEX_SUFFIX}{_TEMPORARY}"
    for path in (temporary, temporary_index):
        path.unlink(missing_ok=True)

    expected: dict[str, str] = {}
    rows: list[tuple[Any, ...]] = []
    block: list[bytes] = []
    block_size = 0
    offset = 0
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as out:

        def flush() -> None:
            nonlocal block, block_size, offset
            if block:
                member = gzip.compress(b"".join(block), mtime=0)
                out.write(member)
                offset += len(member)
                block, block_size = [], 0

        for name, receipt, document in _records(archive, day, new):
            expected[name] = hashlib.sha256(document).hexdigest()
            line = _line(name, receipt, document)
            if block_size and block_size + len(line) > BLOCK_BYTES:
                flush()
            block.append(line)
            block_size += len(line)
            receipt = receipt or {}
            rows.append(
                (
                    request_id_of(name),
                    name,
                    receipt.get("received_at"),
                    receipt.get("loaded_at"),
                    receipt.get("run_id"),
                    receipt.get("rows"),
                    offset,
                    expected[name],
                )
            )
        flush()
        out.flush()
        os.fsync(out.fileno())

    read_back = {name: hashlib.sha256(document).hexdigest() for name, _, document in read_lines(temporary)}
    if read_back != expected:
        temporary.unlink()
        raise CompactionError(f"{archive.parent.name}/{day}: the compacted file does not read back as written")
    _write_index(temporary_index, rows)
    temporary_index.rename(index)
    temporary.rename(compacted)
    fsync_dir(archive)
    return expected


def _records(archive: Path, day: str, new: list[str]) -> Iterator[tuple[str, dict | None, bytes]]:
    """The day's lines, sorted by name: those of its compacted file, then the files not in it yet."""
    compacted = archive / f"{day}{COMPACTED_SUFFIX}"
    records = list(read_lines(compacted)) if compacted.exists() else []
    for name in new:
        receipt_path = archive / day / f"{request_id_of(name)}{RECEIPT_SUFFIX}"
        try:
            receipt = json.loads(receipt_path.read_bytes())
        except FileNotFoundError:
            receipt = None  # archived by a release before receipts
        records.append((name, receipt, _one_line((archive / day / name).read_bytes())))
    yield from sorted(records, key=lambda record: record[0])


def _write_index(path: Path, rows: list[tuple[Any, ...]]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    os.close(descriptor)
    connection = sqlite3.connect(path)
    try:
        # Small pages: the index of a quiet day stays a few KB instead of four 4 KB pages.
        connection.execute("PRAGMA page_size = 512")
        connection.execute(
            "CREATE TABLE receipts (request_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, received_at TEXT, "
            "loaded_at TEXT, run_id TEXT, rows INTEGER, member_offset INTEGER NOT NULL, sha256 TEXT NOT NULL)"
        )
        connection.executemany("INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.commit()
    finally:
        connection.close()
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_lines(path: Path) -> Iterator[tuple[str, dict | None, bytes]]:
    """Every (name, receipt, document bytes) of a compacted file."""
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield split_line(line.rstrip(b"\n"))


def _line(name: str, receipt: dict | None, document: bytes) -> bytes:
    head = json.dumps({"name": name, "receipt": receipt}, separators=(",", ":")).encode()
    return head[:-1] + DOCUMENT_MARKER + document + b"}\n"


def _size_with_receipt(day_dir: Path, name: str) -> int:
    receipt = day_dir / f"{request_id_of(name)}{RECEIPT_SUFFIX}"
    return (day_dir / name).stat().st_size + (receipt.stat().st_size if receipt.exists() else 0)


def _one_line(document: bytes) -> bytes:
    return document.replace(b"\r", b" ").replace(b"\n", b" ")


def _delete_compacted(archive: Path, day: str, figures: RetentionFigures) -> None:
    for suffix in (COMPACTED_SUFFIX, COMPACTED_INDEX_SUFFIX):
        path = archive / f"{day}{suffix}"
        if path.exists():
            figures.bytes_deleted += path.stat().st_size
            path.unlink()
    figures.days_deleted += 1
    fsync_dir(archive)


def _archives(root: Path) -> list[Path]:
    try:
        streams = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and entry.name != QUARANTINE_DIR)
    except FileNotFoundError:
        return []
    return [root / stream / LOADED_DIR for stream in streams if (root / stream / LOADED_DIR).is_dir()]


def _day_dirs(archive: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(archive) if entry.is_dir() and _is_day(entry.name))


def _compacted_days(archive: Path) -> list[str]:
    days = (entry.name.removesuffix(COMPACTED_SUFFIX) for entry in os.scandir(archive))
    return sorted(day for day in days if _is_day(day) and (archive / f"{day}{COMPACTED_SUFFIX}").is_file())


def _is_day(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False
