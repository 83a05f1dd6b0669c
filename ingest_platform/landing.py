"""The landing zone, as the Dagster side reads it.

The webhook app writes one JSON document per accepted request to `<landing dir>/<stream>/<name>.json` (written to
a temporary file, fsynced, renamed, directory fsynced; see `webhook_app/landing.py`). A name is the landing time in
nanoseconds since the epoch, zero-padded to 20 digits, a dash and the request id, so names sort by arrival (a rename
keeps the temporary file's mtime, which is therefore no arrival order). The document holds `stream`, `request_id`,
`received_at` and the validated `payload`.

After its rows are committed a file moves to `<stream>/loaded/<YYYY-MM-DD>/`; a file that cannot be loaded moves to
`quarantine/<stream>/` next to a `.reason` file. The inbox therefore only holds files still to load.

A requeue (`ingest-platform landing requeue`, `landing_requeue_job`) moves quarantined files back into the inbox
under their own names, after appending each one's reason to `quarantine/<stream>/requeue-history.jsonl`. Keeping
the name keeps the ledger's key (stream, file name): a requeued file that was once loaded is archived by its next
run and loads nothing twice; one that never was loads as if it had just landed.
"""

import json
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest_platform.settings import create_private_file, make_private_dirs

LOADED_DIR = "loaded"
QUARANTINE_DIR = "quarantine"
REASON_SUFFIX = ".reason"
REQUEUE_HISTORY = "requeue-history.jsonl"
# The platform's Prometheus textfile (written by landing_metrics_sensor, served by the webhook app's /metrics).
PLATFORM_METRICS_FILE = Path(".metrics") / "platform.prom"
_NAME = re.compile(r"^(\d{20})-[A-Za-z0-9_-]{1,64}\.json$")


class LandingFileError(Exception):
    """A landed file that cannot be loaded; it goes to quarantine with this message as the reason."""


def landed_ns(name: str) -> int | None:
    """The landing time encoded in a file name, or None when the name is not a landing file's."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def landed_day(name: str) -> str:
    """The UTC day (`YYYY-MM-DD`) a file landed on: the partition its rows load into."""
    ns = landed_ns(name)
    if ns is None:
        raise LandingFileError(f"{name!r} is not a landing file name")
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d")


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
        return sorted(set(names))

    def read(self, stream: str, name: str) -> dict[str, Any]:
        path = self.locate(stream, name)
        if path is None:
            raise FileNotFoundError(f"landing file {stream}/{name} is neither in the inbox nor in {LOADED_DIR}/")
        try:
            document = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise LandingFileError(f"not valid JSON: {error}") from error
        if not isinstance(document, dict) or "payload" not in document:
            raise LandingFileError("not a landing document: expected an object with a 'payload'")
        if document.get("stream") != stream:
            raise LandingFileError(f"document is for stream {document.get('stream')!r}, not {stream!r}")
        return document

    def archive(self, stream: str, name: str) -> None:
        source = self.inbox(stream) / name
        if not source.exists():
            return
        target_dir = self.inbox(stream) / LOADED_DIR / landed_day(name)
        make_private_dirs(target_dir)
        source.rename(target_dir / name)

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
            _fsync_dir(quarantine_dir)
        inbox = self.inbox(stream)
        make_private_dirs(inbox)
        for entry in entries:
            os.rename(quarantine_dir / entry["name"], inbox / entry["name"])
        _fsync_dir(inbox)
        _fsync_dir(quarantine_dir)
        for entry in entries:
            (quarantine_dir / f"{entry['name']}{REASON_SUFFIX}").unlink(missing_ok=True)
        _fsync_dir(quarantine_dir)
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
        per_stream("ingest_platform_archive_files", "Files under <stream>/loaded/.", lambda s: s.archive_files),
        per_stream("ingest_platform_archive_bytes", "Bytes under <stream>/loaded/.", lambda s: s.archive_bytes),
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
                        files += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return files, size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
