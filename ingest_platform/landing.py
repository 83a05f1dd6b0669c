"""The landing zone, as the Dagster side reads it.

The webhook app writes one JSON document per accepted request to `<landing dir>/<stream>/<name>.json` (written to
a temporary file, fsynced, renamed, directory fsynced; see `webhook_app/landing.py`). A name is the landing time in
nanoseconds since the epoch, zero-padded to 20 digits, a dash and the request id, so names sort by arrival (a rename
keeps the temporary file's mtime, which is therefore no arrival order). The document holds `stream`, `request_id`,
`received_at` and the validated `payload`.

After its rows are committed a file moves to `<stream>/loaded/<YYYY-MM-DD>/` next to its receipt,
`<request id>.receipt.json` (the webhook app's `GET /ingest/receipts/<id>` reads it; docs/landing.md has the
contract); a file that cannot be loaded moves to `quarantine/<stream>/` next to a `.reason` file. The inbox therefore
only holds files still to load. `ingest_platform/landing_retention.py` compacts old archived days.
"""

import json
import os
import re
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest_platform.settings import PRIVATE_FILE_MODE, create_private_file, make_private_dirs

LOADED_DIR = "loaded"
QUARANTINE_DIR = "quarantine"
RECEIPT_SUFFIX = ".receipt.json"
# A compacted day (ingest_platform/landing_retention.py): `<stream>/loaded/<day>.jsonl.gz` and its index.
COMPACTED_SUFFIX = ".jsonl.gz"
COMPACTED_INDEX_SUFFIX = ".receipts.sqlite"
DOCUMENT_MARKER = b',"document":'
_NAME = re.compile(r"^(\d{20})-([A-Za-z0-9_-]{1,64})\.json$")
# The webhook app writes the envelope before the payload, so `received_at` is within the document's first bytes.
_RECEIVED_AT = re.compile(rb'"received_at"\s*:\s*"([^"]{1,64})"')
ENVELOPE_BYTES = 1024


class LandingFileError(Exception):
    """A landed file that cannot be loaded; it goes to quarantine with this message as the reason."""


