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

A requeue (`ingest-platform landing requeue`, `landing_requeue_job`) moves quarantined files back into the inbox
under their own names, after appending each one's reason to `quarantine/<stream>/requeue-history.jsonl`. Keeping
the name keeps the ledger's key (stream, file name): a requeued file that was once loaded is archived by its next
run and loads nothing twice; one that never was loads as if it had just landed.
"""

import json
import os
import re
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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
REASON_SUFFIX = ".reason"
REQUEUE_HISTORY = "requeue-history.jsonl"
# The platform's Prometheus textfile (written by landing_metrics_sensor, served by the webhook app's /metrics).
PLATFORM_METRICS_FILE = Path(".metrics") / "platform.prom"


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


class RequeueError(Exception):
    """A requeue that names files which are not in quarantine; nothing was moved."""


@dataclass(frozen=True)
class StreamStatus:
    """What `ingest-platform landing status` and the platform metrics report for one stream."""

    stream: str
    inbox_files: int = 0
    oldest_unloaded_age_seconds: float | None = None
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    archive_files: int = 0
    archive_bytes: int = 0

    @property
    def quarantined_files(self) -> int:
        return sum(self.quarantined_by_reason.values())


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
            fsync_dir(target_dir)
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
        reason_file = target_dir / f"{name}{REASON_SUFFIX}"
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

    def quarantine_reason(self, stream: str, name: str) -> str:
        try:
            return (self.root / QUARANTINE_DIR / stream / f"{name}{REASON_SUFFIX}").read_text().strip()
        except FileNotFoundError:
            return "(no reason recorded)"

    def select_quarantined(
        self, stream: str, *, names: Sequence[str] = (), every: bool = False, reason_contains: str | None = None
    ) -> list[str]:
        """The quarantined files of `stream` a requeue takes: `names`, `every` one, or those whose reason contains
        `reason_contains` (case-insensitive). A name that is not in quarantine raises `RequeueError`."""
        if sum([bool(names), every, reason_contains is not None]) != 1:
            raise RequeueError("name the files, or ask for all of them, or for those whose reason contains a text")
        held = self.quarantined(stream)
        if names:
            missing = sorted(set(names) - set(held))
            if missing:
                raise RequeueError(f"not in quarantine/{stream}/: {', '.join(missing)}")
            return sorted(set(names))
        if every:
            return held
        wanted = (reason_contains or "").casefold()
        return [name for name in held if wanted in self.quarantine_reason(stream, name).casefold()]

    def requeue(self, stream: str, names: Sequence[str], *, by: str) -> list[dict[str, str]]:
        """Move quarantined files back into the inbox; returns the history entries written (one per file).

        The history is appended and fsynced first, then each file is renamed into the inbox and both folders are
        fsynced, then the `.reason` files go: a crash at any point leaves every file either still quarantined or in
        the inbox, never both nor neither, and its reason in the history (at worst twice, if it is requeued again).
        """
        quarantine_dir = self.root / QUARANTINE_DIR / stream
        held = set(self.quarantined(stream))
        missing = sorted(set(names) - held)
        if missing:
            raise RequeueError(f"not in quarantine/{stream}/: {', '.join(missing)}")
        if not names:
            return []
        requeued_at = datetime.now(UTC).isoformat()
        entries = []
        for name in sorted(set(names)):
            reason_file = quarantine_dir / f"{name}{REASON_SUFFIX}"
            try:
                quarantined_at = datetime.fromtimestamp(reason_file.stat().st_mtime, tz=UTC).isoformat()
            except FileNotFoundError:
                quarantined_at = None
            entries.append(
                {
                    "name": name,
                    "reason": self.quarantine_reason(stream, name),
                    "quarantined_at": quarantined_at,
                    "requeued_at": requeued_at,
                    "by": by,
                }
            )
        history = quarantine_dir / REQUEUE_HISTORY
        created = create_private_file(history)
        with history.open("a") as file:
            file.writelines(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
            file.flush()
            os.fsync(file.fileno())
        if created:
            fsync_dir(quarantine_dir)
        inbox = self.inbox(stream)
        make_private_dirs(inbox)
        for entry in entries:
            os.rename(quarantine_dir / entry["name"], inbox / entry["name"])
        fsync_dir(inbox)
        fsync_dir(quarantine_dir)
        for entry in entries:
            (quarantine_dir / f"{entry['name']}{REASON_SUFFIX}").unlink(missing_ok=True)
        fsync_dir(quarantine_dir)
        return entries

    def requeue_history(self, stream: str) -> list[dict[str, Any]]:
        try:
            lines = (self.root / QUARANTINE_DIR / stream / REQUEUE_HISTORY).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def streams(self) -> list[str]:
        """Every stream with an inbox or a quarantine folder (dot-folders, such as `.metrics`, are none)."""
        found: set[str] = set()
        for folder in (self.root, self.root / QUARANTINE_DIR):
            try:
                with os.scandir(folder) as entries:
                    found.update(
                        entry.name
                        for entry in entries
                        if entry.is_dir() and not entry.name.startswith(".") and entry.name != QUARANTINE_DIR
                    )
            except FileNotFoundError:
                continue
        return sorted(found)

    def status(self, *, now_ns: int | None = None, archive: bool = True) -> list[StreamStatus]:
        """Per stream: inbox files and the oldest one's age (by its name's time), quarantined files counted by
        reason, and the archive's files and bytes (`archive=False` skips that walk, which stats every file)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        report = []
        for stream in self.streams():
            pending = self.pending(stream, limit=2**62)
            oldest = landed_ns(pending[0]) if pending else None
            reasons = Counter(self.quarantine_reason(stream, name) for name in self.quarantined(stream))
            files, size = _tree_size(self.inbox(stream) / LOADED_DIR) if archive else (0, 0)
            report.append(
                StreamStatus(
                    stream=stream,
                    inbox_files=len(pending),
                    oldest_unloaded_age_seconds=None if oldest is None else max(0.0, (now_ns - oldest) / 1e9),
                    quarantined_by_reason=dict(sorted(reasons.items())),
                    archive_files=files,
                    archive_bytes=size,
                )
            )
        return report