def landed_ns(name: str) -> int | None:
    """The landing time encoded in a file name, or None when the name is not a landing file's."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def request_id_of(name: str) -> str:
    match = _NAME.match(name)
    if match is None:
        raise LandingFileError(f"{name!r} is not a landing file name")
    return match.group(2)


def received_at_of(path: Path) -> str | None:
    """The `received_at` of a landed document, read from its envelope without reading the payload."""
    with path.open("rb") as file:
        match = _RECEIVED_AT.search(file.read(ENVELOPE_BYTES))
    return match.group(1).decode() if match else None


@dataclass(frozen=True)
class Loaded:
    """A file whose rows are committed, as its receipt tells it."""

    name: str
    rows: int
    run_id: str | None
    loaded_at: datetime


def landed_day(name: str) -> str:
    """The UTC day (`YYYY-MM-DD`) a file landed on: the partition its rows load into."""
    ns = landed_ns(name)
    if ns is None:
        raise LandingFileError(f"{name!r} is not a landing file name")
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d")


def _check_document(document: Any, stream: str) -> None:
    if not isinstance(document, dict) or "payload" not in document:
        raise LandingFileError("not a landing document: expected an object with a 'payload'")
    if document.get("stream") != stream:
        raise LandingFileError(f"document is for stream {document.get('stream')!r}, not {stream!r}")


class LandedItems:
    """The items of one array of a landed file, read from the file one at a time whenever iterated."""

    def __init__(self, zone: "LandingZone", stream: str, name: str, prefix: str) -> None:
        self._zone, self._stream, self._name, self._prefix = zone, stream, name, prefix

    def __iter__(self) -> Iterator[Any]:
        import ijson

        path = self._zone.locate(self._stream, self._name)
        if path is None:
            raise FileNotFoundError(f"landing file {self._stream}/{self._name} moved while its items were read")
        with path.open("rb") as file:
            yield from ijson.items(file, self._prefix, use_float=True)


class LandingZone:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def inbox(self, stream: str) -> Path:
        return self.root / stream

    def pending(self, stream: str, *, after: str = "", settled_before_ns: int | None = None, limit: int) -> list[str]:
        """Up to `limit` inbox file names greater than `after`, oldest first.

        Files whose name is younger than `settled_before_ns` are left for a later look: a writer names its file
        just before the rename, so a name older than that bound cannot still appear below one already seen.
        """
        try:
            entries = os.scandir(self.inbox(stream))
        except FileNotFoundError:
            return []
        names = []
        with entries:
            for entry in entries:
                ns = landed_ns(entry.name)
                if ns is None or entry.name <= after:
                    continue
                if settled_before_ns is not None and ns >= settled_before_ns:
                    continue
                names.append(entry.name)
        names.sort()
        return names[:limit]

    def locate(self, stream: str, name: str) -> Path | None:
        """Where a landed file is now: the inbox or the loaded archive; None if neither (e.g. quarantined)."""
        for candidate in (
            self.inbox(stream) / name,
            self.inbox(stream) / LOADED_DIR / landed_day(name) / name,
        ):
            if candidate.exists():
                return candidate
        return None

    def files_for_day(self, stream: str, day: str) -> list[str]:
        """Every file of `stream` that landed on `day`, loaded or not (what a re-materialization reloads)."""
        names = [name for name in self.pending(stream, limit=10**9) if landed_day(name) == day]
        archived = self.inbox(stream) / LOADED_DIR / day
        if archived.is_dir():
            names += [name for name in os.listdir(archived) if landed_ns(name) is not None]
        names += self._compacted_names(stream, day)
        return sorted(set(names))

    def _compacted_index(self, stream: str, day: str) -> Path:
        return self.inbox(stream) / LOADED_DIR / f"{day}{COMPACTED_INDEX_SUFFIX}"

    def _compacted_names(self, stream: str, day: str) -> list[str]:
        index = self._compacted_index(stream, day)
        if not index.is_file():
            return []
        with _read_only(index) as connection:
            return [name for (name,) in connection.execute("SELECT name FROM receipts")]

    def _compacted_document(self, stream: str, name: str) -> bytes | None:
        """A file's document from its compacted day, reading the one gzip member that holds it."""
        day = landed_day(name)
        index = self._compacted_index(stream, day)
        if not index.is_file():
            return None
        with _read_only(index) as connection:
            found = connection.execute("SELECT member_offset FROM receipts WHERE name = ?", (name,)).fetchone()
        if found is None:
            return None
        compacted = self.inbox(stream) / LOADED_DIR / f"{day}{COMPACTED_SUFFIX}"
        return next(
            (document for line_name, _, document in read_member(compacted, found[0]) if line_name == name), None
        )

    def read(self, stream: str, name: str) -> dict[str, Any]:
        path = self.locate(stream, name)
        content = path.read_bytes() if path is not None else self._compacted_document(stream, name)
        if content is None:
            raise FileNotFoundError(f"landing file {stream}/{name} is neither in the inbox nor in {LOADED_DIR}/")
        try:
            document = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LandingFileError(f"not valid JSON: {error}") from error
        _check_document(document, stream)
        return document

    def size(self, stream: str, name: str) -> int:
        path = self.locate(stream, name)
        if path is not None:
            return path.stat().st_size
        compacted = self._compacted_document(stream, name)
        if compacted is None:
            raise FileNotFoundError(f"landing file {stream}/{name} is neither in the inbox nor in {LOADED_DIR}/")
        return len(compacted)

    def read_streamed(self, stream: str, name: str, *, items: str) -> dict[str, Any]:
        """The document as `read` returns it, except the array at the dotted path `items` (e.g.
        "payload.events"): that is a `LandedItems`, which reads the file anew each time it is iterated, one item at a
        time. The whole file is parsed here once, so a damaged file fails now, not halfway through its items."""
        import ijson

        path = self.locate(stream, name)
        if path is None:
            # A compacted day's document is one line of its gzip member, already read whole: nothing to stream.
            return self.read(stream, name)
        item_prefix = f"{items}.item"
        nested = f"{item_prefix}."
        builder = ijson.ObjectBuilder()
        is_array = False
        try:
            with path.open("rb") as file:
                # The items are skipped token by token: only the rest of the document is built.
                for prefix, event, value in ijson.parse(file, use_float=True):
                    if prefix.startswith(item_prefix) and (prefix == item_prefix or prefix.startswith(nested)):
                        continue
                    if prefix == items and event in ("start_array", "end_array"):
                        is_array = True
                    else:
                        builder.event(event, value)
        except (ijson.JSONError, UnicodeDecodeError) as error:
            raise LandingFileError(f"not valid JSON: {error}") from error
        document = builder.value if hasattr(builder, "value") else None
        _check_document(document, stream)
        if is_array:
            *parents, last = items.split(".")
            container = document
            for part in parents:
                container = container[part]
            container[last] = LandedItems(self, stream, name, item_prefix)
        return document

    def archive(self, stream: str, loaded: Iterable[Loaded]) -> None:
        """Move files whose rows are committed to the archive, each next to its receipt.

        Every receipt is durable before any of the files moves, so a file in the archive always has one: a receipt
        says "loaded" only for a file that is there, and a crash before the move leaves the file in the inbox (and
        in the ledger), to be archived with its receipt again by the next run.
        """
        by_day: dict[str, list[Loaded]] = {}
        for item in loaded:
            if (self.inbox(stream) / item.name).exists():
                by_day.setdefault(landed_day(item.name), []).append(item)
        for day, items in sorted(by_day.items()):
            target_dir = self.inbox(stream) / LOADED_DIR / day
            make_private_dirs(target_dir)
            for item in items:
                self._write_receipt(stream, target_dir, item)
            _fsync_dir(target_dir)
            for item in items:
                (self.inbox(stream) / item.name).rename(target_dir / item.name)

    def _write_receipt(self, stream: str, target_dir: Path, item: Loaded) -> None:
        request_id = request_id_of(item.name)
        receipt = {
            "request_id": request_id,
            "stream": stream,
            "name": item.name,
            "received_at": received_at_of(self.inbox(stream) / item.name),
            "loaded_at": item.loaded_at.astimezone(UTC).isoformat(),
            "run_id": item.run_id,
            "rows": item.rows,
        }
        final = target_dir / f"{request_id}{RECEIPT_SUFFIX}"
        temporary = target_dir / f".{request_id}{RECEIPT_SUFFIX}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        try:
            os.write(descriptor, json.dumps(receipt, separators=(",", ":")).encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        temporary.rename(final)

    def quarantine(self, stream: str, name: str, reason: str) -> Path:
        target_dir = self.root / QUARANTINE_DIR / stream
        make_private_dirs(target_dir)
        target = target_dir / name
        reason_file = target_dir / f"{name}.reason"
        create_private_file(reason_file)
        reason_file.write_text(reason + "\n")
        source = self.locate(stream, name)
        if source is not None:
            source.rename(target)
        return target

    def is_quarantined(self, stream: str, name: str) -> bool:
        return (self.root / QUARANTINE_DIR / stream / name).exists()

    def quarantined(self, stream: str) -> list[str]:
        """The names of every quarantined file of `stream` (each has a `.reason` beside it)."""
        try:
            names = os.listdir(self.root / QUARANTINE_DIR / stream)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if landed_ns(name) is not None)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _read_only:
    """A read-only connection to a compacted day's index, closed on exit (sqlite3's own context only commits)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *exc_info: object) -> None:
        self.connection.close()


def read_member(path: Path, offset: int) -> list[tuple[str, dict | None, bytes]]:
    """The lines of a compacted file's gzip member that starts at `offset`."""
    inflater = zlib.decompressobj(wbits=31)
    chunks = []
    with path.open("rb") as file:
        file.seek(offset)
        while not inflater.eof:
            chunk = file.read(1 << 16)
            if not chunk:
                break
            chunks.append(inflater.decompress(chunk))
    return [split_line(line) for line in b"".join(chunks).splitlines()]


def split_line(line: bytes) -> tuple[str, dict | None, bytes]:
    """A compacted line's file name, receipt and document bytes."""
    # Inside a JSON string a quote is always escaped, so the first `,"document":` is the line's own.
    head, _, document = line.partition(DOCUMENT_MARKER)
    header = json.loads(head + b"}")
    return header["name"], header.get("receipt"), document[:-1]