def platform_metrics_text(
    statuses: Sequence[StreamStatus],
    *,
    last_success: dict[str, float],
    rtarf_runs: dict[str, int],
    generated_at: float,
) -> str:
    """The platform's series in Prometheus' text format: per stream backlog, oldest age, quarantine and archive;
    the last successful materialization per source; RTARF sync runs of the window by outcome and their success
    ratio (absent without runs, so "no data" is not "0 % success")."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    def per_stream(name: str, help_text: str, value) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, help_text, labels=["stream"])
        for status in statuses:
            family.add_metric([status.stream], value(status))
        return family

    families = [
        per_stream("ingest_platform_inbox_files", "Files waiting in a stream's inbox.", lambda s: s.inbox_files),
        per_stream(
            "ingest_platform_oldest_unloaded_age_seconds",
            "Age of the oldest inbox file by its landing time (0 when the inbox is empty).",
            lambda s: s.oldest_unloaded_age_seconds or 0.0,
        ),
        per_stream(
            "ingest_platform_quarantined_files", "Files in quarantine/<stream>/.", lambda s: s.quarantined_files
        ),
        per_stream(
            "ingest_platform_archive_files",
            "Landed files archived under <stream>/loaded/ and not yet compacted.",
            lambda s: s.archive_files,
        ),
        per_stream(
            "ingest_platform_archive_bytes",
            "Bytes under <stream>/loaded/: archived files, their receipts, compacted days.",
            lambda s: s.archive_bytes,
        ),
    ]
    last = GaugeMetricFamily(
        "ingest_platform_last_success_timestamp_seconds",
        "When an asset of the source last materialized (a load or a sync that succeeded), Unix time.",
        labels=["source"],
    )
    for source, timestamp in sorted(last_success.items()):
        last.add_metric([source], timestamp)
    runs = GaugeMetricFamily(
        "ingest_platform_rtarf_sync_runs", "RTARF sync runs that ended in the last 24 h.", labels=["outcome"]
    )
    for outcome in ("success", "failure"):
        runs.add_metric([outcome], rtarf_runs.get(outcome, 0))
    families += [last, runs]
    ended = rtarf_runs.get("success", 0) + rtarf_runs.get("failure", 0)
    if ended:
        families.append(
            GaugeMetricFamily(
                "ingest_platform_rtarf_sync_success_ratio",
                "Share of the last 24 h's ended RTARF sync runs that succeeded (seed 004: alert below 0.9).",
                value=rtarf_runs.get("success", 0) / ended,
            )
        )
    families.append(
        GaugeMetricFamily(
            "ingest_platform_metrics_generated_timestamp_seconds",
            "When landing_metrics_sensor wrote this file, Unix time (alert when it is stale).",
            value=generated_at,
        )
    )

    class _Collected:
        def collect(self):
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected())
    return generate_latest(registry).decode()


def write_text_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` by a rename, so a reader sees the old file or the new one, never half of one."""
    make_private_dirs(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def _tree_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        # Receipts and compacted days take space but are no landed file of their own.
                        files += landed_ns(entry.name) is not None
                        size += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return files, size


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename into it, a file created or removed) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
